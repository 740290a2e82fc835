using System.Text.Json;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Tests.Training;

/// <summary>
/// Golden gradients from the PyTorch reference (infra/reference/make_golden_grads.sh, fp64 autograd) for the tiny
/// config: the loss, and for EVERY parameter its gradient norm and 64 sampled elements, within 1e-3 relative.
/// </summary>
public sealed class GoldenGradientTests(ITestOutputHelper output)
{
    private static string Dir => Path.Combine(AppContext.BaseDirectory, "Data", "golden-grads", "tiny");

    [Fact]
    public void Golden_TinyLossAndEveryGradient_MatchPyTorchWithin1e3()
    {
        using var golden = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, "golden.json")));
        var root = golden.RootElement;
        var (config, error) = DeepSeekV3Config.Load(Path.Combine(Dir, "config.json"));
        Assert.True(config is not null, error);
        var store = ModelInit.Create(config, root.GetProperty("seed").GetInt64(), new ModelInitOptions
        {
            Std = root.GetProperty("std").GetDouble(),
            BiasStd = root.GetProperty("bias_std").GetDouble(),
        });
        var weights = new ModelWeights(config, store.Data);
        var sequences = root.GetProperty("sequences").EnumerateArray().Select(s => s.EnumerateArray().Select(t => t.GetInt32()).ToArray()).ToArray();
        var model = new TrainingModel(weights);
        var loss = model.Forward(sequences.SelectMany(s => s).ToArray(), sequences.Length, default, (float)root.GetProperty("mtp_weight").GetDouble());
        var grads = new Gradients(config);
        model.Backward(grads);

        var expectedLoss = root.GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(loss - expectedLoss) <= 1e-4 * Math.Abs(expectedLoss), $"loss {loss} vs PyTorch {expectedLoss}");
        Assert.Equal(root.GetProperty("main_loss").GetDouble(), model.MainLoss, 1e-3);
        Assert.Equal(root.GetProperty("mtp_loss").GetDouble(), model.MtpLoss, 1e-3);

        var expected = Safetensors.ReadAll(Path.Combine(Dir, "grads.safetensors"));
        double worst = 0;
        var worstName = "";
        var checkedTensors = 0;
        foreach (var spec in weights.Specs)
        {
            var values = expected[spec.Name].Data;
            var index = expected[spec.Name + ":index"].Data;
            var norm = expected[spec.Name + ":norm"].Data[0];
            var g = grads.Get(spec.Name);
            double scale = 0, diff = 0, sq = 0;
            var at = -1;
            for (var i = 0; i < values.Length; i++)
            {
                var actual = g[(int)index[i]];
                scale = Math.Max(scale, Math.Abs(values[i]));
                var d = Math.Abs(actual - values[i]);
                if (d > diff)
                {
                    (diff, at) = (d, i);
                }
            }

            foreach (var x in g)
            {
                sq += (double)x * x;
            }

            if (norm == 0)
            {
                Assert.True(sq == 0, $"{spec.Name}: PyTorch's gradient is zero, ours has norm {Math.Sqrt(sq):g4}");
                continue;
            }

            var rel = diff / scale;
            var normRel = Math.Abs(Math.Sqrt(sq) - norm) / norm;
            var err = Math.Max(rel, normRel);
            if (err > worst)
            {
                (worst, worstName) = (err, spec.Name);
            }

            Assert.True(rel <= 1e-3, $"{spec.Name}: max |diff| {diff:g4} at element {(at >= 0 ? (int)index[at] : -1)} (PyTorch {(at >= 0 ? values[at] : 0)}, ours {(at >= 0 ? g[(int)index[at]] : 0)}), relative {rel:e3}");
            Assert.True(normRel <= 1e-3, $"{spec.Name}: norm {Math.Sqrt(sq):g6} vs PyTorch {norm:g6}, relative {normRel:e3}");
            checkedTensors++;
        }

        output.WriteLine($"tiny: loss {loss:f6} (PyTorch {expectedLoss:f6}); {checkedTensors} non-zero tensors; worst {worstName} relative {worst:e3}");
    }
}
