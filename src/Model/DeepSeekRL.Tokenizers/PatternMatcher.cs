using System.Text.RegularExpressions;

namespace DeepSeekRL.Tokenizers;

/// <summary>
/// Finds the leftmost match of a Split pattern in a piece of text, as <c>regex.find_iter</c> does. The patterns used
/// by the tokenizers we support have hand-written scanners that walk code points (exact and allocation-free); any
/// other regex runs on .NET <see cref="Regex"/>, which sees UTF-16 units, so it refuses text outside the BMP
/// rather than split a surrogate pair differently from the reference.
/// </summary>
internal abstract class PatternMatcher
{
    /// <summary>DeepSeek-V3's first Split: numbers in groups of at most three.</summary>
    public const string DeepSeekDigits = @"\p{N}{1,3}";

    /// <summary>DeepSeek-V3's second Split: runs of CJK ideographs, hiragana and katakana.</summary>
    public const string DeepSeekCjk = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+";

    /// <summary>DeepSeek-V3's third Split: words, punctuation runs, line breaks and spaces.</summary>
    public const string DeepSeekWords = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

    /// <summary>GPT-2's pattern (the ByteLevel pre-tokenizer with <c>use_regex</c>).</summary>
    public const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>The pattern as written in tokenizer.json (for messages).</summary>
    public abstract string Source { get; }

    /// <summary>Finds the leftmost non-empty match at or after <paramref name="from"/>.</summary>
    /// <param name="s">The piece.</param>
    /// <param name="from">Where to start (a code point boundary).</param>
    /// <param name="start">The match start.</param>
    /// <param name="length">The match length in UTF-16 units.</param>
    /// <returns>Whether there is a match.</returns>
    public abstract bool FindNext(ReadOnlySpan<char> s, int from, out int start, out int length);

    /// <summary>The matcher for a regex from tokenizer.json.</summary>
    public static PatternMatcher ForRegex(string pattern) => pattern switch
    {
        DeepSeekDigits => new DigitsMatcher(pattern),
        DeepSeekCjk => new CjkMatcher(pattern),
        DeepSeekWords => new DeepSeekWordsMatcher(pattern),
        Gpt2 => new Gpt2Matcher(pattern),
        _ => new DotNetRegexMatcher(pattern),
    };

    /// <summary>The matcher for a literal string pattern.</summary>
    public static PatternMatcher ForString(string literal) => new LiteralMatcher(literal);

    /// <summary>Base of the code-point scanners: tries <see cref="MatchAt"/> at each code point.</summary>
    private abstract class Scanner(string source) : PatternMatcher
    {
        public override string Source { get; } = source;

        public override bool FindNext(ReadOnlySpan<char> s, int from, out int start, out int length)
        {
            var i = from;
            while (i < s.Length)
            {
                var n = MatchAt(s, i);
                if (n > 0)
                {
                    start = i;
                    length = n;
                    return true;
                }

                i += char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
            }

            start = s.Length;
            length = 0;
            return false;
        }

        /// <summary>The length of the match starting exactly at <paramref name="i"/>, 0 when none.</summary>
        protected abstract int MatchAt(ReadOnlySpan<char> s, int i);

        /// <summary>The end of the run of code points whose flags intersect <paramref name="mask"/>, from <paramref name="i"/>.</summary>
        protected static int Run(ReadOnlySpan<char> s, int i, byte mask)
        {
            while (i < s.Length)
            {
                var f = UnicodeClass.At(s, i, out var w);
                if ((f & mask) == 0)
                {
                    break;
                }

                i += w;
            }

            return i;
        }

        /// <summary>
        /// The whitespace alternatives shared by both patterns: <c>\s+(?!\S)|\s+</c>, with Oniguruma's backtracking
        /// (a run followed by a non-space gives back its last space, unless that leaves nothing).
        /// </summary>
        protected static int SpaceRun(ReadOnlySpan<char> s, int i, int end)
        {
            if (end == s.Length)
            {
                return end - i;
            }

            return end - i >= 2 ? end - 1 - i : end - i;
        }
    }

