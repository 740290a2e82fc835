using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.PolicyLosses;
using DeepSeekRL.Model.Reinforcement;
using DeepSeekRL.Model.TorchSharp.Engines;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;
using static TorchSharp.torch;

namespace DeepSeekRL.Model.TorchSharp.Tests;

/// <summary>
/// Updates on both engines from the same state and batch: one GRPO step (every aggregation, off-policy weights, a KL
/// term against a reference, the routing-bias update) gives weights within 1e-4 of the native engine's, and 20 SFT
/// steps (MTP, balance loss, bias update, a learning-rate schedule) give losses within 1e-3. The optimizer state moves
/// between the engines through the native optimizer.safetensors format.
/// </summary>
public sealed class TrainingParityTests
{
    private static readonly AdamWOptions Adam = new()
    {
        WeightDecay = 0.1,
        MaxGradNorm = 0.5,
        Schedule = new LearningRateScheduleOptions { PeakLearningRate = 3e-3, MinLearningRate = 3e-4, WarmupSteps = 3, TotalSteps = 20 },
    };

    public static TheoryData<LossAggregation, double> Losses() => new()
    {
        { LossAggregation.Grpo, 0 },
        { LossAggregation.Dapo, 0.05 },
        { LossAggregation.DrGrpo, 0 },
        { LossAggregation.Bnpo, 0.05 },
    };

    [Fact]
    public void SftAndGrpoSteps_Repeated_LeaveNoTensorAlive()
    {
        // Every step's tensors are freed when it ends (not left to finalizers): the count of tensors this thread made
        // and did not free is the same after three more steps of each kind.
        var config = TorchTestModels.Micro();
        var engine = new TorchModelEngine();
        var options = new ModelEngineOptions { Threads = 1 };
        using var trainer = engine.CreateTrainer(TorchTestModels.Weights(config, seed: 3, std: 0.2), Adam, null, options);
        using var reference = (TorchGrpoEngine)engine.CreateReference(TorchTestModels.Weights(config, seed: 4, std: 0.2), options);
        var updater = new GrpoUpdater(trainer.Grpo, reference, new GrpoUpdaterOptions { Loss = new PolicyLossOptions { Beta = 0.05 }, MicroBatchSequences = 3, RoutingBiasSpeed = 0.01f, Threads = 1 });
        var tokens = TorchTestModels.Tokens(2 * 9, config.VocabSize, 5);
        var batch = Batch(config);
        void Steps(int count)
        {
            for (var i = 0; i < count; i++)
            {
                Assert.True(double.IsFinite(trainer.SftStep(tokens, 2, default, 0.3f, 0.01f, 0.001f).Loss));
                Assert.True(double.IsFinite(updater.Step(batch, TestContext.Current.CancellationToken).Loss));
            }
        }

        Steps(1);
        var live = global::TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Steps(3);
        Assert.Equal(live, global::TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Theory]
    [MemberData(nameof(Losses))]
    public void GrpoStep_SameStateAndBatch_WeightsWithin1e4OfNativeEngine(LossAggregation aggregation, double beta)
    {
        var config = TorchTestModels.Micro();
        var start = TorchTestModels.Weights(config, seed: 3, std: 0.2);
        var reference = TorchTestModels.Weights(config, seed: 4, std: 0.2);
        var options = new GrpoUpdaterOptions
        {
            Loss = new PolicyLossOptions { Aggregation = aggregation, Beta = beta },
            MicroBatchSequences = 3,
            Temperature = 0.9f,
            RoutingBiasSpeed = 0.01f,
            Threads = 1,
        };
        var batch = Batch(config);

        // Sampling log-probs a little off the policy's, so the off-policy weight is exercised.
        var probe = NativeGrpoEngine.Updater(new ModelWeights(config, start.Data.ToArray()), reference, new AdamW(start.Specs, Adam), options).CompletionLogProbs(batch);
        batch = [.. batch.Select((s, i) => s with { SamplingLogProbs = Array.ConvertAll(probe[i], x => (float)(x - (0.03 * (i - 2)))) })];

        var nativeWeights = new ModelWeights(config, start.Data.ToArray());
        var native = NativeGrpoEngine.Updater(nativeWeights, beta > 0 ? reference : null, new AdamW(start.Specs, Adam), options);
        var nativeMetrics = native.Step(batch, TestContext.Current.CancellationToken);

        using var model = new TorchDeepSeekV3(start, CPU);
        using var referenceModel = new TorchDeepSeekV3(reference, CPU);
        using var optimizer = new TorchAdamW(model, Adam);
        using var engine = new TorchGrpoEngine(model, optimizer);
        using var referenceEngine = new TorchGrpoEngine(referenceModel, null);
        var torch = new GrpoUpdater(engine, beta > 0 ? referenceEngine : null, options);
        var torchMetrics = torch.Step(batch, TestContext.Current.CancellationToken);

        Assert.Equal(nativeMetrics.Loss, torchMetrics.Loss, 1e-4);
        Assert.Equal(nativeMetrics.GradNorm, torchMetrics.GradNorm, 1e-3 * nativeMetrics.GradNorm);
        Assert.Equal(nativeMetrics.EntropyMean, torchMetrics.EntropyMean, 1e-4);
        Assert.Equal(nativeMetrics.RatioMean, torchMetrics.RatioMean, 1e-5);
        if (beta > 0)
        {
            Assert.Equal(nativeMetrics.KlMean, torchMetrics.KlMean, 1e-5 * Math.Max(1, nativeMetrics.KlMean));
        }

        for (var l = 0; l < nativeMetrics.ExpertLoad.Count; l++)
        {
            Assert.Equal(nativeMetrics.ExpertLoad[l], torchMetrics.ExpertLoad[l]);
        }

        var after = new float[start.Data.Length];
        model.Export(after);
        double worst = 0, moved = 0;
        for (var i = 0; i < after.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(after[i] - nativeWeights.Data[i]));
            moved = Math.Max(moved, Math.Abs(nativeWeights.Data[i] - start.Data[i]));
        }

        Assert.True(moved > 1e-3, $"the native step moved no weight by more than {moved}");
        Assert.True(worst <= 1e-4, $"weights differ by {worst} after one GRPO step");
    }

