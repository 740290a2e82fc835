using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Silo.Serving;

/// <summary>
/// <c>serve</c>'s error middleware: every error has an OpenAI-style JSON body. Bad HTTP (413 over
/// <c>--max-body-bytes</c>), statuses set without a body (405, ...), and internal failures, which answer 500 with an
/// error id that is also logged, never a stack trace.
/// </summary>
internal static partial class ServeErrors
{
    public static void UseOpenAiErrors(this WebApplication app, long maxBodyBytes, ILogger logger) => app.Use(async (context, next) =>
    {
        try
        {
            await next(context);
        }
        catch (BadHttpRequestException ex) when (!context.Response.HasStarted)
        {
            var tooLarge = ex.StatusCode == StatusCodes.Status413PayloadTooLarge;
            var message = tooLarge ? $"The request body is larger than {maxBodyBytes} bytes (serve --max-body-bytes)" : "Bad HTTP request: " + ex.Message;
            await ServingEngine.Error(ex.StatusCode, message, "invalid_request_error", tooLarge ? "request_too_large" : null).ExecuteAsync(context);
            return;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            var errorId = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
            InternalError(logger, ex, errorId, context.Request.Method, context.Request.Path);
            await ServingEngine.Error(500, $"Internal server error (error id {errorId}, in the server's log)", "server_error", "internal_error").ExecuteAsync(context);
            return;
        }

        if (!context.Response.HasStarted && context.Response.StatusCode >= 400)
        {
            var status = context.Response.StatusCode;
            await ServingEngine.Error(status, $"{context.Request.Method} {context.Request.Path}: {ReasonPhrases.GetReasonPhrase(status)}",
                status >= 500 ? "server_error" : "invalid_request_error", null).ExecuteAsync(context);
        }
    });

    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "serve: internal error {ErrorId} on {Method} {Path}")]
    private static partial void InternalError(ILogger logger, Exception exception, string errorId, string method, string path);
}
