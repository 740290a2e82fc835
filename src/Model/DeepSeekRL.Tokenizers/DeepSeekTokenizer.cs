using System.Buffers;
using System.Text;
using Ml = Microsoft.ML.Tokenizers;

namespace DeepSeekRL.Tokenizers;

/// <summary>
/// Our byte-level BPE (<see cref="BpeTokenizer"/>: DeepSeek-V3's tokenizer.json, exact against Hugging Face) as a
/// Microsoft.ML.Tokenizers <see cref="Ml.Tokenizer"/>, for code written against that API. Ids are those of
/// <see cref="BpeTokenizer.Encode(string)"/>: no BOS/EOS is added and added tokens (<c>&lt;｜begin▁of▁sentence｜&gt;</c>,
/// <c>&lt;think&gt;</c>) in the text become their ids.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Ml.EncodedToken.Value"/> is the vocabulary string (byte-level, e.g. <c>Ġworld</c>; an added token's own
/// text) and <see cref="Ml.EncodedToken.Offset"/> the characters of the input it covers. When BPE splits a character's
/// UTF-8 bytes across tokens, the character belongs to the token holding its first byte; a token made only of later
/// bytes covers no character (an empty range at the end of that character). Offsets never overlap and follow the text.
/// Whitespace stripped by an added token (lstrip/rstrip) is covered by no token.
/// </para>
/// <para>
/// A token limit (<see cref="Ml.EncodeSettings.MaxTokenCount"/>) never cuts inside a character: the result is the
/// longest prefix (or, from the end, suffix) of the full encoding within the limit that decodes to whole characters.
/// Offsets index into the input, or into <see cref="Ml.EncodeResults{T}.NormalizedText"/> when a normalizer ran and
/// changed the text (DeepSeek-V3's normalizer is the identity). Without pre-tokenization, each run of text between
/// added tokens is one BPE piece. Thread-safe.
/// </para>
/// </remarks>
public sealed class DeepSeekTokenizer : Ml.Tokenizer
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    private readonly Dictionary<string, int> _specialTokens = new(StringComparer.Ordinal);
    private readonly Ml.PreTokenizer? _preTokenizer;
    private readonly Ml.Normalizer? _normalizer;

    /// <summary>Wraps a loaded tokenizer.</summary>
    /// <param name="tokenizer">The tokenizer (shared, not copied).</param>
    public DeepSeekTokenizer(BpeTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        Bpe = tokenizer;
        foreach (var token in tokenizer.AddedTokens)
        {
            if (token.Special)
            {
                _specialTokens.TryAdd(token.Content, token.Id);
            }
        }

        _preTokenizer = tokenizer.PreTokenizer is { } pre ? new PreTokenizerView(pre) : null;
        _normalizer = tokenizer.Normalizer.IsIdentity ? null : new NormalizerView(tokenizer.Normalizer);
    }

    /// <summary>The wrapped tokenizer.</summary>
    public BpeTokenizer Bpe { get; }

    /// <summary>The special added tokens (content to id); added tokens that are not special, such as <c>&lt;think&gt;</c>, are in <see cref="BpeTokenizer.AddedTokens"/>.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens => _specialTokens;

    /// <summary>
    /// The pre-tokenizer of the file, applied to text without added tokens (the encoder finds added tokens first);
    /// <see langword="null"/> when the file has none.
    /// </summary>
    public override Ml.PreTokenizer? PreTokenizer => _preTokenizer;

    /// <summary>The normalizer of the file, or <see langword="null"/> when it is the identity (DeepSeek-V3).</summary>
    public override Ml.Normalizer? Normalizer => _normalizer;

    /// <summary>Loads a Hugging Face tokenizer.json file (see <see cref="TokenizerJson.Load"/>).</summary>
    /// <param name="path">The file.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="TokenizerFormatException">The file is not a tokenizer.json we support.</exception>
    public static DeepSeekTokenizer Load(string path) => new(TokenizerJson.Load(path));

    /// <summary>Reads a Hugging Face tokenizer.json from its UTF-8 bytes (see <see cref="TokenizerJson.Parse"/>).</summary>
    /// <param name="utf8Json">The file's bytes.</param>
    /// <param name="source">A name for error messages.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="TokenizerFormatException">The bytes are not a tokenizer.json we support.</exception>
    public static DeepSeekTokenizer Parse(ReadOnlySpan<byte> utf8Json, string source = "tokenizer.json") => new(TokenizerJson.Parse(utf8Json, source));

    /// <summary>The id of a token string (added tokens first), or <see langword="null"/>.</summary>
    /// <param name="token">The token (an added token's text or a byte-level vocabulary string).</param>
    /// <returns>The id.</returns>
    public int? TokenToId(string token) => Bpe.TokenToId(token);

    /// <summary>The token string of an id, or <see langword="null"/>.</summary>
    /// <param name="id">The id.</param>
    /// <returns>The token.</returns>
    public string? IdToToken(int id) => Bpe.IdToToken(id);

    /// <inheritdoc/>
    public override string Decode(IEnumerable<int> ids) => Decode(ids, skipSpecialTokens: false);

    /// <summary>Decodes ids to text; invalid UTF-8 becomes U+FFFD.</summary>
    /// <param name="ids">The ids.</param>
    /// <param name="skipSpecialTokens">Whether special added tokens are left out.</param>
    /// <returns>The text.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return Bpe.Decode(ids as int[] ?? [.. ids], skipSpecialTokens);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// When the text does not fit, <paramref name="idsConsumed"/> and <paramref name="charsWritten"/> stop after the
    /// last id that ends a character, so decoding the rest later continues the text exactly. An unknown id gives
    /// <see cref="OperationStatus.InvalidData"/> with the ids before it decoded.
    /// </remarks>
    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var decoder = Utf8.GetDecoder();
        Span<char> chars = stackalloc char[64];
        idsConsumed = charsWritten = 0;
        int consumed = 0, written = 0;
        foreach (var id in ids)
        {
            var bytes = Bpe.BytesOf(id);
            if (bytes is null)
            {
                return OperationStatus.InvalidData;
            }

            Span<char> buffer = bytes.Length <= chars.Length ? chars : new char[bytes.Length];
            var n = decoder.GetChars(bytes, buffer, flush: false);
            if (written + n > destination.Length)
            {
                return OperationStatus.DestinationTooSmall;
            }

            buffer[..n].CopyTo(destination[written..]);
            written += n;
            consumed++;
            if (decoder.GetCharCount([], flush: true) == 0)
            {
                // No character is pending: the ids so far decode on their own to exactly these characters.
                idsConsumed = consumed;
                charsWritten = written;
            }
        }

        var tail = decoder.GetChars([], chars, flush: true);
        if (written + tail > destination.Length)
        {
            return OperationStatus.DestinationTooSmall;
        }

        chars[..tail].CopyTo(destination[written..]);
        idsConsumed = consumed;
        charsWritten = written + tail;
        return OperationStatus.Done;
    }

    /// <inheritdoc/>
    protected override Ml.EncodeResults<int> EncodeToIds(string? text, ReadOnlySpan<char> textSpan, Ml.EncodeSettings settings)
    {
        var s = text ?? textSpan.ToString();
        CheckLimit(settings.MaxTokenCount);
        if (IsPlain(settings))
        {
            var ids = new List<int>(s.Length / 3 + 1);
            Bpe.Encode(s, ids);
            return new Ml.EncodeResults<int> { Tokens = ids, CharsConsumed = s.Length };
        }

        var spans = new List<TokenSpan>();
        var normalized = Bpe.EncodeToSpans(s, settings.ConsiderNormalization, settings.ConsiderPreTokenization, spans);
        var count = CutFromStart(spans, settings.MaxTokenCount, (normalized ?? s).Length, out var consumed);
        var result = new List<int>(count);
        for (var i = 0; i < count; i++)
        {
            result.Add(spans[i].Id);
        }

        return new Ml.EncodeResults<int> { Tokens = result, NormalizedText = normalized, CharsConsumed = consumed };
    }

    /// <inheritdoc/>
    protected override Ml.EncodeResults<Ml.EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, Ml.EncodeSettings settings)
    {
        var s = text ?? textSpan.ToString();
        CheckLimit(settings.MaxTokenCount);
        var spans = new List<TokenSpan>();
        var normalized = Bpe.EncodeToSpans(s, settings.ConsiderNormalization, settings.ConsiderPreTokenization, spans);
        var count = CutFromStart(spans, settings.MaxTokenCount, (normalized ?? s).Length, out var consumed);
        var tokens = new List<Ml.EncodedToken>(count);
        for (var i = 0; i < count; i++)
        {
            var t = spans[i];
            tokens.Add(new Ml.EncodedToken(t.Id, Bpe.IdToToken(t.Id)!, new Range(t.Start, t.End)));
        }

        return new Ml.EncodeResults<Ml.EncodedToken> { Tokens = tokens, NormalizedText = normalized, CharsConsumed = consumed };
    }

    /// <inheritdoc/>
    protected override int CountTokens(string? text, ReadOnlySpan<char> textSpan, Ml.EncodeSettings settings)
    {
        var s = text ?? textSpan.ToString();
        CheckLimit(settings.MaxTokenCount);
        if (IsPlain(settings))
        {
            var ids = new List<int>(s.Length / 3 + 1);
            Bpe.Encode(s, ids);
            return ids.Count;
        }

        var spans = new List<TokenSpan>();
        var normalized = Bpe.EncodeToSpans(s, settings.ConsiderNormalization, settings.ConsiderPreTokenization, spans);
        return CutFromStart(spans, settings.MaxTokenCount, (normalized ?? s).Length, out _);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// From the start: the number of characters the first <paramref name="tokenCount"/> tokens cover (the whole text
    /// when all tokens fit). From the end: the index where the last <paramref name="tokenCount"/> tokens begin.
    /// </remarks>
    protected override int GetIndexByTokenCount(string? text, ReadOnlySpan<char> textSpan, Ml.EncodeSettings settings, bool fromEnd, out string? normalizedText, out int tokenCount)
    {
        var s = text ?? textSpan.ToString();
        CheckLimit(settings.MaxTokenCount);
        var spans = new List<TokenSpan>();
        normalizedText = Bpe.EncodeToSpans(s, settings.ConsiderNormalization, settings.ConsiderPreTokenization, spans);
        var length = (normalizedText ?? s).Length;
        if (!fromEnd)
        {
            tokenCount = CutFromStart(spans, settings.MaxTokenCount, length, out var consumed);
            return consumed;
        }

        // The first kept token must start a character; the tokens before it are dropped.
        var first = spans.Count - Math.Min(settings.MaxTokenCount, spans.Count);
        while (first > 0 && first < spans.Count && !spans[first].StartsOnBoundary)
        {
            first++;
        }

        tokenCount = spans.Count - first;
        return first == 0 ? 0 : first == spans.Count ? length : spans[first].Start;
    }

    // The default settings (no limit, pre-tokenization on, no normalization that changes the text) take the fast path.
    private bool IsPlain(Ml.EncodeSettings settings) =>
        settings.MaxTokenCount == int.MaxValue && settings.ConsiderPreTokenization && (!settings.ConsiderNormalization || Bpe.Normalizer.IsIdentity);

    private static void CheckLimit(int maxTokenCount) =>
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTokenCount, "maxTokenCount");

    // The longest prefix within the limit that does not end inside a character; consumed is the characters it covers.
    private static int CutFromStart(List<TokenSpan> spans, int maxTokenCount, int length, out int consumed)
    {
        if (spans.Count <= maxTokenCount)
        {
            consumed = length;
            return spans.Count;
        }

        var count = maxTokenCount;
        while (count > 0 && !spans[count - 1].EndsOnBoundary)
        {
            count--;
        }

        consumed = count == 0 ? 0 : spans[count - 1].End;
        return count;
    }

    /// <summary>Our pre-tokenizer seen as ML.Tokenizers': the pieces of a text, without the prefix space flag.</summary>
    private sealed class PreTokenizerView(PreTokenizer inner) : Ml.PreTokenizer
    {
        public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) =>
            string.IsNullOrEmpty(text) ? [] : PreTokenize(text.AsSpan());

        public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text)
        {
            if (text.IsEmpty)
            {
                return [];
            }

            List<Piece> output = [];
            inner.Split(text, [new Piece(0, text.Length)], output);
            return [.. output.Select(p => (p.Start, p.Length))];
        }
    }

    /// <summary>Our normalizer seen as ML.Tokenizers'.</summary>
    private sealed class NormalizerView(Normalizer inner) : Ml.Normalizer
    {
        public override string Normalize(string original) => inner.Apply(original ?? string.Empty);

        public override string Normalize(ReadOnlySpan<char> original) => inner.Apply(original.ToString());
    }
}
