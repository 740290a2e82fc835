// Finds the final answer in a completion (or a gold solution) and normalises its LaTeX before parsing.
// Order, after </think> and inside <answer> when present: "final answer is $..$", the last \boxed{} (adjacent boxes
// joined), "answer is ..." / "####", the last LaTeX environment, the whole text when it is a bare expression, and
// last the last number in the text (Math-Verify's expression fallback).
using System.Text;
using System.Text.RegularExpressions;

namespace DeepSeekRL.Rewards.Accuracy;

/// <summary>Answer extraction and LaTeX normalisation for <see cref="MathVerifier"/>.</summary>
internal static partial class AnswerExtractor
{
    [GeneratedRegex(@"(?<![A-Za-z0-9.,/])-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+/\d+(?![\d.])|\d+(?:,\d{1,2}(?!\d))?(?:\.\d+)?|\.\d+)")]
    private static partial Regex NumberRegex();

    [GeneratedRegex(@"^-?(?:\d{1,3}(?:[ ,]\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?|\.\d+)$")]
    private static partial Regex WholeNumberRegex();

    [GeneratedRegex(@"\\(?:text|textbf|mathrm|mbox|textnormal|textit)\s*\{\s*(?:and|or)\s*\}|(?<=[\s}$\d)])(?:and|or)(?=[\s\\$\d{(])")]
    private static partial Regex AndOrRegex();

    [GeneratedRegex(@"\\(?:text|textbf|mathrm|mbox|textnormal|textit)\s*\{([^{}]*)\}(?:\s*\^\s*\{?\d\}?)?")]
    private static partial Regex TextCommandRegex();

    [GeneratedRegex(@"\s*(?:\\?%|\\\$|percentage|percent|pct)(?![A-Za-z])")]
    private static partial Regex PercentRegex();

    [GeneratedRegex(@"\^\s*\{?\s*\\circ\s*\}?|\\circ|°|\\degree")]
    private static partial Regex DegreeRegex();

    [GeneratedRegex(@"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])\.?")]
    private static partial Regex SizingRegex();

    [GeneratedRegex(@"(?<!\\)\\(?:[!,;: ]|(?:quad|qquad|displaystyle|textstyle|limits)(?![A-Za-z]))|~")]
    private static partial Regex SpacingRegex();

    [GeneratedRegex(@"(?<!\\)\\\\(?=[a-zA-Z{])")]
    private static partial Regex DoubledBackslashRegex();

    [GeneratedRegex(@"^([^A-Za-z\\]*\d)\s+[A-Za-z]{2,}(?:[\s^]+[A-Za-z0-9]+)*\.?$")]
    private static partial Regex TrailingUnitRegex();

    [GeneratedRegex(@"\\(?:begin|end)\s*\{[A-Za-z*]+\}|\\[A-Za-z]+|\{|\}")]
    private static partial Regex CommandOrBraceRegex();

    [GeneratedRegex(@"[A-Za-z]{3,}")]
    private static partial Regex WordRegex();

    [GeneratedRegex(@"(?:final answer is|answer is|answer:|####)\s*:?", RegexOptions.IgnoreCase)]
    private static partial Regex AnchorRegex();

    [GeneratedRegex(@"^\(?\s*([A-Za-z][A-Za-z ]*)\s*\)?$")]
    private static partial Regex LettersOnlyRegex();

    /// <summary>Extracts the answer text (not yet normalised), or null when there is none.</summary>
    public static string? Extract(string text, AnswerExtraction extraction)
    {
        var t = text.AsSpan();
        var close = t.LastIndexOf("</think>", StringComparison.Ordinal);
        if (close >= 0)
        {
            t = t[(close + 8)..];
        }
        else if (t.Contains("<think>", StringComparison.Ordinal))
        {
            return null;
        }

        var open = t.LastIndexOf("<answer>", StringComparison.Ordinal);
        if (open >= 0)
        {
            t = t[(open + 8)..];
            var end = t.IndexOf("</answer>", StringComparison.Ordinal);
            if (end >= 0)
            {
                t = t[..end];
            }
        }

        var latex = (extraction & AnswerExtraction.Latex) != 0;
        var s = t.ToString();
        if (latex)
        {
            var fin = s.LastIndexOf("final answer is", StringComparison.OrdinalIgnoreCase);
            if (fin >= 0)
            {
                var rest = s.AsSpan(fin + 15).TrimStart(" :");
                if (rest.StartsWith("$") || rest.StartsWith("\\(") || rest.StartsWith("\\["))
                {
                    var env = LastEnvironment(rest.ToString(), first: true);
                    if (env is not null)
                    {
                        return env;
                    }
                }
            }

            var boxed = LastBoxed(s);
            if (boxed is not null)
            {
                return boxed;
            }
        }

        var anchor = LastAnchor(s, latex);
        if (anchor is not null)
        {
            return anchor;
        }

        if (latex)
        {
            var env = LastEnvironment(s, first: false);
            if (env is not null)
            {
                return env;
            }
        }

        var whole = s.Trim();
        if (whole.Length > 0 && whole.Length <= 300 && IsBareExpression(whole))
        {
            return whole;
        }

        if ((extraction & AnswerExtraction.Expression) == 0)
        {
            return null;
        }

        return LastNumber(s);
    }

