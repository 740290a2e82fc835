using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Kernels;
using DeepSeekRL.Model.Tests.Inference;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Tests.Training;

/// <summary>
/// Finite-difference checks of <see cref="TrainingModel.Backward"/>: the float backward against central differences
/// of the double reference loss (<see cref="ReferenceLoss"/>) on the micro config (reference §15.2), for sampled
/// elements of EVERY parameter tensor, with routing asserted frozen between ±ε.
/// </summary>
public sealed class TrainingModelTests(ITestOutputHelper output)
{
    private static string MicroConfig => Path.Combine(AppContext.BaseDirectory, "Data", "golden", "micro", "config.json");

    public static TheoryData<string> Variants() => ["micro", "micro-qproj-halves-yarn", "micro-noshared-nomask", "micro-unnormalised-ungrouped", "micro-balance"];

    [Theory]
    [MemberData(nameof(Variants))]
    public void Backward_EveryParameter_MatchesDoubleFiniteDifferences(string variant)
    {
        var (config, error) = DeepSeekV3Config.Load(MicroConfig);
        Assert.True(config is not null, error);
        config = variant switch
        {
            "micro" => config,
            "micro-qproj-halves-yarn" => TestModels.Micro(yarn: true, qLora: false, interleave: false),
            "micro-noshared-nomask" => TestModels.Micro(shared: 0),
            "micro-balance" => config,
            _ => TestModels.Micro() with { NormTopkProb = false, NGroup = 1, TopkGroup = 1 },
        };
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        int batch = 2, t = 7;
        var tokens = TestModels.Tokens(batch * t, config.VocabSize, 3);
        float[]? mask = variant.EndsWith("nomask", StringComparison.Ordinal) ? null : Mask(batch * t);
        const float mtpWeight = 0.3f;
        var alpha = variant == "micro-balance" ? 0.5f : 0f; // large, so its gradient is visible in every gate

        var model = new TrainingModel(weights);
        var loss = model.Forward(tokens, batch, mask, mtpWeight, alpha);
        var grads = new Gradients(config);
        model.Backward(grads);

        var reference = new ReferenceLoss(weights);
        var refLoss = reference.Loss(tokens, batch, mask, mtpWeight, alpha);
        Assert.True(Math.Abs(loss - refLoss) < 1e-4 * Math.Abs(refLoss), $"loss {loss} vs double reference {refLoss}");
        var baseSelection = reference.Selections.ToArray();
        foreach (var (layer, chosen) in reference.ByLayer)
        {
            // The float trainer and the double reference route every token the same way (no near-ties here).
            Assert.Equal(chosen, model.Selection(layer));
        }

        Assert.Equal(config.NumHiddenLayers + 1 - config.FirstKDenseReplace, reference.ByLayer.Count);

        var rng = new Random(5);
        double worstAll = 0;
        var worstName = "";
        var checkedTensors = 0;
        foreach (var spec in weights.Specs)
        {
            var slice = grads.Get(spec.Name);
            if (!spec.Trainable)
            {
                Assert.True(slice.IndexOfAnyExcept(0f) < 0, $"{spec.Name} is not trainable but got a gradient");
                continue;
            }

            var offset = weights.Offset(spec.Name);
            var scale = TestModels.MaxAbs(slice);
            double worst = 0;
            for (var s = 0; s < 4; s++)
            {
                // Sample the largest element once, the rest at random.
                var i = s == 0 ? ArgMaxAbs(slice) : rng.Next(slice.Length);
                var fd = CentralDifference(weights, reference, offset + i, tokens, batch, mask, mtpWeight, alpha, baseSelection, spec.Name);
                var err = Math.Abs(fd - slice[i]) / Math.Max(Math.Max(Math.Abs(fd), Math.Abs(slice[i])), 1e-2 * scale + 1e-6);
                worst = Math.Max(worst, err);
            }

            output.WriteLine($"{spec.Name,-52} |g|max {scale,10:g4}  max rel err {worst:e2}");
            if (worst > worstAll)
            {
                (worstAll, worstName) = (worst, spec.Name);
            }

            // Only a routed expert that no token chose may have an all-zero gradient (its FD is then checked to be 0).
            Assert.True(scale > 0 || spec.Name.Contains(".mlp.experts.", StringComparison.Ordinal), $"{spec.Name}: gradient is all zero");
            Assert.True(worst < 2e-3, $"{spec.Name}: backward vs finite differences, max relative error {worst:e3}");
            checkedTensors++;
        }

        Assert.True(alpha == 0 || model.BalanceLoss > 0.1 * alpha, $"balance loss {model.BalanceLoss}");
        output.WriteLine($"{variant}: loss {loss:f6} (reference {refLoss:f6}), balance {model.BalanceLoss:f6}; {checkedTensors} tensors; worst {worstName} {worstAll:e3}");
    }

