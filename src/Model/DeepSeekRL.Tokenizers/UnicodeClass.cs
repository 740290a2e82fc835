using System.Globalization;

namespace DeepSeekRL.Tokenizers;

/// <summary>
/// Per-code-point classes the pre-tokenizer regexes use (<c>\p{L}</c>, <c>\p{M}</c>, <c>\p{N}</c>, <c>\p{P}</c>,
/// <c>\p{S}</c>, <c>\s</c>), looked up by code point, never by UTF-16 unit: a surrogate pair is one character, as in
/// Rust's Oniguruma and in JavaScript with the <c>u</c> flag. <c>\s</c> is Unicode White_Space (Oniguruma's and
/// .NET's definition; JavaScript also counts U+FEFF and not U+0085).
/// </summary>
internal static class UnicodeClass
{
    public const byte Letter = 1;
    public const byte Mark = 2;
    public const byte Number = 4;
    public const byte Punctuation = 8;
    public const byte Symbol = 16;
    public const byte Space = 32;

    // One byte of flags per BMP code unit; surrogates get 0 (astral code points are looked up on demand).
    private static readonly byte[] Bmp = Build();

    /// <summary>The flags of the code point starting at <paramref name="i"/>; <paramref name="width"/> is 1 or 2 units.</summary>
    public static byte At(ReadOnlySpan<char> s, int i, out int width)
    {
        var c = s[i];
        if (!char.IsHighSurrogate(c) || i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
        {
            width = 1;
            return Bmp[c];
        }

        width = 2;
        return Of(char.ConvertToUtf32(c, s[i + 1]));
    }

    /// <summary>The flags of a code point.</summary>
    public static byte Of(int codePoint)
    {
        if (codePoint < 0x10000)
        {
            return Bmp[codePoint];
        }

        return FromCategory(CharUnicodeInfo.GetUnicodeCategory(codePoint));
    }

    /// <summary>Whether the code point is Unicode White_Space.</summary>
    public static bool IsWhiteSpace(int c) =>
        c is (>= 9 and <= 13) or 0x20 or 0x85 or 0xA0 or 0x1680 or (>= 0x2000 and <= 0x200A) or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    private static byte FromCategory(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Letter,
        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => Mark,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Number,
        UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation => Punctuation,
        UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
            or UnicodeCategory.OtherSymbol => Symbol,
        _ => 0,
    };

    private static byte[] Build()
    {
        var table = new byte[0x10000];
        for (var c = 0; c < 0x10000; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF)
            {
                continue;
            }

            var flags = FromCategory(CharUnicodeInfo.GetUnicodeCategory(c));
            if (IsWhiteSpace(c))
            {
                flags |= Space;
            }

            table[c] = flags;
        }

        return table;
    }
}
