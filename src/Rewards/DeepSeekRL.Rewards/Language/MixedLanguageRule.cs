using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Language;

/// <summary>
/// <c>mixed_language</c>: 1 when the chain of thought keeps to one language, 0 when it mixes languages beyond
/// <see cref="MixedLanguageRewardOptions.Tolerance"/>. Higher is better, so it serves as a reward and as a
/// rejection-sampling filter (keep samples scoring 1).
/// </summary>
/// <remarks>
/// Words are counted as in <see cref="LanguageConsistencyRule"/>. The foreign share is 1 − (words of the expected
/// language, or of the dominant script when no language is set) / (all words); a text with no words is not mixed.
/// Thread-safe; no allocation.
/// </remarks>
[RewardRule("mixed_language")]
internal sealed class MixedLanguageRule : IRewardRule
{
    private const int CjkMask = (1 << (int)Script.Han) | (1 << (int)Script.Hiragana) | (1 << (int)Script.Katakana);

    private readonly int _targetMask;
    private readonly double _tolerance;
    private readonly ReasoningScope _scope;

    /// <summary>Creates the rule.</summary>
    /// <param name="options">Its options (validated).</param>
    public MixedLanguageRule(MixedLanguageRewardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        LanguageScripts.TryGetMask(options.Language, out _targetMask);
        _tolerance = options.Tolerance;
        _scope = options.Scope;
    }

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken)
    {
        var foreign = ForeignShare(args.Completion);
        return ValueTask.FromResult(foreign > _tolerance
            ? RewardOutcome.Score(0, $"{foreign:P0} of the words are in another language")
            : RewardOutcome.Score(1));
    }

    /// <summary>The share of words outside the expected (or dominant) language.</summary>
    /// <param name="completion">The completion.</param>
    /// <returns>A share in [0, 1]; 0 for a text without words.</returns>
    public double ForeignShare(string completion)
    {
        var text = _scope == ReasoningScope.Reasoning ? ChainOfThought.Of(completion) : completion.AsSpan();
        Span<int> counts = stackalloc int[ScriptWordCounter.Slots];
        counts.Clear();
        var total = ScriptWordCounter.Count(text, counts);
        if (total == 0)
        {
            return 0;
        }

        int inLanguage;
        if (_targetMask != 0)
        {
            inLanguage = LanguageScripts.Sum(counts, _targetMask);
        }
        else
        {
            inLanguage = LanguageScripts.Sum(counts, CjkMask);
            for (var s = 1; s < counts.Length; s++)
            {
                if ((CjkMask & (1 << s)) == 0)
                {
                    inLanguage = Math.Max(inLanguage, counts[s]);
                }
            }
        }

        return (double)(total - inLanguage) / total;
    }
}
