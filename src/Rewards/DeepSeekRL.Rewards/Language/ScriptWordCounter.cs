using System.Globalization;

namespace DeepSeekRL.Rewards.Language;

/// <summary>
/// Counts the words of a text by writing system, skipping math and code. One pass, no allocation; the definition of a
/// word is the one in docs/rewards/language-consistency.md (and in <see cref="LanguageConsistencyRule"/>'s remarks).
/// </summary>
internal static class ScriptWordCounter
{
    /// <summary>The length of the counts span: one slot per <see cref="Script"/> value.</summary>
    public const int Slots = (int)Script.Other + 1;

    /// <summary>Counts the words of <paramref name="text"/> into <paramref name="counts"/> (indexed by <see cref="Script"/>).</summary>
    /// <param name="text">The text.</param>
    /// <param name="counts">At least <see cref="Slots"/> entries; incremented, not cleared.</param>
    /// <returns>The total number of words counted.</returns>
    public static int Count(ReadOnlySpan<char> text, Span<int> counts)
    {
        var total = 0;
        var current = Script.None; // script of the word being read (for space-delimited scripts), None between words
        var lineStart = true;      // only indentation seen since the last line break (for code fences)
        var noDollarCloser = false; // once a search for a closing $ fails, no later $ can close either
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (c < 0x80)
            {
                if (char.IsAsciiLetter(c))
                {
                    if (current != Script.Latin)
                    {
                        counts[(int)Script.Latin]++;
                        total++;
                        current = Script.Latin;
                    }

                    lineStart = false;
                    i++;
                    continue;
                }

                switch (c)
                {
                    case '\n':
                        current = Script.None;
                        lineStart = true;
                        i++;
                        continue;
                    case ' ' or '\t' or '\r':
                        current = Script.None;
                        i++;
                        continue;
                    case '\'':
                        // An apostrophe between two letters joins them ("don't" is one word).
                        if (current == Script.None || i + 1 >= text.Length || !char.IsLetter(text[i + 1]))
                        {
                            current = Script.None;
                        }

                        i++;
                        lineStart = false;
                        continue;
                    case '`':
                        i = SkipBackticks(text, i, lineStart);
                        break;
                    case '~' when lineStart && IsRun(text, i, '~', 3):
                        i = SkipFence(text, i, '~');
                        break;
                    case '$':
                        i = SkipDollarMath(text, i, ref noDollarCloser);
                        break;
                    case '\\':
                        i = SkipBackslash(text, i);
                        break;
                    case '<':
                        i = SkipMarkupTag(text, i);
                        break;
                    default:
                        i++;
                        break;
                }

                current = Script.None;
                lineStart = false;
                continue;
            }

            lineStart = false;
            int codePoint;
            int width;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                codePoint = char.ConvertToUtf32(c, text[i + 1]);
                width = 2;
            }
            else
            {
                codePoint = c;
                width = 1;
            }

