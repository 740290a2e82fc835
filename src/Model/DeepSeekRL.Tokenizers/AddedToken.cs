namespace DeepSeekRL.Tokenizers;

/// <summary>An added token of tokenizer.json: matched in the raw text before pre-tokenization.</summary>
/// <param name="Id">The id.</param>
/// <param name="Content">The text.</param>
/// <param name="Special">Whether it is a special token (skipped by decode when asked).</param>
/// <param name="LStrip">Whether whitespace on its left is swallowed.</param>
/// <param name="RStrip">Whether whitespace on its right is swallowed.</param>
/// <param name="Normalized">Whether Hugging Face matches it on normalized text (recorded; see <see cref="AddedTokenMatcher"/>).</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false, bool Normalized = false);

/// <summary>
/// Finds added tokens in text: leftmost, then longest (Hugging Face's aho-corasick LeftmostLongest, and the
/// transformers.js trie). All tokens are matched on the raw text; the normalizers we support are identities for
/// the DeepSeek files, where normalized and raw text coincide.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar = [];
    private readonly System.Buffers.SearchValues<char> _firstChars;

    public AddedTokenMatcher(IReadOnlyList<AddedToken> tokens)
    {
        foreach (var group in tokens.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0]))
        {
            // Longest first; for equal contents the first declared wins.
            _byFirstChar[group.Key] = [.. group.OrderByDescending(t => t.Content.Length)];
        }

        _firstChars = System.Buffers.SearchValues.Create([.. _byFirstChar.Keys]);
        Count = tokens.Count;
    }

    public int Count { get; }

    /// <summary>Finds the next added token at or after <paramref name="from"/>; the match span includes stripped whitespace.</summary>
    public bool FindNext(ReadOnlySpan<char> text, int from, out int start, out int end, out AddedToken token) =>
        FindNext(text, from, out start, out end, out _, out token);

    /// <summary>As above; <paramref name="contentStart"/> is where the token's own text starts (after stripped whitespace).</summary>
    public bool FindNext(ReadOnlySpan<char> text, int from, out int start, out int end, out int contentStart, out AddedToken token)
    {
        var i = from;
        while (i < text.Length)
        {
            var k = text[i..].IndexOfAny(_firstChars);
            if (k < 0)
            {
                break;
            }

            i += k;
            foreach (var candidate in _byFirstChar[text[i]])
            {
                if (text[i..].StartsWith(candidate.Content, StringComparison.Ordinal))
                {
                    start = contentStart = i;
                    end = i + candidate.Content.Length;
                    if (candidate.LStrip)
                    {
                        while (start > from && UnicodeClass.IsWhiteSpace(text[start - 1]))
                        {
                            start--;
                        }
                    }

                    if (candidate.RStrip)
                    {
                        while (end < text.Length && UnicodeClass.IsWhiteSpace(text[end]))
                        {
                            end++;
                        }
                    }

                    token = candidate;
                    return true;
                }
            }

            i++;
        }

        start = end = contentStart = text.Length;
        token = null!;
        return false;
    }
}
