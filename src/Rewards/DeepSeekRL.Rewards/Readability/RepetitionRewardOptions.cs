using System.Globalization;
using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Readability;

/// <summary>Options of <c>repetition</c> (open-r1's n-gram repetition penalty).</summary>
public sealed class RepetitionRewardOptions : IValidatableOptions
{
    /// <summary>The n-gram length, in words. Default 3; range 1 to 64.</summary>
    public int NgramSize { get; set; } = 3;

    /// <summary>The score of a text made of one repeated n-gram. Default −1.0; range [−1000, 0] (a positive value is an error, as in open-r1).</summary>
    public double MaxPenalty { get; set; } = -1.0;

    /// <summary>Which text is judged. Default <see cref="ReasoningScope.Completion"/> (open-r1 reads the whole completion).</summary>
    public ReasoningScope Scope { get; set; } = ReasoningScope.Completion;

    /// <inheritdoc/>
    public string? Validate() =>
        NgramSize is < 1 or > 64 ? $"ngram_size: expected an integer from 1 to 64, got {NgramSize}"
        : MaxPenalty > 0 ? string.Create(CultureInfo.InvariantCulture, $"max_penalty: {MaxPenalty} should not be positive")
        : !double.IsFinite(MaxPenalty) || MaxPenalty < -1000 ? string.Create(CultureInfo.InvariantCulture, $"max_penalty: expected a number in [-1000, 0], got {MaxPenalty}")
        : null;
}