    /// <summary><c>\p{N}{1,3}</c>.</summary>
    private sealed class DigitsMatcher(string source) : Scanner(source)
    {
        protected override int MatchAt(ReadOnlySpan<char> s, int i)
        {
            var j = i;
            for (var k = 0; k < 3 && j < s.Length; k++)
            {
                var f = UnicodeClass.At(s, j, out var w);
                if ((f & UnicodeClass.Number) == 0)
                {
                    break;
                }

                j += w;
            }

            return j - i;
        }
    }

    /// <summary><c>[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+</c> (BMP ranges only).</summary>
    private sealed class CjkMatcher(string source) : Scanner(source)
    {
        public override bool FindNext(ReadOnlySpan<char> s, int from, out int start, out int length)
        {
            // A low surrogate is never in these ranges, so a unit-wise search cannot start inside a pair.
            for (var i = from; i < s.Length; i++)
            {
                if (IsCjk(s[i]))
                {
                    var j = i + 1;
                    while (j < s.Length && IsCjk(s[j]))
                    {
                        j++;
                    }

                    start = i;
                    length = j - i;
                    return true;
                }
            }

            start = s.Length;
            length = 0;
            return false;
        }

        protected override int MatchAt(ReadOnlySpan<char> s, int i) => throw new NotSupportedException();

        private static bool IsCjk(char c) => c is (>= '\u4e00' and <= '\u9fa5') or (>= '\u3040' and <= '\u309f') or (>= '\u30a0' and <= '\u30ff');
    }

    /// <summary>DeepSeek-V3's word pattern; see <see cref="DeepSeekWords"/>. Alternatives are tried in order.</summary>
    private sealed class DeepSeekWordsMatcher(string source) : Scanner(source)
    {
        private const byte LetterOrMark = UnicodeClass.Letter | UnicodeClass.Mark;
        private const byte PunctOrSymbol = UnicodeClass.Punctuation | UnicodeClass.Symbol;

        protected override int MatchAt(ReadOnlySpan<char> s, int i)
        {
            var c = s[i];
            var n = s.Length;

            // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+
            if (c < 128 && char.IsAsciiLetter(c) is false && IsAsciiPunct(c) && i + 1 < n && char.IsAsciiLetter(s[i + 1]))
            {
                var j = i + 2;
                while (j < n && char.IsAsciiLetter(s[j]))
                {
                    j++;
                }

                return j - i;
            }

            var f = UnicodeClass.At(s, i, out var w);

            // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ : the optional prefix first (greedy), then without it.
            if (c != '\r' && c != '\n' && (f & (UnicodeClass.Letter | PunctOrSymbol)) == 0 && i + w < n
                && (UnicodeClass.At(s, i + w, out _) & LetterOrMark) != 0)
            {
                return Run(s, i + w, LetterOrMark) - i;
            }

            if ((f & LetterOrMark) != 0)
            {
                return Run(s, i, LetterOrMark) - i;
            }

            // ' ?[\p{P}\p{S}]+[\r\n]*'
            var p = -1;
            if (c == ' ' && i + 1 < n && (UnicodeClass.At(s, i + 1, out _) & PunctOrSymbol) != 0)
            {
                p = i + 1;
            }
            else if ((f & PunctOrSymbol) != 0)
            {
                p = i;
            }

            if (p >= 0)
            {
                var j = Run(s, p, PunctOrSymbol);
                while (j < n && s[j] is '\r' or '\n')
                {
                    j++;
                }

                return j - i;
            }

            if ((f & UnicodeClass.Space) == 0)
            {
                return 0;
            }

            // \s*[\r\n]+ : through the last line break of the space run.
            var end = i;
            var lastBreak = -1;
            while (end < n && (UnicodeClass.At(s, end, out _) & UnicodeClass.Space) != 0)
            {
                if (s[end] is '\r' or '\n')
                {
                    lastBreak = end;
                }

                end++;
            }

            return lastBreak >= 0 ? lastBreak + 1 - i : SpaceRun(s, i, end);
        }

