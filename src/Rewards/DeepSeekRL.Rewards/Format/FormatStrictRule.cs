using System.Text.RegularExpressions;

namespace DeepSeekRL.Rewards.Format;

/// <summary>
/// <c>format_strict</c>: open-r1's <c>format_reward</c>, 1 when the completion matches
/// <c>^&lt;think&gt;\n.*?\n&lt;/think&gt;\n&lt;answer&gt;\n.*?\n&lt;/answer&gt;$</c> (DOTALL, MULTILINE, matched at the
/// start), else 0.
/// </summary>
/// <remarks>
/// <para>Reproduces open-r1's documented quirks: with MULTILINE, <c>$</c> also matches before a line break, so extra
/// lines after <c>&lt;/answer&gt;</c> still pass (text on the same line after it does not); empty think and answer
/// bodies pass; a leading line break fails. <c>\r\n</c> line breaks fail (the pattern wants <c>\n</c>).</para>
/// <para>Thread-safe; takes no options.</para>
/// </remarks>
[RewardRule("format_strict")]
internal sealed partial class FormatStrictRule : IRewardRule
{
    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(RewardOutcome.Score(Matches(args.Completion) ? 1 : 0));

    /// <summary>Whether the completion matches open-r1's pattern.</summary>
    /// <param name="completion">The completion.</param>
    /// <returns><see langword="true"/> when it does.</returns>
    public static bool Matches(string completion) => Pattern().IsMatch(completion);

    // Python's re.match anchors at position 0 whatever the flags, hence \A (^ under MULTILINE would match at any line).
    [GeneratedRegex(@"\A<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$", RegexOptions.Singleline | RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
