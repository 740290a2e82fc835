using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Readability;

/// <summary>Adds the readability rules to a <see cref="RewardPipelineBuilder"/>.</summary>
public static class ReadabilityRewardBuilderExtensions
{
    /// <summary>Adds <c>repetition</c>: open-r1's n-gram repetition penalty (0 clean, down to max_penalty).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddRepetitionReward(this RewardPipelineBuilder builder, RepetitionRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("repetition", new RepetitionRule(options ?? new()), weight);
    }

    /// <summary>Adds <c>paragraph_length</c>: the share of reasoning paragraphs within the word limit (1 clean).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddParagraphLengthReward(this RewardPipelineBuilder builder, ParagraphLengthRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("paragraph_length", new ParagraphLengthRule(options ?? new()), weight);
    }

    /// <summary>Adds <c>code_in_reasoning</c>: 1 when the reasoning has no fenced code blocks (beyond the allowance), else 0.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddCodeInReasoningReward(this RewardPipelineBuilder builder, CodeInReasoningRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("code_in_reasoning", new CodeInReasoningRule(options ?? new()), weight);
    }

    /// <summary>Adds <c>markdown_in_reasoning</c>: 1 when the reasoning has no headings, tables or bullet-heavy markdown, else 0.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options; defaults when <see langword="null"/>.</param>
    /// <param name="weight">The weight of the score.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddMarkdownInReasoningReward(this RewardPipelineBuilder builder, MarkdownInReasoningRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRule("markdown_in_reasoning", new MarkdownInReasoningRule(options ?? new()), weight);
    }
}
