using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Training;
using static TorchSharp.torch;

namespace DeepSeekRL.Model.TorchSharp.Tests;

/// <summary>
/// The libtorch engine against the native engine on the same weights and batch: logits within 1e-4 of the largest
/// logit, the same experts for every token of every MoE layer (MTP block included), every parameter's gradient within
/// 1e-3 relative (of that parameter's largest gradient element), and the same loss parts.
/// </summary>
public sealed class NativeParityTests
{
    public static TheoryData<string> Configs() => ["micro", "micro-qproj", "micro-half-yarn", "tiny"];

    internal static DeepSeekV3Config Config(string name) => name switch
    {
        "micro" => TorchTestModels.Micro(),
        "micro-qproj" => TorchTestModels.Micro(qLora: false),
        "micro-half-yarn" => TorchTestModels.Micro(yarn: true, interleave: false),
        _ => TorchTestModels.Tiny(),
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void TrainingForwardAndBackward_MatchNativeEngine(string name)
    {
        var config = Config(name);
        var weights = TorchTestModels.Weights(config, seed: 5, std: name == "tiny" ? 0.05 : 0.25);
        const int b = 3;
        var t = name == "tiny" ? 24 : 12;
        var tokens = TorchTestModels.Tokens(b * t, config.VocabSize, 17);
        var mask = Enumerable.Range(0, b * t).Select(i => i % t < 3 ? 0f : 1f).ToArray();
        const float mtpWeight = 0.3f, alpha = 0.01f;

        var native = new TrainingModel(weights, threads: 1);
        var nativeLoss = native.Forward(tokens, b, mask, mtpWeight, alpha);
        var grads = new Gradients(config);
        native.Backward(grads);

        TorchRuntime.SetThreads(1);
        using var model = new TorchDeepSeekV3(weights, CPU) { RecordRouting = true };
        using var scope = NewDisposeScope();
        var ids = tensor(tokens.Select(x => (long)x).ToArray(), [b, t]);
        var (loss, main, mtp, balance) = model.TrainingLoss(ids, tensor(mask, [b, t]), mtpWeight, alpha);
        loss.backward();

        Assert.True(Math.Abs(loss.item<float>() - nativeLoss) <= 1e-5 * Math.Abs(nativeLoss), $"loss {loss.item<float>()} vs native {nativeLoss}");
        Assert.Equal(native.MainLoss, main, 1e-4);
        Assert.Equal(native.MtpLoss, mtp, 1e-4);
        Assert.Equal(native.BalanceLoss, balance, 1e-6);
        Assert.True(native.BalanceLoss > 0, "the balance loss did not run");

        // Logits of the main model.
        var actual = new float[b * t * config.VocabSize];
        using (no_grad())
        {
            TorchDeepSeekV3.Copy(model.Forward(ids).Logits, actual);
        }

        TorchTestModels.AssertClose(native.Logits, actual, 1e-4, $"{name} logits");

        // The same experts for every token (the torch forward ran the MTP block in TrainingLoss; the last Forward did not).
        for (var layer = config.FirstKDenseReplace; layer < config.NumHiddenLayers; layer++)
        {
            Assert.Equal(native.Selection(layer).Select(x => (long)x).ToArray(), model.Routing[layer]);
        }

        // Every parameter's gradient, elementwise, relative to that parameter's largest gradient.
        var torchGrads = new float[weights.Data.Length];
        TorchDeepSeekV3.Copy(model.Flat.grad!, torchGrads);
        var checkedTensors = 0;
        foreach (var spec in weights.Specs.Where(s => s.Trainable))
        {
            var offset = grads.Offset(spec.Name);
            var expected = grads.Data.AsSpan(offset, (int)spec.Count);
            var got = torchGrads.AsSpan(offset, (int)spec.Count);
            if (expected.ToArray().All(x => x == 0))
            {
                // An expert no token chose: both engines must give exactly nothing.
                Assert.True(got.ToArray().All(x => x == 0), $"{spec.Name}: native gradient is zero, torch's is not");
                continue;
            }

            TorchTestModels.AssertClose(expected, got, 1e-3, $"{name} gradient of {spec.Name}");
            checkedTensors++;
        }

        Assert.True(checkedTensors > weights.Specs.Count / 2, $"only {checkedTensors} gradients were non-zero");
    }

    [Fact]
    public void Routing_MtpBlockAndEveryLayer_ChooseTheNativeEnginesExperts()
    {
        var config = TorchTestModels.Tiny();
        var weights = TorchTestModels.Weights(config, seed: 9, std: 0.05);
        const int b = 2, t = 40;
        var tokens = TorchTestModels.Tokens(b * t, config.VocabSize, 3);
        var native = new TrainingModel(weights, threads: 1);
        native.Forward(tokens, b, default, mtpWeight: 1f);
        using var model = new TorchDeepSeekV3(weights, CPU) { RecordRouting = true };
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.Forward(tensor(tokens.Select(x => (long)x).ToArray(), [b, t]), mtp: true);
        for (var layer = config.FirstKDenseReplace; layer <= config.NumHiddenLayers; layer++)
        {
            Assert.Equal(native.Selection(layer).Select(x => (long)x).ToArray(), model.Routing[layer]);
        }
    }
}
