using System.Text.Json;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Weights;
using static TorchSharp.torch;

namespace DeepSeekRL.Model.TorchSharp.Tests;

/// <summary>
/// The libtorch engine against the PyTorch reference's golden files (infra/reference/make_golden.sh, the same files the
/// native engine is held to): full forward and the MTP logits within 1e-4 of the largest logit magnitude.
/// </summary>
public sealed class GoldenParityTests
{
    private static string Root => Path.Combine(AppContext.BaseDirectory, "Data", "golden");

    public static TheoryData<string> Cases() => ["micro", "micro-qproj", "tiny", "tiny-yarn"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Golden_ForwardAndMtp_MatchPyTorchWithin1e4OfLargestLogit(string name)
    {
        var dir = Path.Combine(Root, name);
        using var golden = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "golden.json")));
        var weights = LoadWeights(dir, golden.RootElement);
        using var model = new TorchDeepSeekV3(weights, CPU);
        var v = weights.Config.VocabSize;
        var checkedSequences = 0;
        foreach (var sequence in golden.RootElement.GetProperty("sequences").EnumerateArray())
        {
            var ids = sequence.GetProperty("tokens").EnumerateArray().Select(t => (long)t.GetInt32()).ToArray();
            var expected = Safetensors.ReadAll(Path.Combine(dir, sequence.GetProperty("file").GetString()!));
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var (logits, mtp) = model.Forward(tensor(ids, [1, ids.Length]), mtp: true);
            var actual = new float[ids.Length * v];
            TorchDeepSeekV3.Copy(logits, actual);
            TorchTestModels.AssertClose(expected["logits"].Data, actual, 1e-4, $"{name} forward");
            if (expected.TryGetValue("mtp_logits", out var mtpExpected) && mtpExpected.Data.Length > 0)
            {
                Assert.NotNull(mtp);
                var mtpActual = new float[mtpExpected.Data.Length];
                TorchDeepSeekV3.Copy(mtp, mtpActual);
                TorchTestModels.AssertClose(mtpExpected.Data, mtpActual, 1e-4, $"{name} MTP");
            }

            checkedSequences++;
        }

        Assert.True(checkedSequences > 0);
    }

    internal static ModelWeights LoadWeights(string dir, JsonElement golden)
    {
        var (config, error) = DeepSeekV3Config.Load(Path.Combine(dir, "config.json"));
        Assert.True(config is not null, error);
        return new ModelWeights(config!, ModelInit.Create(config!, golden.GetProperty("seed").GetInt64(), new ModelInitOptions
        {
            Std = golden.GetProperty("std").GetDouble(),
            BiasStd = golden.GetProperty("bias_std").GetDouble(),
        }).Data);
    }
}
