namespace DeepSeekRL.Rewards.Reflection;

/// <summary>Options of <c>check_consistency</c> (every check line of the reasoning truthful).</summary>
public sealed class CheckConsistencyRewardOptions : IValidatableOptions
{
    /// <summary>
    /// Whether a check whose left side is a bare integer must quote the latest attempt (the last line before it that is
    /// a bare integer). Default <see langword="true"/>. Without it only the verdicts are held to their comparisons: a
    /// model too small to copy its first attempt a few lines up can still be paid for saying <c>no</c> when the numbers
    /// it compares differ.
    /// </summary>
    public bool QuoteAttempt { get; set; } = true;

    /// <inheritdoc/>
    public string? Validate() => null;
}
