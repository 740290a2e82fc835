using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Accuracy;

/// <summary>Registers the <c>accuracy</c> rule in a <see cref="RewardPipelineBuilder"/>.</summary>
public static class AccuracyRewardBuilderExtensions
{
    /// <summary>Adds the math-answer accuracy rule.</summary>
    /// <param name="builder">The pipeline builder.</param>
    /// <param name="options">Rule options; null means defaults.</param>
    /// <param name="weight">Weight of the rule in the total reward. Default 1.0.</param>
    public static RewardPipelineBuilder AddAccuracyReward(this RewardPipelineBuilder builder, AccuracyRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        options ??= new();
        return options.Validate() is { } problem
            ? throw new ArgumentException(problem, nameof(options))
            : builder.AddRule("accuracy", new AccuracyRule(options), weight);
    }
}
