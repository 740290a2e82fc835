using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Countdown;

/// <summary>Adds the Countdown rule to a <see cref="RewardPipelineBuilder"/>.</summary>
public static class CountdownRewardBuilderExtensions
{
    /// <summary>Adds <c>countdown</c>: TinyZero's scorer (1.0 correct, 0.1 present but wrong or invalid, 0 no answer).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddCountdownReward(this RewardPipelineBuilder builder, CountdownRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("countdown", new CountdownRule(options ?? new()), weight);
    }
}
