namespace DeepSeekRL.Rewards.Format;

/// <summary>
/// <c>format_r1_zero</c>: 1 when the completion has the DeepSeek-R1-Zero template's form
/// <c>&lt;think&gt; reasoning &lt;/think&gt; &lt;answer&gt; answer &lt;/answer&gt;</c>, else 0.
/// </summary>
/// <remarks>
/// <para>White space is allowed around the whole and between <c>&lt;/think&gt;</c> and <c>&lt;answer&gt;</c>, nothing
/// else. Each of the four tags occurs exactly once (the opening <c>&lt;think&gt;</c> not at all when
/// <see cref="FormatR1ZeroRewardOptions.CompletionIncludesOpenTag"/> is off); the answer holds something other than
/// white space; so does the reasoning unless <see cref="FormatR1ZeroRewardOptions.RequireNonEmptyReasoning"/> is off.
/// Unlike <c>format_strict</c>, no line breaks are required.</para>
/// <para>Thread-safe; no allocation.</para>
/// </remarks>
[RewardRule("format_r1_zero")]
internal sealed class FormatR1ZeroRule(FormatR1ZeroRewardOptions options) : IRewardRule
{
    private const string ThinkOpen = "<think>";
    private const string ThinkClose = "</think>";
    private const string AnswerOpen = "<answer>";
    private const string AnswerClose = "</answer>";

    private readonly bool _includesOpenTag = options.CompletionIncludesOpenTag;
    private readonly bool _requireReasoning = options.RequireNonEmptyReasoning;

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(RewardOutcome.Score(Matches(args.Completion) ? 1 : 0));

    /// <summary>Whether the completion has the form.</summary>
    /// <param name="completion">The completion.</param>
    /// <returns><see langword="true"/> when it does.</returns>
    public bool Matches(string completion)
    {
        var text = completion.AsSpan().Trim();
        if (_includesOpenTag)
        {
            if (!text.StartsWith(ThinkOpen, StringComparison.Ordinal))
            {
                return false;
            }

            text = text[ThinkOpen.Length..];
        }

        var close = text.IndexOf(ThinkClose, StringComparison.Ordinal);
        if (close < 0)
        {
            return false;
        }

        var reasoning = text[..close];
        if (HasTag(reasoning) || (_requireReasoning && reasoning.IsWhiteSpace()))
        {
            return false;
        }

        var rest = text[(close + ThinkClose.Length)..].TrimStart();
        if (!rest.StartsWith(AnswerOpen, StringComparison.Ordinal) || !rest.EndsWith(AnswerClose, StringComparison.Ordinal))
        {
            return false;
        }

        var answer = rest[AnswerOpen.Length..^AnswerClose.Length];
        return !answer.IsWhiteSpace() && !HasTag(answer);
    }

    private static bool HasTag(ReadOnlySpan<char> text) =>
        text.Contains(ThinkOpen, StringComparison.Ordinal) || text.Contains(ThinkClose, StringComparison.Ordinal)
        || text.Contains(AnswerOpen, StringComparison.Ordinal) || text.Contains(AnswerClose, StringComparison.Ordinal);
}
