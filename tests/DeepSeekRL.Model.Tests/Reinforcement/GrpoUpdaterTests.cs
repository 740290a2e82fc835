using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.PolicyLosses;
using DeepSeekRL.Model.Reinforcement;
using DeepSeekRL.Model.Tests.Inference;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Tests.Reinforcement;

/// <summary>
/// <see cref="GrpoUpdater"/> on the real micro model: zero signal, exact micro-batching, the on-policy identity
/// against TrainingModel's own cross-entropy backward, learning direction, the off-policy mask and weight, and KL.
/// </summary>
public sealed class GrpoUpdaterTests
{
    private const int Pad = 0;

    public static TheoryData<LossAggregation, RatioLevel> Aggregations() => new()
    {
        { LossAggregation.Grpo, RatioLevel.Token },
        { LossAggregation.Bnpo, RatioLevel.Token },
        { LossAggregation.Dapo, RatioLevel.Token },
        { LossAggregation.DrGrpo, RatioLevel.Token },
        { LossAggregation.Grpo, RatioLevel.Sequence },
        { LossAggregation.Dapo, RatioLevel.Sequence },
    };

    [Fact]
    public void Step_ZeroAdvantagesNoKl_LeavesWeightsBitForBit()
    {
        var (config, policy) = Model();
        var before = policy.Data.ToArray();
        var updater = Updater(policy, null, new PolicyLossOptions(), micro: 2);
        var batch = Batch(config, [0, 0, 0]);

        var m = updater.Step(batch, TestContext.Current.CancellationToken);

        Assert.True(((NativeGrpoEngine)updater.Engine).Gradients.Data.AsSpan().IndexOfAnyExcept(0f) < 0, "gradient is not exactly zero");
        Assert.Equal(0, m.GradNorm);
        Assert.Equal(1, m.Step);
        Assert.True(before.AsSpan().SequenceEqual(policy.Data), "weights changed");
    }

    [Theory]
    [MemberData(nameof(Aggregations))]
    public void Step_OneVersusWholeBatchMicroBatches_SameGradientAndWeights(LossAggregation aggregation, RatioLevel ratioLevel)
    {
        var (config, a) = Model();
        var (_, b) = Model();
        var loss = new PolicyLossOptions { Aggregation = aggregation, RatioLevel = ratioLevel };
        var batch = Batch(config, [1.0, -0.5, 0.75, -1.25]);

        // Slightly off-policy sampling log-probs (ratio inside [1/3, 3]) so the off-policy weight is exercised too.
        var current = Updater(a, null, loss, micro: 4).CompletionLogProbs(batch);
        batch = [.. batch.Select((s, i) => s with { SamplingLogProbs = Array.ConvertAll(current[i], x => (float)(x - (0.02 * (i - 1.5)))) })];

        var one = Updater(a, null, loss, micro: 1);
        var all = Updater(b, null, loss, micro: 4);
        var m1 = one.Step(batch, TestContext.Current.CancellationToken);
        var m4 = all.Step(batch, TestContext.Current.CancellationToken);

        Assert.True(m1.GradNorm > 0);
        TestModels.AssertClose(((NativeGrpoEngine)all.Engine).Gradients.Data, ((NativeGrpoEngine)one.Engine).Gradients.Data, 1e-5, $"{aggregation} gradient");
        TestModels.AssertClose(b.Data, a.Data, 1e-5, $"{aggregation} weights after the step");
        Assert.Equal(m4.Loss, m1.Loss, 1e-6);
        Assert.Equal(m4.EntropyMean, m1.EntropyMean, 1e-6);
        Assert.Equal(m4.RatioMean, m1.RatioMean, 1e-9);
        Assert.Equal(m4.CompletionTokens, m1.CompletionTokens);
        for (var l = 0; l < config.NumHiddenLayers; l++)
        {
            // Padding is not counted, so the loads agree exactly.
            Assert.Equal(m4.ExpertLoad[l], m1.ExpertLoad[l]);
        }

        long total = 0;
        foreach (var s in batch)
        {
            total += s.Prompt.Length + s.Completion.Length;
        }

        Assert.Empty(m1.ExpertLoad[0]);
        Assert.Equal(total * config.NumExpertsPerTok, m1.ExpertLoad[1].Sum());
    }