    [Fact]
    public void SftSteps_Twenty_LossesWithin1e3OfNativeEngine_AndOptimizerStateRoundTrips()
    {
        var config = TorchTestModels.Micro();
        var start = TorchTestModels.Weights(config, seed: 8, std: 0.2);
        const int b = 4, t = 12;
        var nativeWeights = new ModelWeights(config, start.Data.ToArray());
        var nativeModel = new TrainingModel(nativeWeights, threads: 1);
        var nativeOptimizer = new AdamW(start.Specs, Adam);
        var grads = new Gradients(config);
        using var model = new TorchDeepSeekV3(start, CPU);
        using var optimizer = new TorchAdamW(model, Adam);
        var trainer = new TorchTrainer(model, optimizer);
        double worst = 0;
        var first = 0.0;
        var last = 0.0;
        for (var step = 0; step < 20; step++)
        {
            var tokens = TorchTestModels.Tokens(b * t, config.VocabSize, 100 + (step % 5));
            var mask = Enumerable.Range(0, b * t).Select(i => i % t < 2 ? 0f : 1f).ToArray();
            var nativeLoss = nativeModel.Forward(tokens, b, mask, 0.3f, 0.001f);
            grads.Clear();
            nativeModel.Backward(grads);
            nativeOptimizer.Step(nativeWeights.Data, grads.Data);
            nativeModel.UpdateRoutingBias(0.001f);
            var result = trainer.Step(tokens, b, mask, 0.3f, 0.001f, 0.001f);
            worst = Math.Max(worst, Math.Abs(result.Loss - nativeLoss));
            first = step == 0 ? nativeLoss : first;
            last = nativeLoss;
        }

        Assert.True(worst <= 1e-3, $"losses differ by up to {worst} over 20 steps");
        Assert.True(last < first - 0.1, $"training did not learn (loss {first} → {last})");

        // The torch optimizer's state saved in the native format, loaded by the native AdamW and back.
        var directory = Directory.CreateTempSubdirectory("deepseekrl-torch-adamw-").FullName;
        try
        {
            optimizer.Save(directory);
            var loaded = AdamW.Load(directory, start.Specs, Adam);
            Assert.Equal(20, loaded.StepCount);
            TorchTestModels.AssertClose(nativeOptimizer.SecondMoment, loaded.SecondMoment, 1e-3, "second moments after 20 steps");
            using var other = new TorchDeepSeekV3(start, CPU);
            using var resumed = new TorchAdamW(other, Adam);
            resumed.Load(loaded);
            Assert.Equal(20, resumed.StepCount);
            var m = new float[start.Data.Length];
            TorchDeepSeekV3.Copy(resumed.FirstMoment, m);
            Assert.Equal(loaded.FirstMoment, m);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static List<GrpoSequence> Batch(DeepSeekV3Config config)
    {
        var advantages = new[] { 1.0, -0.5, 0.8, -1.2, 0.3 };
        return [.. advantages.Select((a, i) => new GrpoSequence(
            TorchTestModels.Tokens(3 + i, config.VocabSize, 40 + i),
            TorchTestModels.Tokens(4 + (2 * i), config.VocabSize, 60 + i),
            [],
            a))];
    }
}
