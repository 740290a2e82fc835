using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Readability;

/// <summary>Options of <c>paragraph_length</c>.</summary>
public sealed class ParagraphLengthRewardOptions : IValidatableOptions
{
    /// <summary>The longest paragraph that is still readable, in words (a Han or kana character counts as a word). Default 200; range 1 to 1,000,000.</summary>
    public int MaxWords { get; set; } = 200;

    /// <summary>Which text is judged. Default <see cref="ReasoningScope.Reasoning"/>.</summary>
    public ReasoningScope Scope { get; set; } = ReasoningScope.Reasoning;

    /// <inheritdoc/>
    public string? Validate() => MaxWords is < 1 or > 1_000_000 ? $"max_words: expected an integer from 1 to 1000000, got {MaxWords}" : null;
}
