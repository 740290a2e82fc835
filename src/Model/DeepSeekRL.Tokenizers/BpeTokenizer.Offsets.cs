using System.Text;

namespace DeepSeekRL.Tokenizers;

/// <summary>
/// One token with the characters it covers: <c>[Start, End)</c> in the encoded text (the normalized text when a
/// normalizer changed it). A character belongs to the token that holds its first UTF-8 byte, so a token made only of
/// the continuation bytes of a character split by BPE covers no character (<c>Start == End</c>).
/// </summary>
/// <param name="Id">The id.</param>
/// <param name="Start">The first character covered.</param>
/// <param name="End">One past the last character covered.</param>
/// <param name="StartsOnBoundary">Whether the token's first byte starts a character (a cut before it splits nothing).</param>
/// <param name="EndsOnBoundary">Whether the token's last byte ends a character (a cut after it splits nothing).</param>
internal readonly record struct TokenSpan(int Id, int Start, int End, bool StartsOnBoundary, bool EndsOnBoundary);

/// <summary>Encoding with character offsets, for the ML.Tokenizers adapter (<see cref="DeepSeekTokenizer"/>).</summary>
public sealed partial class BpeTokenizer
{
    /// <summary>The UTF-8 bytes an id decodes to, or <see langword="null"/> when the id is not in the vocabulary.</summary>
    internal byte[]? BytesOf(int id) =>
        (uint)id < (uint)_idBytes.Length && (_idBytes[id].Length > 0 || IdToToken(id) is not null) ? _idBytes[id] : null;

    /// <summary>Whether an id is a special added token.</summary>
    internal bool IsSpecial(int id) => _addedById.TryGetValue(id, out var added) && added.Special;

    /// <summary>
    /// Encodes <paramref name="text"/> as <see cref="Encode(string?, List{int})"/> does (same ids when both flags are
    /// set) and appends each token with the characters it covers.
    /// </summary>
    /// <param name="text">The text; lone surrogates encode as U+FFFD but keep their position.</param>
    /// <param name="normalize">Whether the normalizer runs (sections between added tokens).</param>
    /// <param name="preTokenize">Whether the pre-tokenizer runs; if not, each section is one BPE piece.</param>
    /// <param name="tokens">Receives the tokens.</param>
    /// <returns>
    /// The normalized text the offsets index into when the normalizer ran and is not the identity (sections
    /// normalized, added tokens and their stripped whitespace as they were); otherwise <see langword="null"/>: the
    /// offsets index into <paramref name="text"/>.
    /// </returns>
    internal string? EncodeToSpans(string text, bool normalize, bool preTokenize, List<TokenSpan> tokens)
    {
        if (text.Length == 0)
        {
            return null;
        }

        text = ReplaceLoneSurrogates(text);
        var normalized = normalize && !Normalizer.IsIdentity ? new StringBuilder(text.Length) : null;
        var pieces = PieceListPool.Rent();
        var scratch = PieceListPool.Rent();
        var ids = new List<int>();
        try
        {
            var span = text.AsSpan();
            var pos = 0;
            while (pos < span.Length)
            {
                AddedToken? token;
                int start, end, contentStart;
                if (!(_addedMatcher.Count > 0 && _addedMatcher.FindNext(span, pos, out start, out end, out contentStart, out token)))
                {
                    start = end = contentStart = span.Length;
                    token = null;
                }

                if (start > pos)
                {
                    if (normalized is null)
                    {
                        SpansOfSection(span.Slice(pos, start - pos), pos, preTokenize, pieces, scratch, ids, tokens);
                    }
                    else
                    {
                        var section = Normalizer.Apply(text.Substring(pos, start - pos));
                        SpansOfSection(section, normalized.Length, preTokenize, pieces, scratch, ids, tokens);
                        normalized.Append(section);
                    }
                }

                if (token is not null)
                {
                    // The token covers its own text; whitespace it strips (lstrip/rstrip) is covered by no token.
                    var at = normalized is null ? contentStart : normalized.Length + (contentStart - start);
                    tokens.Add(new TokenSpan(token.Id, at, at + token.Content.Length, true, true));
                    normalized?.Append(span[start..end]);
                }

                pos = end;
            }
        }
        finally
        {
            PieceListPool.Return(pieces);
            PieceListPool.Return(scratch);
        }

        return normalized?.ToString();
    }

    private void SpansOfSection(ReadOnlySpan<char> section, int offset, bool preTokenize, List<Piece> pieces, List<Piece> scratch, List<int> ids, List<TokenSpan> tokens)
    {
        pieces.Clear();
        scratch.Clear();
        scratch.Add(new Piece(0, section.Length));
        if (PreTokenizer is null || !preTokenize)
        {
            pieces.Add(scratch[0]);
        }
        else
        {
            PreTokenizer.Split(section, scratch, pieces);
        }

        foreach (var piece in pieces)
        {
            if (piece.Length > 0)
            {
                ids.Clear();
                var chars = section.Slice(piece.Start, piece.Length);
                Model.EncodePiece(chars, piece.PrefixSpace, ids);
                SpansOfPiece(chars, offset + piece.Start, piece.PrefixSpace, ids, tokens);
            }
        }
    }

    // The BPE tokens of a piece concatenate to its UTF-8 bytes (after the prefix space, when there is one). A byte
    // offset b maps to the first character starting at or after b: the token holding a character's first byte covers
    // the character, a token that starts inside a character begins after it.
    private void SpansOfPiece(ReadOnlySpan<char> piece, int offset, bool prefixSpace, List<int> ids, List<TokenSpan> tokens)
    {
        var prefix = prefixSpace ? 1 : 0;
        var c = 0;          // characters (UTF-16 units) of the piece passed
        var cb = prefix;    // the byte offset where character c starts
        var b = 0;          // the byte offset where the current token starts
        foreach (var id in ids)
        {
            var start = c;
            var startsOnBoundary = b == cb || b == 0;
            var e = b + Model.IdToToken(id)!.Length; // a byte-level token string has one character per byte
            while (cb < e && c < piece.Length)
            {
                if (char.IsHighSurrogate(piece[c]) && c + 1 < piece.Length && char.IsLowSurrogate(piece[c + 1]))
                {
                    c += 2;
                    cb += 4;
                }
                else
                {
                    cb += piece[c] < 0x80 ? 1 : piece[c] < 0x800 ? 2 : 3;
                    c++;
                }
            }

            tokens.Add(new TokenSpan(id, offset + start, offset + c, startsOnBoundary, cb == e));
            b = e;
        }
    }
}
