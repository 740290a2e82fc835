using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Length;

/// <summary>Adds <c>soft_overlong</c> to a <see cref="RewardPipelineBuilder"/>.</summary>
public static class SoftOverlongRewardBuilderExtensions
{
    /// <summary>Adds <c>soft_overlong</c>: DAPO's soft overlong punishment (0 short, down to −1 past the limit).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddSoftOverlongReward(this RewardPipelineBuilder builder, SoftOverlongRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("soft_overlong", new SoftOverlongRule(options ?? new()), weight);
    }
}
