using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Format;

/// <summary>Adds the format rules to a <see cref="RewardPipelineBuilder"/>.</summary>
public static class FormatRewardBuilderExtensions
{
    /// <summary>Adds <c>format_r1</c>: 1 for the R1 chat form (one think block, then a non-empty answer), else 0.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddFormatR1Reward(this RewardPipelineBuilder builder, FormatR1RewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("format_r1", new FormatR1Rule(options ?? new()), weight);
    }

    /// <summary>Adds <c>format_r1_zero</c>: 1 for <c>&lt;think&gt;...&lt;/think&gt; &lt;answer&gt;...&lt;/answer&gt;</c>, else 0.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddFormatR1ZeroReward(this RewardPipelineBuilder builder, FormatR1ZeroRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("format_r1_zero", new FormatR1ZeroRule(options ?? new()), weight);
    }

    /// <summary>Adds <c>format_strict</c>: open-r1's <c>format_reward</c> regex, 1 or 0.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddFormatStrictReward(this RewardPipelineBuilder builder, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("format_strict", new FormatStrictRule(), weight);
    }

    /// <summary>Adds <c>tag_count</c>: open-r1's <c>tag_count_reward</c>, 0.25 per tag present exactly once.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddTagCountReward(this RewardPipelineBuilder builder, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("tag_count", new TagCountRule(), weight);
    }

    /// <summary>Adds <c>code_format</c>: open-r1's <c>code_format_reward</c>, 1 when the answer holds a fenced block in the language, else 0.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddCodeFormatReward(this RewardPipelineBuilder builder, CodeFormatRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("code_format", new CodeFormatRule(options ?? new()), weight);
    }
}
