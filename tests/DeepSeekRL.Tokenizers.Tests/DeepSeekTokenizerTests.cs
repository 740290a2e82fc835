using System.Buffers;
using System.Text;
using Ml = Microsoft.ML.Tokenizers;

namespace DeepSeekRL.Tokenizers.Tests;

// Everything here goes through the Microsoft.ML.Tokenizers API (a Tokenizer variable), as a user of that API would.
public sealed class DeepSeekTokenizerTests
{
    private static readonly Lazy<Ml.Tokenizer> Shared = new(() => DeepSeekTokenizer.Load(TestData.DeepSeekV3Path()));

    private static Ml.Tokenizer Tok => Shared.Value;

    [Fact]
    public void EncodeToIds_GoldenCorpus_MatchesReferenceIdsOnEveryLine()
    {
        var texts = TestData.CorpusTexts();
        var golden = TestData.Golden("deepseek_v3.expected.jsonl");
        Assert.Equal(texts.Count, golden.Count);
        Assert.True(texts.Count >= 2000, $"corpus has {texts.Count} lines");
        var bad = new List<int>();
        for (var i = 0; i < texts.Count; i++)
        {
            var expected = golden[i].RustIds ?? golden[i].Ids;
            if (!Tok.EncodeToIds(texts[i]).SequenceEqual(expected))
            {
                bad.Add(i + 1);
            }
        }

        Assert.True(bad.Count == 0, $"{texts.Count - bad.Count}/{texts.Count} lines match; first different lines: {string.Join(", ", bad.Take(10))}");
    }

    [Fact]
    public void EncodeToTokens_GoldenCorpus_OffsetsSliceBackEachWholeCharacterToken()
    {
        long tokens = 0, whole = 0;
        foreach (var text in TestData.CorpusTexts())
        {
            var encoded = Tok.EncodeToTokens(text, out var normalized);
            Assert.Null(normalized); // DeepSeek-V3's normalizer is the identity: offsets index into the text itself
            Assert.Equal(Tok.EncodeToIds(text), encoded.Select(t => t.Id));
            var previousEnd = 0;
            foreach (var token in encoded)
            {
                var (start, length) = token.Offset.GetOffsetAndLength(text.Length);
                Assert.Equal(previousEnd, start); // contiguous and in order (the corpus strips no whitespace)
                previousEnd = start + length;
                var piece = Tok.Decode([token.Id]);
                tokens++;
                if (!piece.Contains('\uFFFD', StringComparison.Ordinal))
                {
                    Assert.Equal(piece, text.Substring(start, length));
                    whole++;
                }
            }

            Assert.Equal(text.Length, previousEnd); // every character belongs to a token
        }

        // The corpus is multilingual: about 91 % of its tokens are whole characters, the rest split a character.
        Assert.True(whole >= tokens * 85 / 100, $"only {whole} of {tokens} tokens are whole characters");
    }

    [Fact]
    public void EncodeToTokens_SplitCharacter_BelongsToTheTokenWithItsFirstByte()
    {
        // A rare CJK character and an emoji: byte-level BPE splits them into tokens of 1-2 bytes.
        const string text = "a𝔘齉😀b";
        var encoded = Tok.EncodeToTokens(text, out _);
        var bytes = Encoding.UTF8.GetBytes(text);
        var seen = new StringBuilder();
        foreach (var token in encoded)
        {
            seen.Append(text[token.Offset]);
        }

        Assert.Equal(text, seen.ToString());
        Assert.Contains(encoded, t => t.Offset.GetOffsetAndLength(text.Length).Length == 0); // some tokens are continuation bytes only
        Assert.True(encoded.Count > 4, $"{encoded.Count} tokens for {bytes.Length} bytes");
    }

    [Fact]
    public void Decode_GoldenCorpus_RoundTripsEveryLine()
    {
        foreach (var text in TestData.CorpusTexts())
        {
            Assert.Equal(text, Tok.Decode(Tok.EncodeToIds(text)));
        }
    }

