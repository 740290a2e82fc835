using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Tests.Checkpoints;

namespace DeepSeekRL.Model.Tests.Optimization;

public sealed class AdamWTests
{
    private static AdamWOptions Constant(double lr, double weightDecay = 0.1, double maxGradNorm = 0, bool decayVectors = false) => new()
    {
        Beta1 = 0.9,
        Beta2 = 0.95,
        Epsilon = 1e-8,
        WeightDecay = weightDecay,
        MaxGradNorm = maxGradNorm,
        DecayVectors = decayVectors,
        Schedule = new LearningRateScheduleOptions { PeakLearningRate = lr, MinLearningRate = lr, WarmupSteps = 0, TotalSteps = 0 },
    };

    [Fact]
    public void Step_ThreeElementsTwoSteps_MatchesHandComputation()
    {
        var adam = new AdamW([new ParameterSpec("w", [1, 3], ParameterInit.Normal)], Constant(0.01));
        float[] p = [1f, -2f, 0.5f];

        var r1 = adam.Step(p, [0.1f, -0.2f, 0.3f]);

        // Step 1: m = 0.1 g, v = 0.05 g², bias corrections 0.1 and 0.05 give m̂ = g, √v̂ = |g|; decay 1 − 0.01·0.1.
        double[] expected1 = [(1 * 0.999) - (0.01 * 0.1 / (0.1 + 1e-8)), (-2 * 0.999) + (0.01 * 0.2 / (0.2 + 1e-8)), (0.5 * 0.999) - (0.01 * 0.3 / (0.3 + 1e-8))];
        AssertClose(expected1, p, 1e-6);
        AssertClose([0.01, -0.02, 0.03], adam.FirstMoment, 1e-8);
        AssertClose([0.0005, 0.002, 0.0045], adam.SecondMoment, 1e-9);
        Assert.Equal(new AdamWStepResult(1, 0.01, Math.Sqrt(0.14), 1), r1 with { GradNorm = Math.Sqrt(0.14) });
        Assert.Equal(Math.Sqrt(0.14), r1.GradNorm, 1e-7);

        adam.Step(p, [0.2f, 0.2f, -0.1f]);

        // Step 2: m = 0.9 m + 0.1 g = [0.029, 0.002, 0.017]; v = 0.95 v + 0.05 g² = [0.002475, 0.0039, 0.004775];
        // bias corrections 1 − 0.9² = 0.19 and 1 − 0.95² = 0.0975.
        double[] m2 = [0.029, 0.002, 0.017], v2 = [0.002475, 0.0039, 0.004775];
        var expected2 = new double[3];
        for (var i = 0; i < 3; i++)
        {
            expected2[i] = (expected1[i] * 0.999) - (0.01 * (m2[i] / 0.19) / (Math.Sqrt(v2[i] / 0.0975) + 1e-8));
        }

        AssertClose(expected2, p, 1e-6);
        AssertClose(m2, adam.FirstMoment, 1e-8);
        AssertClose(v2, adam.SecondMoment, 1e-8);
        Assert.Equal(2, adam.StepCount);
    }

    [Fact]
    public void Step_NonTrainableSlice_UnchangedAndNoMoments()
    {
        var specs = new[] { new ParameterSpec("w", [2, 2], ParameterInit.Normal), new ParameterSpec("mlp.gate.e_score_correction_bias", [2], ParameterInit.Zeros, Trainable: false) };
        var adam = new AdamW(specs, Constant(0.1, maxGradNorm: 1));
        float[] p = [1, 2, 3, 4, 0.25f, -0.5f];
        float[] g = [0.1f, 0.1f, 0.1f, 0.1f, 100f, 100f];

        var result = adam.Step(p, g);

        Assert.Equal(0.25f, p[4]);
        Assert.Equal(-0.5f, p[5]);
        Assert.Equal(0f, adam.FirstMoment[4]);
        Assert.Equal(0f, adam.SecondMoment[5]);
        Assert.NotEqual(1f, p[0]);

        // The frozen slice's (bogus) gradient does not enter the clipping norm either.
        Assert.Equal(0.2, result.GradNorm, 1e-7);
        Assert.Equal(1, result.ClipFactor);
    }