    [Fact]
    public void Backward_Twice_AccumulatesAndClearZeroes()
    {
        var config = TestModels.Micro();
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        var tokens = TestModels.Tokens(2 * 6, config.VocabSize, 9);
        var model = new TrainingModel(weights);
        model.Forward(tokens, 2, default, 0.3f);
        var grads = new Gradients(config);
        model.Backward(grads);
        var once = (float[])grads.Data.Clone();
        model.Backward(grads);

        // Equal up to rounding: a gradient summed from several contributions is re-associated by the second pass.
        var scale = TestModels.MaxAbs(once);
        for (var i = 0; i < once.Length; i++)
        {
            Assert.Equal(2 * once[i], grads.Data[i], 1e-5 * scale);
        }

        grads.Clear();
        Assert.True(grads.Data.AsSpan().IndexOfAnyExcept(0f) < 0);
        Assert.Equal(grads.Offset("lm_head.weight"), weights.Offset("lm_head.weight"));
    }

    [Fact]
    public void BackwardFromLogits_CrossEntropyGradient_EqualsBackward()
    {
        var config = TestModels.Micro();
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        int batch = 2, t = 6, v = config.VocabSize;
        var tokens = TestModels.Tokens(batch * t, v, 9);
        var model = new TrainingModel(weights);
        model.Forward(tokens, batch);
        var expected = new Gradients(config);
        model.Backward(expected);

        // dCE/dlogits by hand: (softmax − onehot) / count on rows with a target; -mean(TokenLogProbs) is the loss.
        var logProbs = model.TokenLogProbs();
        Assert.Equal(model.MainLoss, -logProbs.Average(), 6);
        var dLogits = model.Logits.ToArray();
        for (var r = 0; r < batch * t; r++)
        {
            var row = dLogits.AsSpan(r * v, v);
            if (r % t == t - 1)
            {
                row.Clear();
                continue;
            }

            Ops.MaskedSoftmax(row, v);
            row[tokens[r + 1]] -= 1;
            foreach (ref var x in row)
            {
                x /= batch * (t - 1);
            }
        }

        var actual = new Gradients(config);
        model.BackwardFromLogits(actual, dLogits);
        TestModels.AssertClose(expected.Data, actual.Data, 1e-6, "BackwardFromLogits");
        Assert.Equal(batch * t * config.NumExpertsPerTok, model.ExpertLoad(1).Sum());
        Assert.Empty(model.ExpertLoad(0));
    }

    [Fact]
    public void UpdateRoutingBias_AfterForward_MovesOverloadedDownAndUnderloadedUp()
    {
        var config = TestModels.Micro();
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        var model = new TrainingModel(weights);
        model.Forward(TestModels.Tokens(2 * 8, config.VocabSize, 2), 2, default, 0.3f);
        var layers = new[] { 1, 2, config.NumHiddenLayers };
        var before = layers.Select(l => weights.Get($"model.layers.{l}.mlp.gate.e_score_correction_bias").ToArray()).ToArray();
        model.UpdateRoutingBias(0.01f);
        for (var i = 0; i < layers.Length; i++)
        {
            var load = model.ExpertLoad(layers[i]);
            var mean = load.Average();
            var after = weights.Get($"model.layers.{layers[i]}.mlp.gate.e_score_correction_bias");
            for (var e = 0; e < load.Length; e++)
            {
                Assert.Equal(before[i][e] + 0.01f * Math.Sign(mean - load[e]), after[e]);
            }

            Assert.Contains(load, x => x != mean); // the check is not vacuous
        }
    }