        private static bool IsAsciiPunct(char c) => c is (>= '!' and <= '/') or (>= ':' and <= '@') or (>= '[' and <= '`') or (>= '{' and <= '~');
    }

    /// <summary>GPT-2's pattern; see <see cref="Gpt2"/>.</summary>
    private sealed class Gpt2Matcher(string source) : Scanner(source)
    {
        private const byte NotOther = UnicodeClass.Letter | UnicodeClass.Number | UnicodeClass.Space;

        protected override int MatchAt(ReadOnlySpan<char> s, int i)
        {
            var c = s[i];
            var n = s.Length;
            if (c == '\'' && i + 1 < n)
            {
                var d = s[i + 1];
                if (d is 's' or 't' or 'm' or 'd')
                {
                    return 2;
                }

                if (i + 2 < n && ((d == 'r' && s[i + 2] == 'e') || (d == 'v' && s[i + 2] == 'e') || (d == 'l' && s[i + 2] == 'l')))
                {
                    return 3;
                }
            }

            var f = UnicodeClass.At(s, i, out _);
            var next = c == ' ' && i + 1 < n ? UnicodeClass.At(s, i + 1, out _) : (byte)0;
            if (c == ' ' && (next & UnicodeClass.Letter) != 0)
            {
                return Run(s, i + 1, UnicodeClass.Letter) - i;
            }

            if ((f & UnicodeClass.Letter) != 0)
            {
                return Run(s, i, UnicodeClass.Letter) - i;
            }

            if (c == ' ' && (next & UnicodeClass.Number) != 0)
            {
                return Run(s, i + 1, UnicodeClass.Number) - i;
            }

            if ((f & UnicodeClass.Number) != 0)
            {
                return Run(s, i, UnicodeClass.Number) - i;
            }

            if (c == ' ' && i + 1 < n && (next & NotOther) == 0)
            {
                return RunOther(s, i + 1) - i;
            }

            if ((f & NotOther) == 0)
            {
                return RunOther(s, i) - i;
            }

            // f has Space here.
            var end = i;
            while (end < n && (UnicodeClass.At(s, end, out _) & UnicodeClass.Space) != 0)
            {
                end++;
            }

            return SpaceRun(s, i, end);
        }

        private static int RunOther(ReadOnlySpan<char> s, int i)
        {
            while (i < s.Length)
            {
                var f = UnicodeClass.At(s, i, out var w);
                if ((f & NotOther) != 0)
                {
                    break;
                }

                i += w;
            }

            return i;
        }
    }

    /// <summary>A literal string (the <c>{"String": ...}</c> form of a Split pattern).</summary>
    private sealed class LiteralMatcher(string literal) : PatternMatcher
    {
        public override string Source { get; } = literal;

        public override bool FindNext(ReadOnlySpan<char> s, int from, out int start, out int length)
        {
            var k = Source.Length == 0 ? -1 : s[from..].IndexOf(Source, StringComparison.Ordinal);
            start = k < 0 ? s.Length : from + k;
            length = k < 0 ? 0 : Source.Length;
            return k >= 0;
        }
    }

    /// <summary>Any other regex, on .NET's engine; text outside the BMP is refused (see the class remarks).</summary>
    private sealed class DotNetRegexMatcher : PatternMatcher
    {
        private readonly Regex _regex;

        public DotNetRegexMatcher(string pattern)
        {
            Source = pattern;
            _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromSeconds(10));
        }

        public override string Source { get; }

        public override bool FindNext(ReadOnlySpan<char> s, int from, out int start, out int length)
        {
            if (s.IndexOfAnyInRange('\uD800', '\uDFFF') >= 0)
            {
                throw new NotSupportedException($"the Split regex {Source} runs on .NET's UTF-16 regex engine, which would split characters outside the BMP differently from Hugging Face; text with such characters is not supported with this pattern");
            }

            foreach (var m in _regex.EnumerateMatches(s, from))
            {
                if (m.Length > 0)
                {
                    start = m.Index;
                    length = m.Length;
                    return true;
                }
            }

            start = s.Length;
            length = 0;
            return false;
        }
    }
}
