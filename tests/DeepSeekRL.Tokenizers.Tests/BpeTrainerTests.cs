using System.Text.Json;

namespace DeepSeekRL.Tokenizers.Tests;

public sealed class BpeTrainerTests
{
    private static string TrainToFile(BpeTrainerOptions options, string name)
    {
        var texts = TestData.CorpusTexts();
        var path = TestData.WriteTemp(name, string.Empty);
        using (var stream = File.Create(path))
        {
            BpeTrainer.Train(texts, options, stream, TestContext.Current.CancellationToken);
        }

        return path;
    }

    [Fact]
    public void Train_GoldenCorpus_LoadsAndRoundTrips()
    {
        var path = TrainToFile(new BpeTrainerOptions { VocabSize = 800, SpecialTokens = ["<s>", "</s>"] }, "trained.json");
        var tok = TokenizerJson.Load(path);
        Assert.Equal(800, tok.VocabSize);
        Assert.Equal(0, tok.TokenToId("<s>"));
        foreach (var text in TestData.CorpusTexts())
        {
            Assert.Equal(text, tok.Decode(tok.Encode(text)));
        }

        var ids = tok.Encode("<s>The quick brown fox</s>");
        Assert.Equal(0, ids[0]);
        Assert.Equal(1, ids[^1]);
        Assert.True(ids.Length < "The quick brown fox".Length, "merges should shorten common English");
    }

    [Fact]
    public void Train_SameInput_SameFile()
    {
        var options = new BpeTrainerOptions { VocabSize = 400, PreTokenizer = "gpt2" };
        var a = File.ReadAllText(TrainToFile(options, "a.json"));
        var b = File.ReadAllText(TrainToFile(options, "b.json"));
        Assert.Equal(a, b);
        using var doc = JsonDocument.Parse(a);
        Assert.Equal("BPE", doc.RootElement.GetProperty("model").GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Array, doc.RootElement.GetProperty("model").GetProperty("merges")[0].ValueKind);
    }

    [Fact]
    public void Train_AddedTokens_AreWholeNonSpecialIdsRightAfterTheSpecials()
    {
        var options = new BpeTrainerOptions { VocabSize = 600, SpecialTokens = ["<s>", "</s>"], AddedTokens = ["<think>", "</think>"] };
        var path = TrainToFile(options, "added.json");

        var tok = TokenizerJson.Load(path);
        Assert.Equal(600, tok.VocabSize);
        Assert.Equal(2, tok.TokenToId("<think>"));
        Assert.Equal(3, tok.TokenToId("</think>"));
        var ids = tok.Encode("<think>\n1+2=3\n</think>");
        Assert.Equal(2, ids[0]);
        Assert.Equal(3, ids[^1]);
        Assert.Equal(1, ids.Count(id => id == 2));
        Assert.Equal("<think>\n1+2=3\n</think>", tok.Decode(ids));

        // Decoding without special tokens drops <s> but keeps the (non-special) think tags, as DeepSeek-R1's tokenizer does.
        int[] withSpecial = [0, .. ids];
        Assert.Equal("<think>\n1+2=3\n</think>", tok.Decode(withSpecial, skipSpecialTokens: true));
        Assert.Equal("<s><think>\n1+2=3\n</think>", tok.Decode(withSpecial));

        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var added = doc.RootElement.GetProperty("added_tokens").EnumerateArray()
            .Select(t => (t.GetProperty("id").GetInt32(), t.GetProperty("content").GetString(), t.GetProperty("special").GetBoolean()))
            .ToList();
        (int, string?, bool)[] expected = [(0, "<s>", true), (1, "</s>", true), (2, "<think>", false), (3, "</think>", false)];
        Assert.Equal(expected, added);
    }

    [Fact]
    public void Train_AddedTokens_AreNotLearnedFrom()
    {
        var texts = Enumerable.Repeat("<think>\nabc\n</think>", 50).ToList();
        using var stream = new MemoryStream();
        BpeTrainer.Train(texts, new BpeTrainerOptions { VocabSize = 400, AddedTokens = ["<think>", "</think>"] }, stream, TestContext.Current.CancellationToken);

        using var doc = JsonDocument.Parse(stream.ToArray());
        var vocab = doc.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject().Select(p => p.Name).ToList();
        Assert.DoesNotContain(vocab, t => t.Contains("think", StringComparison.Ordinal) && t is not "<think>" and not "</think>");
        Assert.Contains("abc", vocab);
    }

    [Fact]
    public void Train_InvalidAddedTokens_Throw()
    {
        var ct = TestContext.Current.CancellationToken;

        var both = Assert.Throws<ArgumentException>(() =>
            BpeTrainer.Train(["x"], new BpeTrainerOptions { SpecialTokens = ["<s>", "<think>"], AddedTokens = ["<think>"] }, Stream.Null, ct));
        Assert.Contains("\"<think>\" is both a special token and an added token", both.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions { AddedTokens = [""] }, Stream.Null, ct));
        var small = Assert.Throws<ArgumentException>(() =>
            BpeTrainer.Train(["x"], new BpeTrainerOptions { VocabSize = 257, SpecialTokens = ["<s>"], AddedTokens = ["<think>"] }, Stream.Null, ct));
        Assert.Contains("1 added tokens", small.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_VocabBelowByteAlphabet_Throws()
    {
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions { VocabSize = 100 }, Stream.Null, TestContext.Current.CancellationToken));
    }
}
