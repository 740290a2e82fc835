using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Readability;

/// <summary>Options of <c>code_in_reasoning</c>.</summary>
public sealed class CodeInReasoningRewardOptions : IValidatableOptions
{
    /// <summary>How many fenced code blocks the chain of thought may hold and still be clean. Default 0; range 0 to 1000.</summary>
    public int MaxBlocks { get; set; }

    /// <summary>Which text is judged. Default <see cref="ReasoningScope.Reasoning"/>.</summary>
    public ReasoningScope Scope { get; set; } = ReasoningScope.Reasoning;

    /// <inheritdoc/>
    public string? Validate() => MaxBlocks is < 0 or > 1000 ? $"max_blocks: expected an integer from 0 to 1000, got {MaxBlocks}" : null;
}
