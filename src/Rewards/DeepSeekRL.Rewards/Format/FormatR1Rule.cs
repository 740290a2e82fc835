using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Format;

/// <summary>
/// <c>format_r1</c>: 1 when the completion has the DeepSeek-R1 chat form, else 0.
/// </summary>
/// <remarks>
/// <para>The form: <c>&lt;think&gt;</c> and a line break at the very start (only when
/// <see cref="FormatR1RewardOptions.CompletionIncludesOpenTag"/>), the reasoning, a line break, <c>&lt;/think&gt;</c>,
/// then an answer that is not only white space. Exactly one think block: no other <c>&lt;think&gt;</c> or
/// <c>&lt;/think&gt;</c> anywhere. Line breaks may be <c>\n</c> or <c>\r\n</c>.</para>
/// <para>Thread-safe; no allocation; a few ordinal (vectorised) searches per call.</para>
/// </remarks>
[RewardRule("format_r1")]
internal sealed class FormatR1Rule(FormatR1RewardOptions options) : IRewardRule
{
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
        var text = completion.AsSpan();
        var start = 0;
        if (_includesOpenTag)
        {
            if (!text.StartsWith(ChainOfThought.OpenTag, StringComparison.Ordinal))
            {
                return false;
            }

            start = ChainOfThought.OpenTag.Length;
            if (text[start..].StartsWith("\r\n", StringComparison.Ordinal))
            {
                start += 2;
            }
            else if (text[start..].StartsWith('\n'))
            {
                start += 1;
            }
            else
            {
                return false;
            }
        }

        var close = text[start..].IndexOf(ChainOfThought.CloseTag, StringComparison.Ordinal);
        if (close < 0)
        {
            return false;
        }

        close += start;
        var reasoning = text[start..close];
        if (reasoning.IsEmpty || reasoning[^1] != '\n'
            || reasoning.Contains(ChainOfThought.OpenTag, StringComparison.Ordinal)
            || (_requireReasoning && !ChainOfThought.HasContent(reasoning)))
        {
            return false;
        }

        var answer = text[(close + ChainOfThought.CloseTag.Length)..];
        return ChainOfThought.HasContent(answer)
            && !answer.Contains(ChainOfThought.CloseTag, StringComparison.Ordinal)
            && !answer.Contains(ChainOfThought.OpenTag, StringComparison.Ordinal);
    }
}
