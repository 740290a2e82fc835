using System.Text.Json;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Weights;
using static TorchSharp.torch;

namespace DeepSeekRL.Model.TorchSharp.Tests;

/// <summary>
/// The libtorch engine's autograd against the PyTorch reference's golden gradients (infra/reference/make_golden_grads.sh,
/// fp64): the loss, and for every parameter its gradient norm and 64 sampled elements, within 1e-3 relative.
/// </summary>
public sealed class GoldenGradientTests
{
    private static string Dir => Path.Combine(AppContext.BaseDirectory, "Data", "golden-grads", "tiny");

    [Fact]
    public void Golden_TinyLossAndEveryGradient_MatchPyTorchWithin1e3()
    {
        using var golden = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, "golden.json")));
        var root = golden.RootElement;
        var (config, error) = DeepSeekV3Config.Load(Path.Combine(Dir, "config.json"));
        Assert.True(config is not null, error);
        var weights = new ModelWeights(config, ModelInit.Create(config, root.GetProperty("seed").GetInt64(), new ModelInitOptions
        {
            Std = root.GetProperty("std").GetDouble(),
            BiasStd = root.GetProperty("bias_std").GetDouble(),
        }).Data);
        var sequences = root.GetProperty("sequences").EnumerateArray().Select(s => s.EnumerateArray().Select(t => (long)t.GetInt32()).ToArray()).ToArray();
        using var model = new TorchDeepSeekV3(weights, CPU);
        using var scope = NewDisposeScope();
        var ids = tensor(sequences.SelectMany(s => s).ToArray(), [sequences.Length, sequences[0].Length]);
        var (loss, main, mtp, _) = model.TrainingLoss(ids, null, (float)root.GetProperty("mtp_weight").GetDouble());
        loss.backward();
        var expectedLoss = root.GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(loss.item<float>() - expectedLoss) <= 1e-4 * Math.Abs(expectedLoss), $"loss {loss.item<float>()} vs PyTorch {expectedLoss}");
        Assert.Equal(root.GetProperty("main_loss").GetDouble(), main, 1e-3);
        Assert.Equal(root.GetProperty("mtp_loss").GetDouble(), mtp, 1e-3);

        var grads = new float[weights.Data.Length];
        TorchDeepSeekV3.Copy(model.Flat.grad!, grads);
        var expected = Safetensors.ReadAll(Path.Combine(Dir, "grads.safetensors"));
        var checkedTensors = 0;
        foreach (var spec in weights.Specs)
        {
            var values = expected[spec.Name].Data;
            var index = expected[spec.Name + ":index"].Data;
            var norm = expected[spec.Name + ":norm"].Data[0];
            var g = grads.AsSpan(weights.Offset(spec.Name), (int)spec.Count);
            double scale = 0, diff = 0, sq = 0;
            for (var i = 0; i < values.Length; i++)
            {
                scale = Math.Max(scale, Math.Abs(values[i]));
                diff = Math.Max(diff, Math.Abs(g[(int)index[i]] - values[i]));
            }

            foreach (var x in g)
            {
                sq += (double)x * x;
            }

            if (norm == 0)
            {
                Assert.True(sq == 0, $"{spec.Name}: PyTorch's gradient is zero, libtorch's has norm {Math.Sqrt(sq):g4}");
                continue;
            }

            Assert.True(diff <= 1e-3 * scale, $"{spec.Name}: max |diff| {diff:g4} > 1e-3 x {scale:g4}");
            Assert.True(Math.Abs(Math.Sqrt(sq) - norm) <= 1e-3 * norm, $"{spec.Name}: norm {Math.Sqrt(sq):g6} vs PyTorch {norm:g6}");
            checkedTensors++;
        }

        Assert.True(checkedTensors > weights.Specs.Count / 2, $"only {checkedTensors} non-zero gradients");
    }
}
