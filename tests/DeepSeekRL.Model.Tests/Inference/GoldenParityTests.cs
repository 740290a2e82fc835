using System.Text.Json;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Tests.Inference;

/// <summary>
/// Parity with the PyTorch reference (infra/reference/deepseek_v3.py) on the golden data of Data/golden/ (format in its
/// README): per case folder, config.json + golden.json (seed, std, bias_std, sequences) + seqK.safetensors (logits
/// [T, V], mtp_logits [T−1, V]). Weights come from the folder's model.safetensors when present, else are re-created
/// with the checkpoint library's deterministic ModelInit. Full forward, token-by-token decode (absorbed and naive)
/// and the MTP logits must match within 1e-4 of the largest logit magnitude.
/// </summary>
public sealed class GoldenParityTests
{
    private static string Root => Path.Combine(AppContext.BaseDirectory, "Data", "golden");

    /// <summary>The committed golden cases; the four of infra/reference/make_golden.sh must all be there.</summary>
    public static TheoryData<string> Cases() => ["micro", "micro-qproj", "tiny", "tiny-yarn"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Golden_ForwardDecodeAndMtp_MatchPyTorchWithin1e4OfLargestLogit(string name)
    {
        var dir = Path.Combine(Root, name);
        Assert.True(File.Exists(Path.Combine(dir, "golden.json")), $"golden case {dir} is missing (made by infra/reference/make_golden.sh)");
        using var golden = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "golden.json")));
        var weights = LoadWeights(dir, golden.RootElement);
        var model = new Transformer(weights, new TransformerOptions { MaxPositions = weights.Config.MaxPositionEmbeddings });
        var v = weights.Config.VocabSize;
        var checkedSequences = 0;
        foreach (var sequence in golden.RootElement.GetProperty("sequences").EnumerateArray())
        {
            var tokens = sequence.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray();
            var file = sequence.GetProperty("file").GetString()!;
            var expected = Safetensors.ReadAll(Path.Combine(dir, file));
            var logits = expected["logits"].Data;
            Assert.Equal(tokens.Length * v, logits.Length);
            TestModels.AssertClose(logits, model.ForwardSequence(tokens), 1e-4, $"{name}/{file} forward");
            TestModels.AssertClose(logits, model.DecodeSequence(tokens, KvCacheKind.Absorbed), 1e-4, $"{name}/{file} absorbed decode");
            TestModels.AssertClose(logits, model.DecodeSequence(tokens, KvCacheKind.Naive), 1e-4, $"{name}/{file} naive decode");
            if (expected.TryGetValue("mtp_logits", out var mtp) && mtp.Data.Length > 0)
            {
                TestModels.AssertClose(mtp.Data, model.MtpSequence(tokens), 1e-4, $"{name}/{file} MTP");
            }

            checkedSequences++;
        }

        Assert.True(checkedSequences > 0, $"{name}: golden.json lists no sequences");
    }

    private static ModelWeights LoadWeights(string dir, JsonElement golden)
    {
        if (File.Exists(Path.Combine(dir, "model.safetensors")))
        {
            var (loaded, error) = ModelWeights.LoadDirectory(dir);
            Assert.True(loaded is not null, error);
            return loaded;
        }

        var (config, configError) = DeepSeekV3Config.Load(Path.Combine(dir, "config.json"));
        Assert.True(config is not null, configError);

        // The golden weights are not committed: ModelInit re-creates them deterministically from config and seed.
        var store = ModelInit.Create(config!, golden.GetProperty("seed").GetInt64(), new ModelInitOptions
        {
            Std = golden.GetProperty("std").GetDouble(),
            BiasStd = golden.GetProperty("bias_std").GetDouble(),
        });
        return new ModelWeights(config!, store.Data);
    }
}
