using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Language;

/// <summary>Options of <c>language_consistency</c> (DeepSeek-R1's language-consistency reward).</summary>
public sealed class LanguageConsistencyRewardOptions : IValidatableOptions
{
    /// <summary>
    /// The target language: an ISO 639-1 code (<c>en</c>, <c>fr</c>, ... are Latin; <c>zh</c> Han; <c>ja</c> Han,
    /// Hiragana and Katakana; <c>ko</c> Hangul; <c>ru</c> Cyrillic; <c>ar</c> Arabic; <c>hi</c> Devanagari;
    /// <c>th</c> Thai; <c>el</c> Greek; <c>he</c> Hebrew) or a script name (<c>latin</c>, <c>han</c>, ...).
    /// Default <c>en</c>.
    /// </summary>
    public string Language { get; set; } = "en";

    /// <summary>Which text is judged. Default <see cref="ReasoningScope.Reasoning"/> (the chain of thought, as in R1).</summary>
    public ReasoningScope Scope { get; set; } = ReasoningScope.Reasoning;

    /// <summary>
    /// The score of a text with no words at all (empty, or only math, code, digits and punctuation): the proportion
    /// is 0/0 there. Default 1.0 (nothing in another language was written); range [0, 1].
    /// </summary>
    public double NoWordsScore { get; set; } = 1.0;

    /// <inheritdoc/>
    public string? Validate()
    {
        if (!LanguageScripts.TryGetMask(Language, out _))
        {
            return $"language: unknown language or script '{Language}' (known: {LanguageScripts.Known})";
        }

        return NoWordsScore is >= 0 and <= 1 ? null : $"no_words_score: expected a number in [0, 1], got {NoWordsScore}";
    }
}
