using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Language;

/// <summary>Adds the language rules to a <see cref="RewardPipelineBuilder"/>.</summary>
public static class LanguageRewardBuilderExtensions
{
    /// <summary>Adds <c>language_consistency</c>: the proportion of target-language words in the chain of thought.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddLanguageConsistencyReward(
        this RewardPipelineBuilder builder, LanguageConsistencyRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("language_consistency", new LanguageConsistencyRule(options ?? new()), weight);
    }

    /// <summary>Adds <c>mixed_language</c>: 1 when the chain of thought keeps to one language, else 0.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddMixedLanguageReward(
        this RewardPipelineBuilder builder, MixedLanguageRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("mixed_language", new MixedLanguageRule(options ?? new()), weight);
    }
}