            i += width;
            var category = CharUnicodeInfo.GetUnicodeCategory(codePoint);
            switch (category)
            {
                case UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                    or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter:
                    var script = Classify(codePoint);
                    if (script is Script.Han or Script.Hiragana or Script.Katakana)
                    {
                        // Chinese and Japanese are written without spaces: each character is a word.
                        counts[(int)script]++;
                        total++;
                        current = Script.None;
                    }
                    else if (script != current)
                    {
                        counts[(int)script]++;
                        total++;
                        current = script;
                    }

                    break;
                case UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark:
                    break; // a combining mark continues the word it follows (Devanagari vowel signs, Hebrew points)
                default:
                    if (codePoint != '\u2019' || current == Script.None || i >= text.Length || !char.IsLetter(text[i]))
                    {
                        current = Script.None; // ’ between letters joins like '
                    }

                    break;
            }
        }

        return total;
    }

    /// <summary>The script of a letter's code point.</summary>
    /// <param name="codePoint">A letter (Unicode category L*).</param>
    /// <returns>Its script; <see cref="Script.Other"/> when none of the named ones.</returns>
    public static Script Classify(int codePoint) => codePoint switch
    {
        < 0x0250 => Script.Latin, // ASCII and Latin-1 letters, Latin Extended-A/B (callers pass letters only)
        < 0x02B0 => Script.Latin, // IPA extensions
        < 0x0370 => Script.Other, // spacing modifier letters
        < 0x0400 => Script.Greek,
        < 0x0530 => Script.Cyrillic,
        < 0x0590 => Script.Other, // Armenian
        < 0x0600 => Script.Hebrew,
        < 0x0700 => Script.Arabic,
        < 0x0750 => Script.Other, // Syriac
        < 0x0780 => Script.Arabic, // Arabic Supplement
        < 0x08A0 => Script.Other, // Thaana, NKo, Samaritan, Mandaic, Syriac Supplement
        < 0x0900 => Script.Arabic, // Arabic Extended-A
        < 0x0980 => Script.Devanagari,
        < 0x0E00 => Script.Other, // Bengali .. Sinhala
        < 0x0E80 => Script.Thai,
        < 0x1100 => Script.Other,
        < 0x1200 => Script.Hangul, // Hangul Jamo
        < 0x1C80 => Script.Other,
        < 0x1C90 => Script.Cyrillic, // Cyrillic Extended-C
        < 0x1E00 => Script.Other,
        < 0x1F00 => Script.Latin, // Latin Extended Additional
        < 0x2000 => Script.Greek, // Greek Extended
        < 0x2C60 => Script.Other, // letter-like symbols, Glagolitic
        < 0x2C80 => Script.Latin, // Latin Extended-C
        < 0x2DE0 => Script.Other,
        < 0x2E00 => Script.Cyrillic, // Cyrillic Extended-A
        < 0x3005 => Script.Other,
        0x3005 or 0x3007 or 0x3006 => Script.Han, // 々 〆 〇
        < 0x3040 => Script.Other,
        < 0x30A0 => Script.Hiragana,
        < 0x3100 => Script.Katakana,
        < 0x3130 => Script.Other, // Bopomofo
        < 0x3190 => Script.Hangul, // Hangul Compatibility Jamo
        < 0x31F0 => Script.Other,
        < 0x3200 => Script.Katakana, // Katakana Phonetic Extensions
        < 0x3400 => Script.Other,
        < 0x4DC0 => Script.Han, // Extension A
        < 0x4E00 => Script.Other,
        < 0xA000 => Script.Han, // CJK Unified Ideographs
        < 0xA640 => Script.Other, // Yi, Lisu, Vai
        < 0xA6A0 => Script.Cyrillic, // Cyrillic Extended-B
        < 0xA720 => Script.Other,
        < 0xA800 => Script.Latin, // Latin Extended-D
        < 0xA8E0 => Script.Other,
        < 0xA900 => Script.Devanagari, // Devanagari Extended
        < 0xA960 => Script.Other,
        < 0xA980 => Script.Hangul, // Hangul Jamo Extended-A
        < 0xAB30 => Script.Other,
        < 0xAB70 => Script.Latin, // Latin Extended-E
        < 0xAC00 => Script.Other,
        < 0xD800 => Script.Hangul, // Hangul Syllables, Jamo Extended-B
        < 0xF900 => Script.Other,
        < 0xFB00 => Script.Han, // CJK Compatibility Ideographs
        < 0xFB07 => Script.Latin, // Latin ligatures ﬀ ﬁ ﬂ
        < 0xFB1D => Script.Other,
        < 0xFB50 => Script.Hebrew, // Hebrew presentation forms
        < 0xFE00 => Script.Arabic, // Arabic Presentation Forms-A
        < 0xFE70 => Script.Other,
        < 0xFF00 => Script.Arabic, // Arabic Presentation Forms-B
        < 0xFF21 => Script.Other,
        < 0xFF3B => Script.Latin, // fullwidth A-Z
        < 0xFF41 => Script.Other,
        < 0xFF5B => Script.Latin, // fullwidth a-z
        < 0xFF66 => Script.Other,
        < 0xFFA0 => Script.Katakana, // halfwidth Katakana
        < 0xFFDD => Script.Hangul, // halfwidth Hangul
        < 0x1B000 => Script.Other,
        < 0x1B100 => Script.Hiragana, // Kana Supplement (hentaigana)
        < 0x20000 => Script.Other,
        < 0x2FA20 => Script.Han, // Extensions B-F, compatibility supplement
        < 0x30000 => Script.Other,
        < 0x323B0 => Script.Han, // Extensions G, H
        _ => Script.Other,
    };

    private static bool IsRun(ReadOnlySpan<char> text, int i, char c, int length)
    {
        if (i + length > text.Length)
        {
            return false;
        }

        for (var k = 0; k < length; k++)
        {
            if (text[i + k] != c)
            {
                return false;
            }
        }

        return true;
    }

    private static int RunLength(ReadOnlySpan<char> text, int i, char c)
    {
        var j = i;
        while (j < text.Length && text[j] == c)
        {
            j++;
        }

        return j - i;
    }

    // ``` at a line start opens a fenced block (CommonMark); shorter or mid-line runs delimit inline code, closed by
    // the next run of the same length. An unmatched inline run is literal text.
    private static int SkipBackticks(ReadOnlySpan<char> text, int i, bool lineStart)
    {
        var run = RunLength(text, i, '`');
        if (lineStart && run >= 3)
        {
            return SkipFence(text, i, '`');
        }

        var j = i + run;
        while (j < text.Length)
        {
            var next = text[j..].IndexOf('`');
            if (next < 0)
            {
                break;
            }

            var at = j + next;
            var closing = RunLength(text, at, '`');
            if (closing == run)
            {
                return at + closing;
            }

            j = at + closing;
        }

        return i + run;
    }

    // A fenced block runs to a line that starts (after indentation) with at least as many fence characters, or to the
    // end of the text when unclosed (CommonMark).
    private static int SkipFence(ReadOnlySpan<char> text, int i, char fence)
    {
        var run = RunLength(text, i, fence);
        var lineEnd = text[i..].IndexOf('\n');
        if (lineEnd < 0)
        {
            return text.Length;
        }

        var j = i + lineEnd + 1;
        while (j < text.Length)
        {
            var k = j;
            while (k < text.Length && (text[k] == ' ' || text[k] == '\t'))
            {
                k++;
            }

            if (RunLength(text, k, fence) >= run)
            {
                var end = text[k..].IndexOf('\n');
                return end < 0 ? text.Length : k + end;
            }

            var next = text[j..].IndexOf('\n');
            if (next < 0)
            {
                return text.Length;
            }

            j += next + 1;
        }

        return text.Length;
    }

    // $$...$$ is display math; $...$ is inline math when the opening $ is followed by a non-space and the closing $ is
    // not preceded by a space and not followed by a digit (pandoc's rule, so "$5 and $10" stays text).
    private static int SkipDollarMath(ReadOnlySpan<char> text, int i, ref bool noDollarCloser)
    {
        if (i + 1 < text.Length && text[i + 1] == '$')
        {
            var close = text[(i + 2)..].IndexOf("$$", StringComparison.Ordinal);
            return close < 0 ? i + 2 : i + 2 + close + 2;
        }

        if (noDollarCloser || i + 1 >= text.Length || char.IsWhiteSpace(text[i + 1]))
        {
            return i + 1;
        }

        var j = i + 1;
        while (j < text.Length)
        {
            var next = text[j..].IndexOf('$');
            if (next < 0)
            {
                break;
            }

            var at = j + next;
            var before = text[at - 1];
            var closes = !char.IsWhiteSpace(before) && before != '\\' && (at + 1 >= text.Length || !char.IsAsciiDigit(text[at + 1]));
            if (closes && at > i + 1)
            {
                return at + 1;
            }

            j = at + 1;
        }

        noDollarCloser = true;
        return i + 1;
    }

    // \( ... \) and \[ ... \] are math; \begin{env} ... \end{env} is math (align, equation, ...); any other command
    // name (\frac, \alpha, \textbf) is skipped, its braced arguments are read as text.
    private static int SkipBackslash(ReadOnlySpan<char> text, int i)
    {
        if (i + 1 >= text.Length)
        {
            return i + 1;
        }

        var next = text[i + 1];
        if (next is '(' or '[')
        {
            var closer = next == '(' ? "\\)" : "\\]";
            var close = text[(i + 2)..].IndexOf(closer, StringComparison.Ordinal);
            return close < 0 ? i + 2 : i + 2 + close + 2;
        }

        if (!char.IsAsciiLetter(next))
        {
            return i + 2; // an escaped character such as \$ or \\
        }

        var j = i + 1;
        while (j < text.Length && char.IsAsciiLetter(text[j]))
        {
            j++;
        }

        var name = text[(i + 1)..j];
        if (name.SequenceEqual("begin") && j < text.Length && text[j] == '{')
        {
            var braceEnd = text[j..].IndexOf('}');
            if (braceEnd > 0)
            {
                var environment = text[(j + 1)..(j + braceEnd)];
                var rest = j + braceEnd + 1;
                var search = rest;
                while (search < text.Length)
                {
                    var end = text[search..].IndexOf("\\end{", StringComparison.Ordinal);
                    if (end < 0)
                    {
                        break;
                    }

                    var at = search + end + 5;
                    if (text[at..].StartsWith(environment, StringComparison.Ordinal)
                        && at + environment.Length < text.Length && text[at + environment.Length] == '}')
                    {
                        return at + environment.Length + 1;
                    }

                    search = at;
                }

                return rest;
            }
        }

        return j;
    }

    // <think>, </answer>, <br/> and the like are markup, not words.
    private static int SkipMarkupTag(ReadOnlySpan<char> text, int i)
    {
        var j = i + 1;
        if (j < text.Length && text[j] == '/')
        {
            j++;
        }

        var nameStart = j;
        while (j < text.Length && (char.IsAsciiLetterOrDigit(text[j]) || text[j] == '_'))
        {
            j++;
        }

        if (j == nameStart || !char.IsAsciiLetter(text[nameStart]))
        {
            return i + 1;
        }

        if (j < text.Length && text[j] == '/')
        {
            j++;
        }

        return j < text.Length && text[j] == '>' ? j + 1 : i + 1;
    }
}