    [Fact]
    public void Step_RepeatedWithRecycledBuffers_IsBitIdentical()
    {
        var config = TestModels.Micro();
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        var model = new TrainingModel(weights);
        var tokens = TestModels.Tokens(3 * 7, config.VocabSize, 5);
        var first = new Gradients(config);
        var loss = model.Forward(tokens, 3, default, 0.3f, 0.01f);
        model.Backward(first);

        // Another shape in between, so recycled buffers hold stale values of both shapes.
        model.Forward(TestModels.Tokens(2 * 5, config.VocabSize, 6), 2, default, 0.3f);
        model.Backward(new Gradients(config));

        var second = new Gradients(config);
        Assert.Equal(loss, model.Forward(tokens, 3, default, 0.3f, 0.01f));
        model.Backward(second);
        Assert.True(first.Data.AsSpan().SequenceEqual(second.Data));
    }

    [Fact]
    public void Backward_ReleasesEachLayersScratch_SoItsMemoryDoesNotGrowWithTheLayers()
    {
        // Issue 19 (a potato's memory): a layer's backward scratch goes back to the pool once its backward is done,
        // so the layer below reuses it: what a backward adds to the forward's activations is one layer's scratch,
        // whatever the depth (it was every layer's).
        long BackwardFloats(int layers)
        {
            var config = TestModels.Micro() with { NumHiddenLayers = layers };
            var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
            var model = new TrainingModel(weights);
            model.Forward(TestModels.Tokens(3 * 24, config.VocabSize, 4), 3, default, 0.3f);
            var forward = model.HeldFloats;
            model.Backward(new Gradients(config));
            return model.HeldFloats - forward;
        }

        var two = BackwardFloats(2);
        var six = BackwardFloats(6);
        Assert.True(six < two * 1.2, $"backward floats with 2 layers {two}, with 6 layers {six}");
    }

    [Fact]
    public void Steps_OfNearbyOrSmallerShapes_ShareTheirBuffersAndGiveTheFreshModelsGradients()
    {
        var config = TestModels.Micro();
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        var model = new TrainingModel(weights);
        model.Forward(TestModels.Tokens(4 * 64, config.VocabSize, 1), 4, default, 0.3f);
        model.Backward(new Gradients(config));
        var held = model.HeldFloats;

        // One token shorter, then a third of the length with fewer sequences: the buffers come from the longer step's
        // (their own size class, or a larger one), so the pool hardly grows (the best fit can leave a few small
        // requests without a free buffer), and the stale values in the recycled buffers change nothing.
        foreach (var (b, t) in new[] { (4, 63), (3, 21) })
        {
            StepMatchesAFreshModel(model, weights, b, t);
            Assert.InRange(model.HeldFloats, held, held * 1.02);
        }
    }

    [Fact]
    public void Reserve_TheLargestShape_LaterStepsOfThatShapeOrSmallerAllocateLittleAndKeepTheirResults()
    {
        var config = TestModels.Micro();
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        var before = (float[])weights.Data.Clone();
        var model = new TrainingModel(weights);
        model.Reserve(4, 40, 0.3f);
        var reserved = model.HeldFloats;
        Assert.True(weights.Data.AsSpan().SequenceEqual(before), "reserving changes no weight");

        // Growing batches, as an SFT run meets them: each would allocate a new largest set beside the last.
        foreach (var (b, t) in new[] { (2, 12), (3, 25), (4, 33), (4, 40) })
        {
            StepMatchesAFreshModel(model, weights, b, t);
            Assert.InRange(model.HeldFloats, reserved, reserved * 1.05);
        }
    }

