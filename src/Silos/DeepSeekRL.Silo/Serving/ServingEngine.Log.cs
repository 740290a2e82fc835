using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Silo.Serving;

internal sealed partial class ServingEngine
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "serve: internal error {ErrorId} on {Method} {Path}")]
    public static partial void InternalError(ILogger logger, Exception exception, string errorId, string method, string path);
}
