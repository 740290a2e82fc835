using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Readability;

/// <summary>
/// <c>markdown_in_reasoning</c>: 1 when the chain of thought reads as prose, 0 when it holds headings, tables or is
/// bullet-heavy (R1's readability filter for thinking). 1 = clean.
/// </summary>
/// <remarks>
/// Lines inside fenced code blocks are not judged (see <c>code_in_reasoning</c>). Heading: up to three spaces, one to
/// six <c>#</c>, then a space or the line end. Table: a GFM delimiter row (only <c>|</c>, <c>-</c>, <c>:</c> and
/// spaces, at least one <c>|</c> and three <c>-</c>). Bullet-heavy: more than
/// <see cref="MarkdownInReasoningRewardOptions.MaxBulletFraction"/> of at least
/// <see cref="MarkdownInReasoningRewardOptions.MinLines"/> non-blank lines are list items. As a filter, keep samples
/// scoring 1. Thread-safe; no allocation.
/// </remarks>
[RewardRule("markdown_in_reasoning")]
internal sealed class MarkdownInReasoningRule : IRewardRule
{
    private readonly MarkdownInReasoningRewardOptions _options;

    /// <summary>Creates the rule.</summary>
    /// <param name="options">Its options (validated).</param>
    public MarkdownInReasoningRule(MarkdownInReasoningRewardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _options = options;
    }

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Judge(ChainOfThought.Select(args.Completion, _options.Scope)));

    /// <summary>Judges a text.</summary>
    /// <param name="text">The text.</param>
    /// <returns>1, or 0 with the reason.</returns>
    public RewardOutcome Judge(ReadOnlySpan<char> text)
    {
        var lines = 0;
        var bullets = 0;
        var inCode = false;
        foreach (var line in text.EnumerateLines())
        {
            if (ChainOfThought.IsFence(line))
            {
                inCode = !inCode;
                continue;
            }

            if (inCode || line.IsWhiteSpace())
            {
                continue;
            }

            lines++;
            if (!_options.AllowHeadings && IsHeading(line))
            {
                return RewardOutcome.Score(0, "heading in the reasoning");
            }

            if (!_options.AllowTables && IsTableDelimiter(line))
            {
                return RewardOutcome.Score(0, "table in the reasoning");
            }

            bullets += IsListItem(line) ? 1 : 0;
        }

        return lines >= _options.MinLines && bullets > _options.MaxBulletFraction * lines
            ? RewardOutcome.Score(0, $"{bullets} of {lines} lines are list items")
            : RewardOutcome.Score(1);
    }

    private static ReadOnlySpan<char> Unindent(ReadOnlySpan<char> line, int max)
    {
        var i = 0;
        while (i < line.Length && i < max && line[i] == ' ')
        {
            i++;
        }

        return line[i..];
    }

    private static bool IsHeading(ReadOnlySpan<char> line)
    {
        var rest = Unindent(line, 3);
        var hashes = 0;
        while (hashes < rest.Length && rest[hashes] == '#')
        {
            hashes++;
        }

        return hashes is >= 1 and <= 6 && (hashes == rest.Length || rest[hashes] is ' ' or '\t');
    }

    private static bool IsTableDelimiter(ReadOnlySpan<char> line)
    {
        var pipes = 0;
        var dashes = 0;
        foreach (var c in line)
        {
            switch (c)
            {
                case '|':
                    pipes++;
                    break;
                case '-':
                    dashes++;
                    break;
                case ':' or ' ' or '\t':
                    break;
                default:
                    return false;
            }
        }

        return pipes >= 1 && dashes >= 3;
    }

    private static bool IsListItem(ReadOnlySpan<char> line)
    {
        var rest = line.TrimStart();
        if (rest.Length >= 2 && rest[0] is '-' or '*' or '+' && rest[1] is ' ' or '\t')
        {
            return true;
        }

        var digits = 0;
        while (digits < rest.Length && digits < 10 && char.IsAsciiDigit(rest[digits]))
        {
            digits++;
        }

        return digits > 0 && rest.Length > digits + 1 && rest[digits] is '.' or ')' && rest[digits + 1] is ' ' or '\t';
    }
}