    private static string? LastNumber(string s)
    {
        int lastIndex = -1, lastLength = 0;
        foreach (var m in NumberRegex().EnumerateMatches(s))
        {
            lastIndex = m.Index;
            lastLength = m.Length;
        }

        return lastIndex < 0 ? null : s.Substring(lastIndex, lastLength);
    }

    private static string? LastAnchor(string s, bool latex)
    {
        var idx = -1;
        var len = 0;
        foreach (var m in AnchorRegex().EnumerateMatches(s))
        {
            idx = m.Index;
            len = m.Length;
        }

        if (idx < 0)
        {
            return null;
        }

        var rest = s.AsSpan(idx + len).TrimStart();
        if (latex && (rest.StartsWith("$") || rest.StartsWith("\\(") || rest.StartsWith("\\[")))
        {
            return LastEnvironment(rest.ToString(), first: true);
        }

        var stop = rest.IndexOfAny('\n', '\r');
        if (stop >= 0)
        {
            rest = rest[..stop];
        }

        // The sentence ends at ". " (a decimal point has a digit after it).
        for (var i = 0; i < rest.Length; i++)
        {
            if (rest[i] == '.' && (i + 1 == rest.Length || char.IsWhiteSpace(rest[i + 1])))
            {
                rest = rest[..i];
                break;
            }
        }

        var answer = rest.Trim().ToString();
        if (answer.Length == 0)
        {
            return null;
        }

        return IsBareExpression(answer) ? answer : LastNumber(answer);
    }

    /// <summary>Content of the last \boxed{...}/\fbox{...}, joined with boxes just before it (few words apart).</summary>
    private static string? LastBoxed(string s)
    {
        var parts = new List<string>();
        var searchEnd = s.Length;
        var nextStart = -1;
        while (true)
        {
            var b = s.LastIndexOf("\\boxed", searchEnd - 1, searchEnd, StringComparison.Ordinal);
            var f = searchEnd > 0 ? s.LastIndexOf("\\fbox", searchEnd - 1, searchEnd, StringComparison.Ordinal) : -1;
            var at = Math.Max(b, f);
            if (at < 0)
            {
                break;
            }

            var contentStart = at + (at == b ? 6 : 5);
            var content = ReadBalanced(s, contentStart, out var contentEnd);
            if (content is null)
            {
                searchEnd = at;
                if (searchEnd <= 0)
                {
                    break;
                }

                continue;
            }

            if (nextStart >= 0 && !IsShortGap(s.AsSpan(contentEnd, nextStart - contentEnd), maxWords: 4))
            {
                break;
            }

            parts.Add(content);
            nextStart = at;
            searchEnd = at;
            if (searchEnd <= 0)
            {
                break;
            }
        }

        if (parts.Count == 0)
        {
            return null;
        }

        parts.Reverse();
        return string.Join(", ", parts);
    }

