using Npgsql;
using Polly;
using Polly.Retry;

namespace DeepSeekRL.Storage.Resilience;

/// <summary>
/// The named Polly pipeline every database call goes through (<c>deepseekrl-db</c>): it retries transient errors only
/// (a PostgreSQL restart, a dropped connection, a serialization failure or deadlock) with exponential back-off and
/// jitter, and never retries cancellations or other errors.
/// </summary>
/// <remarks>
/// Retrying is safe because every write of the engine is idempotent or conditional: enqueue skips existing keys,
/// completion is conditional on the lease and recognises its own earlier success, ingest skips rows already stored.
/// </remarks>
public static class DatabaseResilience
{
    /// <summary>The pipeline name, for logs and metrics.</summary>
    public const string PipelineName = "deepseekrl-db";

    /// <summary>The default pipeline: up to 40 retries, 50 ms doubling to at most 1 s (rides over a restart of about 30 s).</summary>
    public static ResiliencePipeline Default { get; } = Create(maxRetryAttempts: 40, maxDelay: TimeSpan.FromSeconds(1));

    /// <summary>Builds a pipeline.</summary>
    /// <param name="maxRetryAttempts">The retries after the first attempt.</param>
    /// <param name="maxDelay">The longest wait between attempts.</param>
    /// <param name="timeProvider">The clock for the waits; default the system clock.</param>
    /// <returns>The pipeline.</returns>
    public static ResiliencePipeline Create(int maxRetryAttempts, TimeSpan maxDelay, TimeProvider? timeProvider = null)
    {
        var builder = new ResiliencePipelineBuilder { Name = PipelineName };
        if (timeProvider is not null)
        {
            builder.TimeProvider = timeProvider;
        }

        return builder.AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(
                args.Outcome.Exception is { } ex && !args.Context.CancellationToken.IsCancellationRequested && IsTransient(ex)),
            MaxRetryAttempts = maxRetryAttempts,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(50),
            MaxDelay = maxDelay,
        }).Build();
    }

    /// <summary>Whether retrying <paramref name="exception"/> could succeed.</summary>
    /// <param name="exception">The exception.</param>
    /// <returns><see langword="true"/> for transient database errors.</returns>
    public static bool IsTransient(Exception exception)
    {
        return exception switch
        {
            OperationCanceledException => false,
            PostgresException pg => pg.IsTransient || pg.SqlState is
                PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
                or PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
                or PostgresErrorCodes.ConnectionException or PostgresErrorCodes.ConnectionFailure
                or PostgresErrorCodes.ConnectionDoesNotExist or PostgresErrorCodes.TooManyConnections,
            NpgsqlException npgsql => npgsql.IsTransient || npgsql.InnerException is IOException or System.Net.Sockets.SocketException,
            _ => false,
        };
    }
}
