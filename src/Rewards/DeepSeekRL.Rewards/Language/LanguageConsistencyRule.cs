using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Language;

/// <summary>
/// <c>language_consistency</c>: the proportion of the chain of thought's words written in the target language's
/// script (DeepSeek-R1 §2.3.3: Num(target-language words) / Num(words)). Higher is better; range [0, 1].
/// </summary>
/// <remarks>
/// <para>Text: the <c>&lt;think&gt;</c> block (from the first <c>&lt;think&gt;</c>, or from the start when the
/// completion has none, to the first <c>&lt;/think&gt;</c>); the whole completion when it has no think tags at all.</para>
/// <para>Excluded before counting: fenced code blocks (``` or ~~~ at a line start, to the closing fence or the end),
/// inline code (a backtick run to the next run of the same length), math (<c>$$...$$</c>, <c>$...$</c> with pandoc's
/// rules, <c>\(...\)</c>, <c>\[...\]</c>, <c>\begin{env}...\end{env}</c>), LaTeX command names (<c>\frac</c>),
/// markup tags (<c>&lt;answer&gt;</c>). Digits, operators, punctuation and symbols are never words.</para>
/// <para>Word: a Han, Hiragana or Katakana character is one word each (these languages put no spaces between words);
/// any other word is a maximal run of letters of one script (Latin, Hangul, Cyrillic, Arabic, Devanagari, Thai, Greek,
/// Hebrew, other), combining marks continuing the run and an apostrophe between letters joining it. A change of
/// script starts a new word ("abcабв" is two words).</para>
/// <para>No words: <see cref="LanguageConsistencyRewardOptions.NoWordsScore"/> (default 1). Thread-safe; no allocation.</para>
/// </remarks>
[RewardRule("language_consistency")]
internal sealed class LanguageConsistencyRule : IRewardRule
{
    private readonly int _targetMask;
    private readonly ReasoningScope _scope;
    private readonly double _noWordsScore;

    /// <summary>Creates the rule.</summary>
    /// <param name="options">Its options (validated).</param>
    public LanguageConsistencyRule(LanguageConsistencyRewardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        LanguageScripts.TryGetMask(options.Language, out _targetMask);
        _scope = options.Scope;
        _noWordsScore = options.NoWordsScore;
    }

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(RewardOutcome.Score(Score(args.Completion)));

    /// <summary>The score of one completion.</summary>
    /// <param name="completion">The completion.</param>
    /// <returns>The proportion of target-language words.</returns>
    public double Score(string completion)
    {
        var text = _scope == ReasoningScope.Reasoning ? ChainOfThought.Of(completion) : completion.AsSpan();
        Span<int> counts = stackalloc int[ScriptWordCounter.Slots];
        counts.Clear();
        var total = ScriptWordCounter.Count(text, counts);
        return total == 0 ? _noWordsScore : (double)LanguageScripts.Sum(counts, _targetMask) / total;
    }
}