    // One step of B sequences of T tokens on a model whose pool holds other steps' stale buffers: the loss and every
    // gradient equal a fresh model's, bit for bit.
    [Theory]
    [InlineData(true, 1)]
    [InlineData(false, 1)]
    [InlineData(true, 0)]
    public void Step_AfterEveryHeldBufferIsNaN_GivesTheFreshModelsLossAndGradients(bool qLora, int shared)
    {
        // The step buffers are not zeroed when their producer writes them in full (products with beta 0, copies,
        // softmax rows): a buffer read before it is written would carry the NaN into the loss or a gradient.
        var config = TestModels.Micro(qLora: qLora, shared: shared);
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        var model = new TrainingModel(weights);
        model.Forward(TestModels.Tokens(4 * 24, config.VocabSize, 1), 4, default, 0.3f, 0.01f);
        model.Backward(new Gradients(config));
        model.FillHeldBuffers(float.NaN);

        // Masked targets (rows without a target write no softmax) and the balance loss, at a smaller shape.
        var (b, t) = (3, 17);
        var tokens = TestModels.Tokens(b * t, config.VocabSize, 2);
        var mask = Enumerable.Range(0, b * t).Select(i => i % t < 5 || i % 7 == 3 ? 0f : 1f).ToArray();
        var loss = model.Forward(tokens, b, mask, 0.3f, 0.01f);
        var grads = new Gradients(config);
        model.Backward(grads);
        var fresh = new TrainingModel(weights);
        Assert.Equal(fresh.Forward(tokens, b, mask, 0.3f, 0.01f), loss);
        var expected = new Gradients(config);
        fresh.Backward(expected);
        Assert.False(double.IsNaN(loss));
        Assert.True(expected.Data.AsSpan().SequenceEqual(grads.Data), $"q_lora {qLora}, shared {shared}");
    }

    private static void StepMatchesAFreshModel(TrainingModel model, ModelWeights weights, int b, int t)
    {
        var tokens = TestModels.Tokens(b * t, weights.Config.VocabSize, t);
        var loss = model.Forward(tokens, b, default, 0.3f);
        var grads = new Gradients(weights.Config);
        model.Backward(grads);
        var fresh = new TrainingModel(weights);
        Assert.Equal(fresh.Forward(tokens, b, default, 0.3f), loss);
        var expected = new Gradients(weights.Config);
        fresh.Backward(expected);
        Assert.True(expected.Data.AsSpan().SequenceEqual(grads.Data), $"B={b}, T={t}");
    }

    [Fact]
    public void ReleaseBuffers_AfterARun_HoldsNothingAndTheNextStepIsUnchanged()
    {
        var config = TestModels.Micro();
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        var model = new TrainingModel(weights);
        var tokens = TestModels.Tokens(2 * 9, config.VocabSize, 3);
        var loss = model.Forward(tokens, 2, default, 0.3f);
        var before = new Gradients(config);
        model.Backward(before);
        Assert.True(model.HeldFloats > 0);

        model.ReleaseBuffers();
        Assert.Equal(0, model.HeldFloats);
        Assert.True(model.Logits.IsEmpty);
        Assert.Throws<InvalidOperationException>(() => model.Backward(new Gradients(config)));

        var after = new Gradients(config);
        Assert.Equal(loss, model.Forward(tokens, 2, default, 0.3f));
        model.Backward(after);
        Assert.True(before.Data.AsSpan().SequenceEqual(after.Data));
    }

    [Theory]
    [InlineData(1, 64)]
    [InlineData(1024, 1024)]
    [InlineData(1025, 1152)]
    [InlineData(4096, 4096)]
    [InlineData(4097, 4608)]
    [InlineData(1_000_000, 1_048_576)]
    public void SizeClass_RoundsUpByAtMostAnEighth(int length, int expected)
    {
        Assert.Equal(expected, TrainingModel.SizeClass(length));
        for (var x = 1; x < 100_000; x += 7)
        {
            var c = TrainingModel.SizeClass(x);
            Assert.InRange(c, x, Math.Max(x + 63, x + (x / 8)));
        }
    }