    [Theory]
    [InlineData(false, 1.0)]
    [InlineData(true, 1 - (0.5 * 0.2))]
    public void Step_VectorWithZeroGradient_DecayedOnlyWithDecayVectors(bool decayVectors, double factor)
    {
        var specs = new[] { new ParameterSpec("norm.weight", [2], ParameterInit.Ones), new ParameterSpec("w", [1, 2], ParameterInit.Normal) };
        var adam = new AdamW(specs, Constant(0.5, weightDecay: 0.2, decayVectors: decayVectors));
        float[] p = [2f, -4f, 2f, -4f];

        adam.Step(p, new float[4]);

        // A zero gradient leaves only the decoupled decay p·(1 − lr λ); matrices always decay.
        Assert.Equal((float)(2 * factor), p[0]);
        Assert.Equal((float)(-4 * factor), p[1]);
        Assert.Equal((float)(2 * 0.9), p[2]);
        Assert.Equal((float)(-4 * 0.9), p[3]);
    }

    [Fact]
    public void Step_GradientAboveMaxNorm_ClippedByGlobalNorm()
    {
        var specs = new[] { new ParameterSpec("a", [1, 1], ParameterInit.Normal), new ParameterSpec("b", [1], ParameterInit.Ones) };
        var adam = new AdamW(specs, Constant(0.01, maxGradNorm: 1));

        var result = adam.Step(new float[2], [3f, 4f]);

        // ‖g‖ = 5 across both tensors; PyTorch's factor max_norm / (norm + 1e-6).
        var factor = 1 / (5 + 1e-6);
        Assert.Equal(5, result.GradNorm, 1e-12);
        Assert.Equal(factor, result.ClipFactor, 1e-15);
        AssertClose([0.1 * 3 * factor, 0.1 * 4 * factor], adam.FirstMoment, 1e-7);
    }

    [Fact]
    public void ClipByGlobalNorm_AboveAndBelow_ScalesOnlyAbove()
    {
        float[] above = [3f, 0f, 4f];
        Assert.Equal(5, GradientClipping.ClipByGlobalNorm(above, 2.5), 1e-12);
        AssertClose([3 * 2.5 / (5 + 1e-6), 0, 4 * 2.5 / (5 + 1e-6)], above, 1e-7);

        float[] below = [0.3f, 0.4f];
        Assert.Equal(0.5, GradientClipping.ClipByGlobalNorm(below, 1), 1e-7);
        Assert.Equal([0.3f, 0.4f], below);

        float[] off = [30f, 40f];
        GradientClipping.ClipByGlobalNorm(off, 0);
        Assert.Equal([30f, 40f], off);
    }

    [Fact]
    public void GlobalNorm_LengthsOneTo5000_MatchesDoubleReference()
    {
        var random = new Random(3);
        foreach (var n in new[] { 1, 2, 7, 31, 256, 4095, 4096, 4097, 5000 })
        {
            var g = new float[n];
            double reference = 0;
            for (var i = 0; i < n; i++)
            {
                g[i] = (float)((random.NextDouble() * 2) - 1);
                reference += (double)g[i] * g[i];
            }

            Assert.Equal(Math.Sqrt(reference), GradientClipping.GlobalNorm(g), 1e-6 * Math.Sqrt(reference));
        }
    }

    [Fact]
    public void Step_VectorAndScalarPaths_AgreeBitForBit()
    {
        // One 37-element tensor (SIMD body + tail) against 37 one-element tensors (scalar path only).
        var random = new Random(5);
        var wide = new AdamW([new ParameterSpec("w", [1, 37], ParameterInit.Normal)], Constant(0.003));
        var narrow = new AdamW(Enumerable.Range(0, 37).Select(i => new ParameterSpec($"w{i}", [1, 1], ParameterInit.Normal)).ToArray(), Constant(0.003));
        var p1 = Enumerable.Range(0, 37).Select(_ => (float)random.NextDouble()).ToArray();
        var p2 = (float[])p1.Clone();
        for (var step = 0; step < 3; step++)
        {
            var g = Enumerable.Range(0, 37).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
            wide.Step(p1, g);
            narrow.Step(p2, g);
        }

        Assert.Equal(p1, p2);
    }

