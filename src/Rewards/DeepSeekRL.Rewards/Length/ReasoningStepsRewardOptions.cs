using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Length;

/// <summary>Options of <c>reasoning_steps</c> (open-r1's <c>reasoning_steps_reward</c>).</summary>
public sealed class ReasoningStepsRewardOptions : IValidatableOptions
{
    /// <summary>How many step markers earn the full score (open-r1's "magic number"). Default 3; range 1 to 1000.</summary>
    public int StepsForFullScore { get; set; } = 3;

    /// <summary>Which text is judged. Default <see cref="ReasoningScope.Completion"/> (open-r1 reads the whole completion).</summary>
    public ReasoningScope Scope { get; set; } = ReasoningScope.Completion;

    /// <inheritdoc/>
    public string? Validate() => StepsForFullScore is < 1 or > 1000 ? $"steps_for_full_score: expected an integer from 1 to 1000, got {StepsForFullScore}" : null;
}
