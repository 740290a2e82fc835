using System.Text.RegularExpressions;

namespace DeepSeekRL.Rewards.Format;

/// <summary>
/// <c>code_format</c>: open-r1's <c>code_format_reward</c>, 1 when the completion matches
/// <c>^&lt;think&gt;\n.*?\n&lt;/think&gt;\n&lt;answer&gt;\n.*?```LANG.*?```.*?\n&lt;/answer&gt;$</c> (DOTALL,
/// MULTILINE, matched at the start), else 0.
/// </summary>
/// <remarks>Same quirks as <c>format_strict</c> (lines after <c>&lt;/answer&gt;</c> pass). The language is matched as a
/// literal prefix of the text after the fence (open-r1 pastes it into the pattern unescaped; ours is escaped). Thread-safe.</remarks>
[RewardRule("code_format")]
internal sealed class CodeFormatRule : IRewardRule
{
    private readonly Regex _pattern;

    /// <summary>Creates the rule.</summary>
    /// <param name="options">Its options (validated).</param>
    public CodeFormatRule(CodeFormatRewardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        // The pattern depends on an option, so it is built once here rather than source-generated.
        _pattern = new Regex(
            @"\A<think>\n.*?\n</think>\n<answer>\n.*?```" + Regex.Escape(options.Language) + @".*?```.*?\n</answer>$",
            RegexOptions.Singleline | RegexOptions.Multiline | RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(RewardOutcome.Score(_pattern.IsMatch(args.Completion) ? 1 : 0));
}
