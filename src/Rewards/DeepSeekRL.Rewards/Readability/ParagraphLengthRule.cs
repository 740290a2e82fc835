using DeepSeekRL.Rewards.Language;
using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Readability;

/// <summary>
/// <c>paragraph_length</c>: the share of the chain of thought's paragraphs that are at most
/// <see cref="ParagraphLengthRewardOptions.MaxWords"/> words long. 1 = clean; range [0, 1].
/// </summary>
/// <remarks>
/// Paragraphs are separated by blank lines (only white space). Words: runs of non-white-space characters, except that
/// each Han, Hiragana or Katakana character is a word of its own. A text without paragraphs scores 1. As a filter,
/// keep samples scoring 1. Thread-safe; no allocation.
/// </remarks>
[RewardRule("paragraph_length")]
internal sealed class ParagraphLengthRule : IRewardRule
{
    private readonly int _maxWords;
    private readonly ReasoningScope _scope;

    /// <summary>Creates the rule.</summary>
    /// <param name="options">Its options (validated).</param>
    public ParagraphLengthRule(ParagraphLengthRewardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _maxWords = options.MaxWords;
        _scope = options.Scope;
    }

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken)
    {
        var (paragraphs, overlong) = Count(ChainOfThought.Select(args.Completion, _scope), _maxWords);
        return ValueTask.FromResult(overlong == 0
            ? RewardOutcome.Score(1)
            : RewardOutcome.Score((double)(paragraphs - overlong) / paragraphs, $"{overlong} of {paragraphs} paragraphs exceed {_maxWords} words"));
    }

    /// <summary>Counts paragraphs and those longer than <paramref name="maxWords"/>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="maxWords">The limit.</param>
    /// <returns>The counts.</returns>
    public static (int Paragraphs, int Overlong) Count(ReadOnlySpan<char> text, int maxWords)
    {
        var paragraphs = 0;
        var overlong = 0;
        var words = 0;
        foreach (var line in text.EnumerateLines())
        {
            if (line.IsWhiteSpace())
            {
                Close(ref paragraphs, ref overlong, ref words, maxWords);
                continue;
            }

            var inWord = false;
            foreach (var c in line)
            {
                if (char.IsWhiteSpace(c))
                {
                    inWord = false;
                }
                else if (c >= '\u3005' && ScriptWordCounter.Classify(c) is Script.Han or Script.Hiragana or Script.Katakana
                    && char.IsLetter(c))
                {
                    words++;
                    inWord = false;
                }
                else if (!inWord)
                {
                    words++;
                    inWord = true;
                }
            }
        }

        Close(ref paragraphs, ref overlong, ref words, maxWords);
        return (paragraphs, overlong);

        static void Close(ref int paragraphs, ref int overlong, ref int words, int maxWords)
        {
            if (words > 0)
            {
                paragraphs++;
                overlong += words > maxWords ? 1 : 0;
                words = 0;
            }
        }
    }
}
