using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Silo.Api;

/// <summary>The api role's log lines (category <c>DeepSeekRL.Silo.Api</c>).</summary>
internal static partial class ApiLog
{
    /// <summary>The category name.</summary>
    public const string Category = "DeepSeekRL.Silo.Api";

    [LoggerMessage(EventId = 1901, Level = LogLevel.Error, Message = "error {ErrorId}: {Method} {Path} failed")]
    public static partial void RequestFailed(this ILogger logger, Exception exception, string errorId, string method, string path);

    [LoggerMessage(EventId = 1902, Level = LogLevel.Warning, Message = "refused Host '{Host}' ({Method} {Path}); allowed: {Allowed}")]
    public static partial void HostRefused(this ILogger logger, string host, string method, string path, string allowed);

    [LoggerMessage(EventId = 1903, Level = LogLevel.Information, Message = "POST /api/campaigns refused: {Detail}")]
    public static partial void CampaignRefused(this ILogger logger, string detail);

    [LoggerMessage(EventId = 1904, Level = LogLevel.Information, Message = "POST /api/campaigns: {Warning}")]
    public static partial void CampaignWarning(this ILogger logger, string warning);
}
