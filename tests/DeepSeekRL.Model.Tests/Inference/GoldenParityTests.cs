using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Tests.Inference;

/// <summary>
/// Parity with the PyTorch reference (infra/reference/): every directory under Data/golden/ that holds a config.json,
/// a model.safetensors and a golden.safetensors (tensors <c>tokens_N</c> [T] and <c>logits_N</c> [T, V]) is checked:
/// full forward and token-by-token decode (absorbed and naive) within 1e-4 of the largest logit magnitude.
/// </summary>
public sealed class GoldenParityTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        var root = Path.Combine(AppContext.BaseDirectory, "Data", "golden");
        if (Directory.Exists(root))
        {
            foreach (var dir in Directory.GetDirectories(root).Order(StringComparer.Ordinal))
            {
                data.Add(Path.GetFileName(dir));
            }
        }

        if (data.Count == 0)
        {
            data.Add("");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Golden_ForwardAndDecode_MatchPyTorchWithin1e4OfLargestLogit(string name)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "Data", "golden", name);
        if (name.Length == 0 || !File.Exists(Path.Combine(dir, "golden.safetensors")) || !File.Exists(Path.Combine(dir, "model.safetensors")))
        {
            Assert.Skip("golden data not present yet");
        }

        var (weights, error) = ModelWeights.LoadDirectory(dir);
        Assert.True(weights is not null, error);
        var model = new Transformer(weights, new TransformerOptions { MaxPositions = weights.Config.MaxPositionEmbeddings });
        var golden = Safetensors.ReadAll(Path.Combine(dir, "golden.safetensors"));
        var cases = 0;
        foreach (var (key, tensor) in golden)
        {
            if (!key.StartsWith("tokens", StringComparison.Ordinal))
            {
                continue;
            }

            var tokens = Array.ConvertAll(tensor.Data, x => (int)x);
            var expected = golden["logits" + key["tokens".Length..]].Data;
            TestModels.AssertClose(expected, model.ForwardSequence(tokens), 1e-4, $"{name}/{key} forward");
            TestModels.AssertClose(expected, model.DecodeSequence(tokens, KvCacheKind.Absorbed), 1e-4, $"{name}/{key} absorbed decode");
            TestModels.AssertClose(expected, model.DecodeSequence(tokens, KvCacheKind.Naive), 1e-4, $"{name}/{key} naive decode");
            cases++;
        }

        Assert.True(cases > 0, $"{name}: golden.safetensors has no tokens_* tensors");
    }
}
