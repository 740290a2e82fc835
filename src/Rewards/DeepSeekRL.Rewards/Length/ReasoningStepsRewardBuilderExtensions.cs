using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Length;

/// <summary>Adds <c>reasoning_steps</c> to a <see cref="RewardPipelineBuilder"/>.</summary>
public static class ReasoningStepsRewardBuilderExtensions
{
    /// <summary>Adds <c>reasoning_steps</c>: open-r1's step-marker reward, min(1, n / 3).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddReasoningStepsReward(this RewardPipelineBuilder builder, ReasoningStepsRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("reasoning_steps", new ReasoningStepsRule(options ?? new()), weight);
    }
}