    [Fact]
    public void ComputeGradients_OnPolicyDapo_EqualsAdvantageWeightedCrossEntropyGradient()
    {
        // On-policy (ρ = 1, no clipping active) with DAPO: ∇L = −(1/N) Σ_i A_i Σ_t ∇logπ(o_{i,t}). TrainingModel's CE
        // with target weights A_i on completion positions has ∇ = −(1/Σ_i A_i n_i) Σ_i A_i Σ_t ∇logπ, so
        // ∇L = (Σ_i A_i n_i / N) · ∇CE.
        var (config, policy) = Model();
        double[] advantages = [0.5, 1.5, 2.0];
        var batch = Batch(config, advantages);
        var updater = Updater(policy, null, new PolicyLossOptions { Aggregation = LossAggregation.Dapo }, micro: 2);
        updater.ComputeGradients(batch, TestContext.Current.CancellationToken);

        int t = batch.Max(s => s.Prompt.Length + s.Completion.Length), n = 0;
        double weighted = 0;
        var tokens = new int[batch.Length * t];
        var mask = new float[batch.Length * t];
        Array.Fill(tokens, Pad);
        for (var i = 0; i < batch.Length; i++)
        {
            var s = batch[i];
            s.Prompt.CopyTo(tokens, i * t);
            s.Completion.CopyTo(tokens, (i * t) + s.Prompt.Length);
            mask.AsSpan((i * t) + s.Prompt.Length, s.Completion.Length).Fill((float)advantages[i]);
            n += s.Completion.Length;
            weighted += advantages[i] * s.Completion.Length;
        }

        var model = new TrainingModel(policy);
        model.Forward(tokens, batch.Length, mask);
        var expected = new Gradients(config);
        model.Backward(expected);
        var factor = (float)(weighted / n);
        for (var i = 0; i < expected.Data.Length; i++)
        {
            expected.Data[i] *= factor;
        }

        Assert.True(TestModels.MaxAbs(expected.Data) > 1e-3f);
        TestModels.AssertClose(expected.Data, ((NativeGrpoEngine)updater.Engine).Gradients.Data, 1e-4, "GRPO gradient vs advantage-weighted CE gradient");
    }

    [Fact]
    public void Step_PositiveAndNegativeAdvantage_RaisesFirstLowersSecond()
    {
        var (config, policy) = Model();
        int[] prompt = [5, 9, 13];
        GrpoSequence[] batch =
        [
            new(prompt, [20, 21, 22, 23], [], 1.0),
            new(prompt, [30, 31, 32], [], -1.0),
        ];
        var updater = Updater(policy, null, new PolicyLossOptions(), micro: 2);
        var before = updater.CompletionLogProbs(batch).Select(x => x.Sum()).ToArray();

        for (var step = 0; step < 4; step++)
        {
            updater.Step(batch, TestContext.Current.CancellationToken);
        }

        var after = updater.CompletionLogProbs(batch).Select(x => x.Sum()).ToArray();
        Assert.True(after[0] > before[0] + 0.1, $"positive advantage: logp {before[0]:g6} -> {after[0]:g6}");
        Assert.True(after[1] < before[1] - 0.1, $"negative advantage: logp {before[1]:g6} -> {after[1]:g6}");
        Assert.Equal(config.VocabSize, policy.Config.VocabSize);
    }

    [Fact]
    public void ComputeGradients_SamplingRatioOutsideBounds_MasksSequenceWithoutGradient()
    {
        var (config, policy) = Model();
        var updater = Updater(policy, null, new PolicyLossOptions(), micro: 2);
        var batch = Batch(config, [1.0, -1.0]);
        var current = updater.CompletionLogProbs(batch);

        // Sequence 0 was "sampled" by a policy 2 nats per token less likely: ratio exp(2n) > 3 → masked.
        var far = batch.ToArray();
        far[0] = far[0] with { SamplingLogProbs = Array.ConvertAll(current[0], x => (float)(x - 2)) };
        var m = updater.ComputeGradients(far, TestContext.Current.CancellationToken);
        var masked = ((NativeGrpoEngine)updater.Engine).Gradients.Data.ToArray();
        Assert.Equal(0.5, m.OffPolicyMaskedFraction);

        // The same batch with sequence 0's advantage zeroed: the identical gradient (same DAPO normaliser).
        var zero = batch.ToArray();
        zero[0] = zero[0] with { Advantage = 0 };
        Assert.Equal(0, updater.ComputeGradients(zero, TestContext.Current.CancellationToken).OffPolicyMaskedFraction);
        Assert.True(TestModels.MaxAbs(masked) > 0, "the in-range sequence must still give a gradient");
        Assert.True(masked.AsSpan().SequenceEqual(((NativeGrpoEngine)updater.Engine).Gradients.Data), "a masked sequence contributed gradient");

        // And unmasked it does contribute (the check above can fail).
        updater.ComputeGradients(batch, TestContext.Current.CancellationToken);
        Assert.False(masked.AsSpan().SequenceEqual(((NativeGrpoEngine)updater.Engine).Gradients.Data));
    }

    [Fact]
    public void ComputeGradients_SamplingRatioInsideBounds_WeightsSequenceByRatio()
    {
        // One sequence: ρ_seq = exp(Σ_t (logp_θ − logp_sampling)) = exp(0.5) scales its whole gradient.
        var (config, policy) = Model();
        var updater = Updater(policy, null, new PolicyLossOptions(), micro: 1);
        GrpoSequence[] batch = [Batch(config, [1.0])[0]];
        updater.ComputeGradients(batch, TestContext.Current.CancellationToken);
        var onPolicy = ((NativeGrpoEngine)updater.Engine).Gradients.Data.ToArray();
        var lp = updater.CompletionLogProbs(batch)[0];
        var shift = 0.5 / lp.Length;
        GrpoSequence[] shifted = [batch[0] with { SamplingLogProbs = Array.ConvertAll(lp, x => (float)(x - shift)) }];

        var m = updater.ComputeGradients(shifted, TestContext.Current.CancellationToken);

        Assert.Equal(0, m.OffPolicyMaskedFraction);
        var w = (float)Math.Exp(0.5);
        TestModels.AssertClose(Array.ConvertAll(onPolicy, x => x * w), ((NativeGrpoEngine)updater.Engine).Gradients.Data, 1e-4, "off-policy weighted gradient");
    }