    /// <summary>Reads <c>{...}</c> with balanced braces at <paramref name="start"/> (or one token for <c>\boxed 5</c>).</summary>
    private static string? ReadBalanced(string s, int start, out int end)
    {
        end = start;
        var i = start;
        while (i < s.Length && s[i] == ' ')
        {
            i++;
        }

        if (i >= s.Length)
        {
            return null;
        }

        if (s[i] != '{')
        {
            var j = i;
            while (j < s.Length && !char.IsWhiteSpace(s[j]) && s[j] != '$')
            {
                j++;
            }

            end = j;
            return j > i ? s[i..j] : null;
        }

        var depth = 0;
        for (var k = i; k < s.Length; k++)
        {
            if (s[k] == '\\' && k + 1 < s.Length && (s[k + 1] == '{' || s[k + 1] == '}'))
            {
                k++;
                continue;
            }

            if (s[k] == '{')
            {
                depth++;
            }
            else if (s[k] == '}' && --depth == 0)
            {
                end = k + 1;
                return s[(i + 1)..k];
            }
        }

        return null;
    }

    private static bool IsShortGap(ReadOnlySpan<char> gap, int maxWords)
    {
        var words = 0;
        var inWord = false;
        for (var i = 0; i < gap.Length; i++)
        {
            var c = gap[i];
            if (c == '\\')
            {
                // Skip commands (\quad, \text, \) ...) without counting them as words.
                i++;
                while (i < gap.Length && char.IsAsciiLetter(gap[i]))
                {
                    i++;
                }

                i--;
                inWord = false;
                continue;
            }

            if (char.IsLetterOrDigit(c))
            {
                if (!inWord)
                {
                    words++;
                    inWord = true;
                }
            }
            else
            {
                inWord = false;
            }
        }

        return words <= maxWords && gap.Length <= 60;
    }

    private static bool IsSeparatorGap(ReadOnlySpan<char> gap)
    {
        var g = gap.Trim();
        return g.IsEmpty || g is "," || g is "and" || g is "or" || g is ", and" || g is ", or" || g is ";";
    }

    /// <summary>The content of the last (or first) $..$, $$..$$, \(..\), \[..\] environment.</summary>
    private static string? LastEnvironment(string s, bool first)
    {
        var envs = new List<(int Start, int End, string Content)>();
        var i = 0;
        while (i < s.Length)
        {
            var c = s[i];
            string? close = null;
            var openLen = 0;
            if (c == '$')
            {
                var dbl = i + 1 < s.Length && s[i + 1] == '$';
                close = dbl ? "$$" : "$";
                openLen = dbl ? 2 : 1;
            }
            else if (c == '\\' && i + 1 < s.Length && (s[i + 1] == '(' || s[i + 1] == '['))
            {
                close = s[i + 1] == '(' ? "\\)" : "\\]";
                openLen = 2;
            }

            if (close is null)
            {
                i++;
                continue;
            }

            var from = i + openLen;
            var end = s.IndexOf(close, from, StringComparison.Ordinal);
            if (close == "$")
            {
                // Skip escaped \$ inside inline math.
                while (end > 0 && s[end - 1] == '\\')
                {
                    end = s.IndexOf(close, end + 1, StringComparison.Ordinal);
                }
            }

            if (end < 0)
            {
                break;
            }

            var content = s[from..end];
            var inline = close is "$" or "\\)";
            if (!(inline && content.Contains('\n', StringComparison.Ordinal)) && content.Trim().Length > 0)
            {
                envs.Add((i, end + close.Length, content));
                if (first)
                {
                    return content;
                }
            }

            i = end + close.Length;
        }

        if (envs.Count == 0)
        {
            return null;
        }

        // Join "$1$ and $2$ and $3$"-style lists.
        var k = envs.Count - 1;
        while (k > 0 && IsSeparatorGap(s.AsSpan(envs[k - 1].End, envs[k].Start - envs[k - 1].End)))
        {
            k--;
        }

        if (k == envs.Count - 1)
        {
            return envs[k].Content;
        }

        var sb = new StringBuilder();
        for (var j = k; j < envs.Count; j++)
        {
            if (sb.Length > 0)
            {
                sb.Append(", ");
            }

            sb.Append(envs[j].Content);
        }

        return sb.ToString();
    }

    /// <summary>True for text that is a bare expression (no prose words): the whole text is the answer.</summary>
    private static bool IsBareExpression(string s)
    {
        if (s.Contains('\n', StringComparison.Ordinal))
        {
            return false;
        }

        var stripped = CommandOrBraceRegex().Replace(TextCommandRegex().Replace(s, string.Empty), " ");
        stripped = PercentRegex().Replace(stripped, string.Empty);
        return !WordRegex().IsMatch(stripped);
    }

