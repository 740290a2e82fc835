namespace DeepSeekRL.Rewards.SamplePlugin;

/// <summary>Options of the sample <c>keyword</c> rule (bound from the rule's <c>"options"</c>, snake_case names).</summary>
public sealed class KeywordRuleOptions : IValidatableOptions
{
    /// <summary>Words the answer should contain. Required, at least one.</summary>
    public IReadOnlyList<string> Keywords { get; set; } = [];

    /// <summary>Whether matching is case-sensitive. Default false.</summary>
    public bool CaseSensitive { get; set; }

    /// <inheritdoc/>
    public string? Validate() => Keywords.Count == 0 ? "keywords: expected at least one keyword" : null;
}

/// <summary>
/// A sample plugin rule: the fraction of <see cref="KeywordRuleOptions.Keywords"/> that appear in the answer part of
/// the completion (after <c>&lt;/think&gt;</c> when present). Shows the whole plugin contract: a public class, the
/// <see cref="RewardRuleAttribute"/>, a constructor taking its options, and one method.
/// </summary>
[RewardRule("keyword")]
public sealed class KeywordRule(KeywordRuleOptions options) : IRewardRule
{
    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken)
    {
        var end = args.Completion.LastIndexOf("</think>", StringComparison.Ordinal);
        var answer = end >= 0 ? args.Completion[(end + "</think>".Length)..] : args.Completion;
        var comparison = options.CaseSensitive ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
        var found = 0;
        foreach (var keyword in options.Keywords)
        {
            if (answer.Contains(keyword, comparison))
            {
                found++;
            }
        }

        return ValueTask.FromResult(RewardOutcome.Score(found / (double)options.Keywords.Count, $"{found} of {options.Keywords.Count} keywords"));
    }
}
