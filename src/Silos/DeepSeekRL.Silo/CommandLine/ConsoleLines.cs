using System.Globalization;
using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Silo.CommandLine;

/// <summary>
/// Writes log messages as single lines <c>[HH:mm:ss.fff] message</c> on standard output: DeepSeekRL's own messages
/// from Information, Orleans' and ASP.NET Core's from Warning (set by the host's filters). An exception adds its type
/// and first line, never a stack trace.
/// </summary>
/// <param name="time">The clock.</param>
public sealed class ConsoleLines(TimeProvider time) : ILoggerProvider
{
    private static readonly Lock Gate = new();

    /// <inheritdoc/>
    public ILogger CreateLogger(string categoryName) => new Logger(time);

    /// <inheritdoc/>
    public void Dispose()
    {
    }

    private sealed class Logger(TimeProvider time) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var message = formatter(state, exception);
            var cut = message.IndexOfAny(['\r', '\n']);
            if (cut >= 0)
            {
                message = message[..cut];
            }

            if (exception is not null)
            {
                var first = exception.Message.Split('\n', 2)[0].TrimEnd('\r');
                message += $" ({exception.GetType().Name}: {first})";
            }

            var level = logLevel >= LogLevel.Warning ? (logLevel >= LogLevel.Error ? "error: " : "warning: ") : string.Empty;
            var line = string.Create(CultureInfo.InvariantCulture, $"[{time.GetUtcNow():HH:mm:ss.fff}] {level}{message}");
            lock (Gate)
            {
                Console.Out.WriteLine(line);
            }
        }
    }
}