    /// <summary>Normalises an extracted answer's LaTeX; returns the text to parse.</summary>
    public static string Normalize(string answer, AnswerExtraction extraction, out string? plainText)
    {
        plainText = null;
        var s = answer.Trim();
        s = DoubledBackslashRegex().Replace(s, "\\");
        s = s.Replace("\\$", string.Empty, StringComparison.Ordinal).Trim().Trim('$').Trim();
        if (s.StartsWith("\\boxed", StringComparison.Ordinal) || s.StartsWith("\\fbox", StringComparison.Ordinal))
        {
            var inner = LastBoxed(s);
            if (inner is not null)
            {
                s = inner.Trim();
            }
        }

        s = s.TrimEnd('.', ',', ';', ' ').Trim();

        var whole = TextCommandRegex().Match(s);
        if (whole.Success && whole.Length == s.Length)
        {
            var lettersOnly = LettersOnlyRegex().Match(whole.Groups[1].Value.Trim());
            if (lettersOnly.Success)
            {
                plainText = lettersOnly.Groups[1].Value.Trim();
                return s;
            }
        }

        var bare = LettersOnlyRegex().Match(s);
        if (bare.Success && (bare.Groups[1].Length > 1 || s.Length == 1 || s.StartsWith('(')))
        {
            plainText = bare.Groups[1].Value.Trim();
            return s;
        }

        s = SizingRegex().Replace(s, string.Empty);
        s = s.Replace("\\dfrac", "\\frac", StringComparison.Ordinal)
            .Replace("\\tfrac", "\\frac", StringComparison.Ordinal)
            .Replace("\\cfrac", "\\frac", StringComparison.Ordinal)
            .Replace(",\\!", string.Empty, StringComparison.Ordinal)
            .Replace("{,}", string.Empty, StringComparison.Ordinal)
            .Replace("\\lt", "<", StringComparison.Ordinal)
            .Replace("\\gt", ">", StringComparison.Ordinal);
        s = SpacingRegex().Replace(s, " ");
        s = DegreeRegex().Replace(s, string.Empty);
        s = PercentRegex().Replace(s, string.Empty);
        s = AndOrRegex().Replace(s, ",");
        s = TextCommandRegex().Replace(s, static m =>
        {
            var content = m.Groups[1].Value.Trim();
            return content.Length == 1 || (content.Length > 0 && char.IsAsciiDigit(content[0])) ? content : " ";
        });
        var unit = TrailingUnitRegex().Match(s.Trim());
        if (unit.Success)
        {
            s = unit.Groups[1].Value;
        }

        s = s.Trim().TrimEnd('.', ',', ';').Trim();
        if (WholeNumberRegex().IsMatch(s))
        {
            s = NormalizeNumber(s, decimalComma: (extraction & AnswerExtraction.Latex) == 0);
        }

        return s;
    }

    /// <summary>Plain numbers with separators: 7,425,000 / 1 000 / 1,000.99 / 1,22 (decimal comma) / 0,111.</summary>
    public static string NormalizeNumber(string s, bool decimalComma)
    {
        if (s.Contains(' ', StringComparison.Ordinal))
        {
            return s.Replace(" ", string.Empty, StringComparison.Ordinal);
        }

        var comma = s.IndexOf(',', StringComparison.Ordinal);
        if (comma < 0)
        {
            return s;
        }

        var commas = s.AsSpan().Count(',');
        if (commas > 1 || s.Contains('.', StringComparison.Ordinal))
        {
            return s.Replace(",", string.Empty, StringComparison.Ordinal);
        }

        var head = s.AsSpan(0, comma).TrimStart('-');
        var tail = s.AsSpan(comma + 1);
        var thousands = tail.Length == 3 && head is not "0";
        if (!thousands && !decimalComma)
        {
            return s;
        }

        return thousands ? s.Replace(",", string.Empty, StringComparison.Ordinal) : s.Replace(',', '.');
    }
}

/// <summary>Where the verifier looks for an answer (Math-Verify's extraction targets).</summary>
[Flags]
public enum AnswerExtraction
{
    /// <summary>Plain text only: the whole text or its last number; a dollar sign is a currency sign.</summary>
    Expression = 1,

    /// <summary>LaTeX: boxes, "final answer is", math environments.</summary>
    Latex = 2,

    /// <summary>Both (the default).</summary>
    All = Expression | Latex,
}