    [Fact]
    public void Steps_OfEverChangingShapes_KeepTheBufferPoolBounded()
    {
        var config = TestModels.Micro();
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        var model = new TrainingModel(weights);
        var pooled = new List<long>();

        // Batches padded to their longest sequence: a new length every step, as in SFT (longest first).
        for (var length = 42; length > 2; length--)
        {
            model.Forward(TestModels.Tokens(2 * length, config.VocabSize, length), 2, default, 0.3f);
            model.Backward(new Gradients(config));
            pooled.Add(model.HeldFloats);
        }

        // A pool of every shape ever seen would only grow; this one settles at about the largest step's buffers (the
        // first here), which the smaller steps reuse.
        Assert.True(pooled.Max() <= pooled[0] * 1.5, $"held floats after the first step {pooled[0]}, at most {pooled.Max()}");

        // Steps of one shape still reuse their buffers: the pool does not grow.
        var tokens = TestModels.Tokens(2 * 20, config.VocabSize, 99);
        var counts = new List<long>();
        for (var i = 0; i < 20; i++)
        {
            model.Forward(tokens, 2, default, 0.3f);
            model.Backward(new Gradients(config));
            counts.Add(model.HeldFloats);
        }

        Assert.All(counts[10..], c => Assert.Equal(counts[10], c));
        Assert.True(counts[10] > 0, "the step's own buffers are held");
    }

    [Fact]
    public void Forward_MainLoss_MatchesInferenceEngineLogits()
    {
        var config = TestModels.Micro();
        var weights = new ModelWeights(config, ModelInit.Create(config, 7, new ModelInitOptions { Std = 0.3, BiasStd = 0.3 }).Data);
        int batch = 3, t = 9, v = config.VocabSize;
        var tokens = TestModels.Tokens(batch * t, v, 4);
        var engine = new Transformer(weights);
        double main = 0, mtp = 0;
        for (var b = 0; b < batch; b++)
        {
            var seq = tokens[(b * t)..((b + 1) * t)];
            var logits = engine.ForwardSequence(seq);
            var mtpLogits = engine.MtpSequence(seq);
            for (var i = 0; i + 1 < t; i++)
            {
                main -= Ops.LogSoftmaxAt(logits.AsSpan(i * v, v), seq[i + 1]);
                if (i + 2 < t)
                {
                    mtp -= Ops.LogSoftmaxAt(mtpLogits.AsSpan(i * v, v), seq[i + 2]);
                }
            }
        }

        main /= batch * (t - 1);
        mtp /= batch * (t - 2);
        var model = new TrainingModel(weights);
        var loss = model.Forward(tokens, batch, default, 0.5f);
        Assert.Equal(main, model.MainLoss, 4);
        Assert.Equal(mtp, model.MtpLoss, 4);
        Assert.Equal(main + 0.5 * mtp, loss, 4);
    }

    private static double CentralDifference(ModelWeights weights, ReferenceLoss reference, int index, int[] tokens, int batch, float[]? mask, double mtpWeight, double alpha, int[] selection, string name)
    {
        var data = weights.Data;
        var original = data[index];
        var eps = 1e-3f * Math.Max(1f, Math.Abs(original));
        float plus = original + eps, minus = original - eps;
        data[index] = plus;
        var lp = reference.Loss(tokens, batch, mask, mtpWeight, alpha);
        Assert.True(reference.Selections.SequenceEqual(selection), $"{name}[{index}]: routing changed at +eps");
        data[index] = minus;
        var lm = reference.Loss(tokens, batch, mask, mtpWeight, alpha);
        Assert.True(reference.Selections.SequenceEqual(selection), $"{name}[{index}]: routing changed at -eps");
        data[index] = original;
        return (lp - lm) / ((double)plus - minus);
    }

    private static float[] Mask(int n)
    {
        // SFT-style: some targets are masked out, one is down-weighted.
        var m = new float[n];
        for (var i = 0; i < n; i++)
        {
            m[i] = i % 5 == 2 ? 0f : i % 7 == 3 ? 0.5f : 1f;
        }

        return m;
    }

    private static int ArgMaxAbs(ReadOnlySpan<float> x)
    {
        var best = 0;
        for (var i = 1; i < x.Length; i++)
        {
            if (Math.Abs(x[i]) > Math.Abs(x[best]))
            {
                best = i;
            }
        }

        return best;
    }
}
