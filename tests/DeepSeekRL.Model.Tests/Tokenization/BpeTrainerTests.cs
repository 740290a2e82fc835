using System.Text.Json;
using DeepSeekRL.Model.Tokenization;

namespace DeepSeekRL.Model.Tests.Tokenization;

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
    public void Train_VocabBelowByteAlphabet_Throws()
    {
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions { VocabSize = 100 }, Stream.Null, TestContext.Current.CancellationToken));
    }
}