    [Fact]
    public void CountTokens_GoldenCorpus_EqualsIdCount()
    {
        foreach (var text in TestData.CorpusTexts())
        {
            Assert.Equal(Tok.EncodeToIds(text).Count, Tok.CountTokens(text));
        }
    }

    [Fact]
    public void Decode_SmallDestination_StopsAfterWholeCharacters()
    {
        const string text = "Résumé: 北京 😀 done.";
        var ids = Tok.EncodeToIds(text);
        for (var size = 0; size <= text.Length; size++)
        {
            var destination = new char[size];
            var status = Tok.Decode(ids, destination, out var consumed, out var written);
            var expected = size == text.Length ? OperationStatus.Done : OperationStatus.DestinationTooSmall;
            Assert.Equal(expected, status);
            Assert.Equal(Tok.Decode(ids.Take(consumed)), new string(destination, 0, written));
            Assert.StartsWith(new string(destination, 0, written), text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Decode_UnknownId_IsInvalidDataOrThrows()
    {
        var ids = new[] { 5, 999_999 };
        Assert.ThrowsAny<ArgumentException>(() => Tok.Decode(ids));
        Assert.Equal(OperationStatus.InvalidData, Tok.Decode(ids, new char[16], out var consumed, out _));
        Assert.Equal(1, consumed);
    }

    [Fact]
    public void EncodeToTokens_SpecialAndAddedTokens_AreSingleTokensWithTheirText()
    {
        const string text = "<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>four<｜end▁of▁sentence｜>";
        var deepSeek = (DeepSeekTokenizer)Tok;
        var encoded = Tok.EncodeToTokens(text, out _);
        foreach (var added in new[] { "<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>" })
        {
            var id = deepSeek.TokenToId(added)!.Value;
            var token = Assert.Single(encoded, t => t.Id == id);
            Assert.Equal(added, token.Value);
            Assert.Equal(added, text[token.Offset]);
        }

        Assert.Equal(0, encoded[0].Id);
        Assert.Equal(0, deepSeek.SpecialTokens["<｜begin▁of▁sentence｜>"]);
        Assert.False(deepSeek.SpecialTokens.ContainsKey("<｜User｜>")); // an added token, not a special one
        Assert.Equal("<｜User｜>2+2?<｜Assistant｜>four", deepSeek.Decode(encoded.Select(t => t.Id), skipSpecialTokens: true));
        Assert.Equal(text, Tok.Decode(encoded.Select(t => t.Id)));
    }

    [Fact]
    public void EncodeToTokens_TrainedAddedThinkToken_IsOneTokenNotSplit()
    {
        // DeepSeek-V3's file has no <think>; R1-style tokenizers trained here add it (not special).
        using var stream = new MemoryStream();
        BpeTrainer.Train(Enumerable.Repeat("<think>\nreason\n</think>\n\nanswer 42", 20), new BpeTrainerOptions
        {
            VocabSize = 300,
            SpecialTokens = [ChatTemplate.Bos, ChatTemplate.Eos],
            AddedTokens = ["<think>", "</think>"],
        }, stream, TestContext.Current.CancellationToken);
        Ml.Tokenizer tok = DeepSeekTokenizer.Parse(stream.ToArray(), "trained");
        const string text = "<｜begin▁of▁sentence｜><think>\nhmm\n</think>\n\n42";
        var encoded = tok.EncodeToTokens(text, out _);
        var think = Assert.Single(encoded, t => t.Value == "<think>");
        Assert.Equal("<think>", text[think.Offset]);
        Assert.Single(encoded, t => t.Value == "</think>");
        Assert.Equal("<think>\nhmm\n</think>\n\n42", ((DeepSeekTokenizer)tok).Decode(encoded.Select(t => t.Id), skipSpecialTokens: true));
        Assert.Equal(encoded.Count, tok.CountTokens(text));
    }

    [Fact]
    public void EncodeToIds_MaxTokenCount_IsAPrefixThatEndsOnACharacter()
    {
        const string text = "Hello, 世界! Emoji 😀😀 and 123456 digits, 齉齉.";
        var all = Tok.EncodeToIds(text);
        for (var max = 1; max <= all.Count + 1; max++)
        {
            var ids = Tok.EncodeToIds(text, max, out var normalized, out var consumed);
            Assert.Null(normalized);
            Assert.True(ids.Count <= max);
            Assert.Equal(all.Take(ids.Count), ids);
            Assert.Equal(text[..consumed], Tok.Decode(ids));

            var index = Tok.GetIndexByTokenCount(text, max, out _, out var count);
            Assert.Equal(consumed, index);
            Assert.Equal(ids.Count, count);

            var fromEnd = Tok.GetIndexByTokenCountFromEnd(text, max, out _, out var endCount);
            Assert.True(endCount <= max);
            Assert.Equal(text[fromEnd..], Tok.Decode(all.Skip(all.Count - endCount)));
        }

        Assert.Equal(all, Tok.EncodeToIds(text, all.Count, out _, out var full));
        Assert.Equal(text.Length, full);
        Assert.Throws<ArgumentOutOfRangeException>(() => Tok.EncodeToIds(text, 0, out _, out _));
    }

    [Fact]
    public void EncodeToIds_WithoutPreTokenization_EncodesSectionsAsOnePiece()
    {
        const string text = "hello world<｜User｜>x";
        var ids = Tok.EncodeToIds(text, considerPreTokenization: false);
        Assert.Equal(text, Tok.Decode(ids));
        Assert.Contains(((DeepSeekTokenizer)Tok).TokenToId("<｜User｜>")!.Value, ids);
        Assert.Equal(ids.Count, Tok.CountTokens(text, considerPreTokenization: false));
    }

    [Fact]
    public void PreTokenizer_SplitsAsTheFileSays()
    {
        Assert.Null(Tok.Normalizer);
        var text = "Hello world 12345";
        var pieces = Tok.PreTokenizer!.PreTokenize(text).Select(p => text.Substring(p.Offset, p.Length)).ToArray();
        Assert.Equal(["Hello", " world", " ", "123", "45"], pieces);
    }

    [Fact]
    public void Encode_Garbage_DoesNotThrowAndStaysConsistent()
    {
        var random = new Random(7);
        for (var i = 0; i < 500; i++)
        {
            var chars = new char[random.Next(0, 200)];
            for (var k = 0; k < chars.Length; k++)
            {
                chars[k] = random.Next(5) switch
                {
                    0 => (char)random.Next(0xD800, 0xE000), // lone or paired surrogates
                    1 => (char)random.Next(0, 0x20),
                    2 => "<｜>think/ \n"[random.Next(11)],
                    _ => (char)random.Next(0, 0x10000),
                };
            }

            var text = new string(chars);
            var ids = Tok.EncodeToIds(text);
            Assert.Equal(ids.Count, Tok.CountTokens(text));
            Assert.Equal(ids, Tok.EncodeToIds(BpeTokenizer.ReplaceLoneSurrogates(text)));
            Assert.Equal(BpeTokenizer.ReplaceLoneSurrogates(text), Tok.Decode(ids));
            var tokens = Tok.EncodeToTokens(text, out _);
            Assert.Equal(ids, tokens.Select(t => t.Id));
            Assert.All(tokens, t => Assert.InRange(t.Offset.End.Value, t.Offset.Start.Value, text.Length));
            Assert.InRange(Tok.GetIndexByTokenCount(text, 3, out _, out _), 0, text.Length);
            Assert.InRange(Tok.GetIndexByTokenCountFromEnd(text, 3, out _, out _), 0, text.Length);
        }

        Assert.Empty(Tok.EncodeToIds(string.Empty));
        Assert.Empty(Tok.EncodeToTokens(string.Empty, out _));
        Assert.Equal(0, Tok.CountTokens(string.Empty));
    }

    [Fact]
    public void Parse_Bytes_EncodesLikeLoad()
    {
        var fromBytes = DeepSeekTokenizer.Parse(File.ReadAllBytes(TestData.DeepSeekV3Path()));
        Assert.Equal(Tok.EncodeToIds("DeepSeek-R1 <think>ok</think>"), fromBytes.EncodeToIds("DeepSeek-R1 <think>ok</think>"));
    }
}
