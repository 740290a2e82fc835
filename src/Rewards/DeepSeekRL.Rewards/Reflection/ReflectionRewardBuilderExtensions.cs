using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Reflection;

/// <summary>Adds the self-verification rules to a <see cref="RewardPipelineBuilder"/>.</summary>
public static class ReflectionRewardBuilderExtensions
{
    /// <summary>
    /// Adds <c>check_consistency</c>: 1 when every check line states its comparison truthfully and a quoted attempt is
    /// the latest one, else 0; 1 without a check.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddCheckConsistencyReward(this RewardPipelineBuilder builder, CheckConsistencyRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("check_consistency", new CheckConsistencyRule(options ?? new()), weight);
    }
}
