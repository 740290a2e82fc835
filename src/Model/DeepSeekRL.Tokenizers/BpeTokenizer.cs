using System.Buffers;
using System.Text;

namespace DeepSeekRL.Tokenizers;

/// <summary>
/// A byte-level BPE tokenizer as described by a Hugging Face tokenizer.json: added tokens are found in the raw text
/// first, the rest is normalized, pre-tokenized into pieces and each piece is BPE-encoded from its UTF-8 bytes.
/// Encoding adds no BOS/EOS; special-token strings in the text become their ids.
/// </summary>
/// <remarks>
/// Invalid UTF-16 (a lone surrogate) is replaced by U+FFFD before anything else, so it encodes as the bytes
/// EF BF BD, like Python's <c>errors="replace"</c>; valid text round-trips exactly: <c>Decode(Encode(x)) == x</c>.
/// Thread-safe.
/// </remarks>
public sealed partial class BpeTokenizer
{
    private readonly AddedTokenMatcher _addedMatcher;
    private readonly Dictionary<int, AddedToken> _addedById = [];
    private readonly Dictionary<string, AddedToken> _addedByContent = new(StringComparer.Ordinal);
    private readonly byte[][] _idBytes;

    /// <summary>Creates a tokenizer from its parts (see <see cref="TokenizerJson.Load"/>).</summary>
    /// <param name="model">The BPE model.</param>
    /// <param name="addedTokens">The added tokens.</param>
    /// <param name="normalizer">The normalizer.</param>
    /// <param name="preTokenizer">The pre-tokenizer, or <see langword="null"/> for none.</param>
    public BpeTokenizer(BpeModel model, IReadOnlyList<AddedToken> addedTokens, Normalizer normalizer, PreTokenizer? preTokenizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(addedTokens);
        ArgumentNullException.ThrowIfNull(normalizer);
        Model = model;
        AddedTokens = addedTokens;
        Normalizer = normalizer;
        PreTokenizer = preTokenizer;
        foreach (var token in addedTokens)
        {
            _addedById[token.Id] = token;
            _addedByContent.TryAdd(token.Content, token);
        }

        _addedMatcher = new AddedTokenMatcher(addedTokens);
        var size = 0;
        foreach (var id in model.Vocab.Values)
        {
            size = Math.Max(size, id + 1);
        }

        foreach (var token in addedTokens)
        {
            size = Math.Max(size, token.Id + 1);
        }

        VocabSize = size;
        _idBytes = new byte[size][];
        for (var id = 0; id < size; id++)
        {
            var text = IdToToken(id);
            _idBytes[id] = text is null ? [] : ByteLevel.DecodeToken(text);
        }
    }

    /// <summary>The BPE model.</summary>
    public BpeModel Model { get; }

    /// <summary>The added tokens, in file order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The normalizer.</summary>
    public Normalizer Normalizer { get; }

    /// <summary>The pre-tokenizer, or <see langword="null"/>.</summary>
    public PreTokenizer? PreTokenizer { get; }

    /// <summary>One more than the largest id.</summary>
    public int VocabSize { get; }

    /// <summary>The token string of an id (added tokens first), or <see langword="null"/>.</summary>
    /// <param name="id">The id.</param>
    /// <returns>The token.</returns>
    public string? IdToToken(int id) => _addedById.TryGetValue(id, out var added) ? added.Content : Model.IdToToken(id);

    /// <summary>The id of a token string (added tokens first), or <see langword="null"/>.</summary>
    /// <param name="token">The token.</param>
    /// <returns>The id.</returns>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (_addedByContent.TryGetValue(token, out var added))
        {
            return added.Id;
        }

        var id = Model.TokenToId(token);
        return id < 0 ? null : id;
    }

    /// <summary>Encodes text; no BOS/EOS is added.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The ids.</returns>
    public int[] Encode(string text)
    {
        var ids = new List<int>(text?.Length ?? 0);
        Encode(text, ids);
        return [.. ids];
    }

    /// <summary>Encodes text and appends the ids; no BOS/EOS is added.</summary>
    /// <param name="text">The text.</param>
    /// <param name="ids">Receives the ids.</param>
    public void Encode(string? text, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        text = ReplaceLoneSurrogates(text);
        var pieces = PieceListPool.Rent();
        var scratch = PieceListPool.Rent();
        try
        {
            EncodeSections(text, pieces, scratch, ids);
        }
        finally
        {
            PieceListPool.Return(pieces);
            PieceListPool.Return(scratch);
        }
    }

    // Added tokens become their ids; the text between them goes through normalizer, pre-tokenizer and BPE.
    private void EncodeSections(string text, List<Piece> pieces, List<Piece> scratch, List<int> ids)
    {
        var span = text.AsSpan();
        var pos = 0;
        while (pos < span.Length)
        {
            var found = _addedMatcher.Count > 0 && _addedMatcher.FindNext(span, pos, out var start, out var end, out var token)
                ? (start, end, token)
                : (span.Length, span.Length, (AddedToken?)null);
            if (found.Item1 > pos)
            {
                EncodeSection(text, pos, found.Item1 - pos, pieces, scratch, ids);
            }

            if (found.Item3 is { } t)
            {
                ids.Add(t.Id);
            }

            pos = found.Item2;
        }
    }

    /// <summary>Decodes ids to text, as Hugging Face's ByteLevel decoder: bytes joined, invalid UTF-8 becomes U+FFFD.</summary>
    /// <param name="ids">The ids.</param>
    /// <param name="skipSpecialTokens">Whether special added tokens are left out.</param>
    /// <returns>The text.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var length = 0;
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)_idBytes.Length || (_idBytes[id].Length == 0 && IdToToken(id) is null))
            {
                throw new ArgumentOutOfRangeException(nameof(ids), $"id {id} is not in the vocabulary (size {VocabSize})");
            }

            length += _idBytes[id].Length;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            var n = 0;
            foreach (var id in ids)
            {
                if (skipSpecialTokens && _addedById.TryGetValue(id, out var added) && added.Special)
                {
                    continue;
                }

                var bytes = _idBytes[id];
                bytes.CopyTo(buffer, n);
                n += bytes.Length;
            }

            return Encoding.UTF8.GetString(buffer, 0, n);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Replaces each lone surrogate by U+FFFD; returns <paramref name="text"/> itself when it is valid UTF-16.</summary>
    /// <param name="text">The text.</param>
    /// <returns>Valid UTF-16.</returns>
    public static string ReplaceLoneSurrogates(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var first = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (first < 0)
        {
            return text;
        }

        char[]? copy = null;
        for (var i = first; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                copy ??= text.ToCharArray();
                copy[i] = '\uFFFD';
            }
        }

        return copy is null ? text : new string(copy);
    }

    private void EncodeSection(string text, int start, int length, List<Piece> pieces, List<Piece> scratch, List<int> ids)
    {
        ReadOnlySpan<char> section;
        if (Normalizer.IsIdentity)
        {
            section = text.AsSpan(start, length);
        }
        else
        {
            section = Normalizer.Apply(text.Substring(start, length));
        }

        pieces.Clear();
        scratch.Clear();
        scratch.Add(new Piece(0, section.Length));
        if (PreTokenizer is null)
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
                Model.EncodePiece(section.Slice(piece.Start, piece.Length), piece.PrefixSpace, ids);
            }
        }
    }
}