    [Fact]
    public void SaveLoad_InterruptedRun_BitForBitEqualToUninterrupted()
    {
        const int total = 12, split = 5;
        var config = DeepSeekRL.Model.Tests.Inference.TestModels.Micro();
        var options = new AdamWOptions
        {
            MaxGradNorm = 0.5,
            Schedule = new LearningRateScheduleOptions { PeakLearningRate = 1e-2, MinLearningRate = 1e-3, WarmupSteps = 3, TotalSteps = 10 },
        };

        var straight = ModelInit.Create(config, 7, new ModelInitOptions());
        var straightAdam = new AdamW(straight, options);
        for (var step = 1; step <= total; step++)
        {
            TrainStep(straight, straightAdam, step);
        }

        var first = ModelInit.Create(config, 7, new ModelInitOptions());
        var firstAdam = new AdamW(first, options);
        for (var step = 1; step <= split; step++)
        {
            TrainStep(first, firstAdam, step);
        }

        using var dir = new TempDirectory();
        firstAdam.Metadata["data_cursor"] = "1234";
        ModelCheckpoint.Save(first, dir.Path);
        firstAdam.Save(dir.Path);

        var resumed = ModelCheckpoint.Load(dir.Path);
        var resumedAdam = AdamW.Load(dir.Path, resumed.Specs, options);
        Assert.Equal(split, resumedAdam.StepCount);
        Assert.Equal("1234", resumedAdam.Metadata["data_cursor"]);
        Assert.Equal(firstAdam.FirstMoment, resumedAdam.FirstMoment);
        for (var step = split + 1; step <= total; step++)
        {
            TrainStep(resumed, resumedAdam, step);
        }

        Assert.Equal(straightAdam.StepCount, resumedAdam.StepCount);
        Assert.True(straight.Data.AsSpan().SequenceEqual(resumed.Data), "parameters differ after resume");
        Assert.True(straightAdam.SecondMoment.AsSpan().SequenceEqual(resumedAdam.SecondMoment), "second moments differ after resume");
        Assert.NotEqual(ModelInit.Create(config, 7, new ModelInitOptions()).Data, straight.Data);
    }

    [Fact]
    public void Load_WrongLayout_NamesTheTensor()
    {
        var specs = new[] { new ParameterSpec("w", [2, 2], ParameterInit.Normal) };
        using var dir = new TempDirectory();
        new AdamW(specs, new AdamWOptions()).Save(dir.Path);

        var ex = Assert.Throws<SafetensorsException>(() => AdamW.Load(dir.Path, [new ParameterSpec("w", [4, 1], ParameterInit.Normal)], new AdamWOptions()));
        Assert.Contains("exp_avg.w", ex.Message, StringComparison.Ordinal);
        ex = Assert.Throws<SafetensorsException>(() => AdamW.Load(dir.Path, [new ParameterSpec("v", [2, 2], ParameterInit.Normal)], new AdamWOptions()));
        Assert.Contains("exp_avg.v", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1.0, 0.95, 0.1, 1.0, "beta1 = 1")]
    [InlineData(0.9, -0.1, 0.1, 1.0, "beta2 = -0.1")]
    [InlineData(0.9, 0.95, -1, 1.0, "weight_decay = -1")]
    [InlineData(0.9, 0.95, 0.1, -2, "max_grad_norm = -2")]
    public void Validate_BadValue_NamesOptionAndValue(double beta1, double beta2, double weightDecay, double maxGradNorm, string message)
    {
        var options = new AdamWOptions { Beta1 = beta1, Beta2 = beta2, WeightDecay = weightDecay, MaxGradNorm = maxGradNorm };
        Assert.StartsWith(message, options.Validate(), StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new AdamW([new ParameterSpec("w", [1], ParameterInit.Ones)], options));
    }

    // A deterministic toy objective over the whole model block: 0.5 Σ a_i (p_i − c_i)² plus step-seeded noise, and the
    // aux-free bias update from a fake load, so frozen slices move by rule and trainable ones by AdamW.
    private static void TrainStep(ParameterStore store, AdamW adam, int step)
    {
        var p = store.Data;
        var g = new float[p.Length];
        var noise = new Random(1000 + step);
        for (var i = 0; i < p.Length; i++)
        {
            var a = 0.5f + (i % 7 * 0.25f);
            var c = (i % 11 * 0.01f) - 0.05f;
            g[i] = (a * (p[i] - c)) + (float)(noise.NextDouble() - 0.5);
        }

        for (var s = 0; s < store.Specs.Count; s++)
        {
            if (!store.Specs[s].Trainable)
            {
                var bias = store[s];
                g.AsSpan((int)store.Offsets[s], bias.Length).Clear();
                var load = new float[bias.Length];
                for (var e = 0; e < load.Length; e++)
                {
                    load[e] = (e * 3 + step) % 5;
                }

                ExpertLoadBalancing.UpdateBias(load, bias, 0.001f);
            }
        }

        adam.Step(p, g);
    }

    private static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"[{i}]: expected {expected[i]:R}, got {actual[i]:R}");
        }
    }
}
