namespace DeepSeekRL.Rewards.Format;

/// <summary>
/// <c>tag_count</c>: open-r1's <c>tag_count_reward</c>, 0.25 for each of <c>&lt;think&gt;\n</c>,
/// <c>\n&lt;/think&gt;\n</c>, <c>\n&lt;answer&gt;\n</c> and <c>\n&lt;/answer&gt;</c> that occurs exactly once; range [0, 1].
/// </summary>
/// <remarks>
/// Occurrences are counted without overlap, left to right, as Python's <c>str.count</c> does. A partial-credit shaping
/// reward for <c>format_strict</c>. Thread-safe; takes no options; no allocation.
/// </remarks>
[RewardRule("tag_count")]
internal sealed class TagCountRule : IRewardRule
{
    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(RewardOutcome.Score(Score(args.Completion)));

    /// <summary>The score of one completion.</summary>
    /// <param name="completion">The completion.</param>
    /// <returns>0, 0.25, 0.5, 0.75 or 1.</returns>
    public static double Score(string completion)
    {
        var text = completion.AsSpan();
        var score = 0.0;
        score += CountOnce(text, "<think>\n") ? 0.25 : 0;
        score += CountOnce(text, "\n</think>\n") ? 0.25 : 0;
        score += CountOnce(text, "\n<answer>\n") ? 0.25 : 0;
        score += CountOnce(text, "\n</answer>") ? 0.25 : 0;
        return score;
    }

    private static bool CountOnce(ReadOnlySpan<char> text, string tag)
    {
        var first = text.IndexOf(tag, StringComparison.Ordinal);
        return first >= 0 && !text[(first + tag.Length)..].Contains(tag, StringComparison.Ordinal);
    }
}
