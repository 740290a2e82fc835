using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Language;

/// <summary>Options of <c>mixed_language</c> (R1's "mixed languages" readability filter).</summary>
public sealed class MixedLanguageRewardOptions : IValidatableOptions
{
    /// <summary>
    /// The expected language (as <see cref="LanguageConsistencyRewardOptions.Language"/>), or <see langword="null"/>
    /// to take the text's dominant script (Han, Hiragana and Katakana then count as one, so auto mode cannot tell
    /// Chinese from Japanese). Default <see langword="null"/>.
    /// </summary>
    public string? Language { get; set; }

    /// <summary>The largest share of words outside the expected (or dominant) language that is still not mixing. Default 0.05; range [0, 1).</summary>
    public double Tolerance { get; set; } = 0.05;

    /// <summary>Which text is judged. Default <see cref="ReasoningScope.Reasoning"/>.</summary>
    public ReasoningScope Scope { get; set; } = ReasoningScope.Reasoning;

    /// <inheritdoc/>
    public string? Validate()
    {
        if (Language is not null && !LanguageScripts.TryGetMask(Language, out _))
        {
            return $"language: unknown language or script '{Language}' (known: {LanguageScripts.Known}; or null for the dominant script)";
        }

        return Tolerance is >= 0 and < 1 ? null : $"tolerance: expected a number in [0, 1), got {Tolerance}";
    }
}
