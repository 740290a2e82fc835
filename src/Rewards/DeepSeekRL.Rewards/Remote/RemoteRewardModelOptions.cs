namespace DeepSeekRL.Rewards.Remote;

/// <summary>Options of the <c>remote_reward_model</c> rule: an HTTP reward model speaking
/// <c>POST {"prompts": [...], "completions": [...]}</c> → <c>{"rewards": [...]}</c>.</summary>
public sealed class RemoteRewardModelOptions : IValidatableOptions
{
    /// <summary>The endpoint URL (http or https). Required.</summary>
    public string Url { get; set; } = string.Empty;

    /// <summary>Completions per request. Default 32; range 1 .. 4,096.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Time limit of one HTTP attempt, in milliseconds. Default 30,000.</summary>
    public int TimeoutMs { get; set; } = 30_000;

    /// <summary>Retries after the first attempt, on transient failures only (connection errors, time-outs, 408, 429, 5xx), with exponential back-off and jitter. Default 3.</summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>First retry delay, in milliseconds (doubles each retry). Default 200.</summary>
    public int RetryDelayMs { get; set; } = 200;

    /// <summary>The circuit opens when this fraction of at least <see cref="CircuitMinimumThroughput"/> calls in 30 s failed. Default 0.5.</summary>
    public double CircuitFailureRatio { get; set; } = 0.5;

    /// <summary>Calls needed before the circuit can open. Default 8.</summary>
    public int CircuitMinimumThroughput { get; set; } = 8;

    /// <summary>How long an open circuit rejects calls at once, in milliseconds. Default 10,000.</summary>
    public int CircuitBreakMs { get; set; } = 10_000;

    /// <summary>An environment variable holding a bearer token for the endpoint, if it needs one.</summary>
    public string? ApiKeyEnvironmentVariable { get; set; }

    /// <inheritdoc/>
    public string? Validate()
    {
        if (!Uri.TryCreate(Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            return $"url = '{Url}': expected an absolute http:// or https:// URL";
        }

        if (BatchSize is < 1 or > 4096)
        {
            return $"batch_size = {BatchSize}: expected 1 .. 4096";
        }

        if (TimeoutMs is < 1 or > 3_600_000)
        {
            return $"timeout_ms = {TimeoutMs}: expected 1 .. 3600000";
        }

        if (MaxRetries is < 0 or > 20)
        {
            return $"max_retries = {MaxRetries}: expected 0 .. 20";
        }

        if (CircuitFailureRatio is <= 0 or > 1)
        {
            return $"circuit_failure_ratio = {CircuitFailureRatio}: expected a fraction in (0, 1]";
        }

        return CircuitMinimumThroughput < 2 ? $"circuit_minimum_throughput = {CircuitMinimumThroughput}: expected at least 2" : null;
    }
}
