namespace DeepSeekRL.Rewards.Pipeline;

/// <summary>A rule whose natural time limit differs from the pipeline default (sandboxed or remote calls).</summary>
internal interface IRuleTimeout
{
    /// <summary>The time limit used when the rules JSON gives no <c>timeout_ms</c>.</summary>
    TimeSpan DefaultTimeout { get; }
}