    [Fact]
    public void Step_ReferenceIsCopyOfPolicy_KlZeroFirstThenPositive()
    {
        var (config, policy) = Model();
        var reference = new ModelWeights(config, policy.Data.ToArray());
        var loss = new PolicyLossOptions { Beta = 0.1 };
        var updater = Updater(policy, reference, loss, micro: 2);
        var batch = Batch(config, [1.0, -1.0, 0.5]);

        // k3 and its derivative vanish at logp_θ = logp_ref, so the first gradient is the β = 0 one.
        var (_, twin) = Model();
        var plain = Updater(twin, null, new PolicyLossOptions(), micro: 2);
        plain.ComputeGradients(batch, TestContext.Current.CancellationToken);
        var first = updater.Step(batch, TestContext.Current.CancellationToken);
        Assert.True(Math.Abs(first.KlMean) < 1e-9, $"KL to an identical reference {first.KlMean}");
        TestModels.AssertClose(((NativeGrpoEngine)plain.Engine).Gradients.Data, ((NativeGrpoEngine)updater.Engine).Gradients.Data, 1e-6, "β > 0 gradient at the reference");

        var second = updater.Step(batch, TestContext.Current.CancellationToken);
        Assert.True(second.KlMean > 1e-8, $"KL after a step {second.KlMean}");
        Assert.True(double.IsNaN(plain.ComputeGradients(batch, TestContext.Current.CancellationToken).KlMean));
    }

    [Fact]
    public void Step_RoutingBiasSpeed_MovesBiasAgainstTheBatchLoad()
    {
        var (config, policy) = Model();
        const float gamma = 0.01f;
        var updater = Updater(policy, null, new PolicyLossOptions(), micro: 1, gamma);
        var name = "model.layers.1.mlp.gate.e_score_correction_bias";
        var before = policy.Get(name).ToArray();

        var m = updater.Step(Batch(config, [1.0, -1.0, 0.5]), TestContext.Current.CancellationToken);

        // b_e += γ·sign(mean − load_e) over the whole batch's load (reference §9.1), not the last micro-batch's.
        var load = m.ExpertLoad[1];
        var mean = (double)load.Sum() / load.Length;
        var after = policy.Get(name);
        var moved = 0;
        for (var e = 0; e < load.Length; e++)
        {
            Assert.Equal(before[e] + (gamma * Math.Sign(mean - load[e])), after[e], 1e-6f);
            moved += after[e] != before[e] ? 1 : 0;
        }

        Assert.True(moved > 0);
    }

    [Fact]
    public void Constructor_BetaWithoutReference_Throws()
    {
        var (_, policy) = Model();
        Assert.Throws<ArgumentException>(() => Updater(policy, null, new PolicyLossOptions { Beta = 0.1 }, micro: 1));
        Assert.NotNull(new GrpoUpdaterOptions { MicroBatchSequences = 0 }.Validate());
        Assert.Null(new GrpoUpdaterOptions().Validate());
    }

    private static (DeepSeekV3Config Config, ModelWeights Weights) Model()
    {
        var config = TestModels.Micro();
        return (config, TestModels.Weights(config, seed: 21));
    }

    private static GrpoUpdater Updater(ModelWeights policy, ModelWeights? reference, PolicyLossOptions loss, int micro, float gamma = 0)
    {
        var optimizer = new AdamW(policy.Specs, new AdamWOptions
        {
            WeightDecay = 0,
            MaxGradNorm = 0,
            Schedule = new LearningRateScheduleOptions { PeakLearningRate = 1e-2, MinLearningRate = 1e-2, WarmupSteps = 0, TotalSteps = 10 },
        });
        return NativeGrpoEngine.Updater(policy, reference, optimizer, new GrpoUpdaterOptions { Loss = loss, MicroBatchSequences = micro, PadToken = Pad, Threads = 1, RoutingBiasSpeed = gamma });
    }

    /// <summary>Sequences of different prompt and completion lengths (fixed seed), one per advantage.</summary>
    private static GrpoSequence[] Batch(DeepSeekV3Config config, double[] advantages)
    {
        var batch = new GrpoSequence[advantages.Length];
        for (var i = 0; i < batch.Length; i++)
        {
            int p = 2 + (i % 3), c = 3 + ((2 * i) % 5);
            var tokens = TestModels.Tokens(p + c, config.VocabSize, 100 + i);
            batch[i] = new GrpoSequence(tokens[..p], tokens[p..], [], advantages[i]);
        }

        return batch;
    }
}
