namespace DeepSeekRL.Rewards.Language;

/// <summary>The writing systems that the language rules tell apart (see docs/rewards/language-consistency.md).</summary>
public enum Script
{
    /// <summary>Not a letter (digits, punctuation, symbols, white space). Never counted.</summary>
    None = 0,

    /// <summary>Latin letters (ASCII, Latin-1, Latin Extended, IPA, fullwidth Latin).</summary>
    Latin,

    /// <summary>Han ideographs (CJK Unified Ideographs and extensions, compatibility ideographs, 々 and 〇); one word per character.</summary>
    Han,

    /// <summary>Hiragana; one word per character.</summary>
    Hiragana,

    /// <summary>Katakana (including halfwidth forms and the prolonged sound mark ー); one word per character.</summary>
    Katakana,

    /// <summary>Hangul syllables and jamo.</summary>
    Hangul,

    /// <summary>Cyrillic.</summary>
    Cyrillic,

    /// <summary>Arabic (including presentation forms).</summary>
    Arabic,

    /// <summary>Devanagari.</summary>
    Devanagari,

    /// <summary>Thai.</summary>
    Thai,

    /// <summary>Greek (including Greek Extended).</summary>
    Greek,

    /// <summary>Hebrew.</summary>
    Hebrew,

    /// <summary>Any other letter (Armenian, Georgian, Bengali, Tamil, Ethiopic, ...).</summary>
    Other,
}
