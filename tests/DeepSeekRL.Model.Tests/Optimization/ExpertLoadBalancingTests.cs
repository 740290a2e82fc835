using DeepSeekRL.Model.Optimization;

namespace DeepSeekRL.Model.Tests.Optimization;

public sealed class ExpertLoadBalancingTests
{
    [Fact]
    public void UpdateBias_HandLoad_OverloadedDownUnderloadedUpEqualUnchanged()
    {
        // Loads 10, 2, 6, 6: mean 6, so expert 0 is overloaded, expert 1 underloaded, 2 and 3 exactly balanced.
        float[] bias = [0.5f, -0.25f, 0.125f, 0f];
        ExpertLoadBalancing.UpdateBias([10, 2, 6, 6], bias, 0.01f);

        Assert.Equal([0.5f - 0.01f, -0.25f + 0.01f, 0.125f, 0f], bias);
    }

    [Fact]
    public void UpdateBias_GammaZero_NoChange()
    {
        float[] bias = [1f, 2f];
        ExpertLoadBalancing.UpdateBias([5, 1], bias, 0f);
        Assert.Equal([1f, 2f], bias);
    }

    [Fact]
    public void CountLoad_TwoMicroBatches_Accumulates()
    {
        var load = new float[4];
        ExpertLoadBalancing.CountLoad([0, 1, 0, 3], load); // two tokens, K = 2
        ExpertLoadBalancing.CountLoad([0, 2], load);

        Assert.Equal([3f, 1f, 1f, 1f], load);
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpertLoadBalancing.CountLoad([4], load));
    }

    [Fact]
    public void Statistics_HandLoad_MeanMaxViolationAndCv()
    {
        var stats = ExpertLoadBalancing.Statistics([10, 2, 6, 6]);

        Assert.Equal(24, stats.Total);
        Assert.Equal(6, stats.Mean);
        Assert.Equal(2, stats.Min);
        Assert.Equal(10, stats.Max);
        Assert.Equal(4.0 / 6, stats.MaxViolation, 1e-15);
        Assert.Equal(Math.Sqrt(8) / 6, stats.CoefficientOfVariation, 1e-15); // population variance (16 + 16 + 0 + 0) / 4
        Assert.Equal([10f, 2f, 6f, 6f], stats.Load);
    }

    [Fact]
    public void SequenceBalanceLoss_HandCase_MatchesFormula()
    {
        // T = 2, E = 4, K = 2. f_i = E/(K T) · count = count = [2, 1, 0, 1].
        // s' rows: [0.25, 0.25, 0.25, 0.25] and [0.4, 0.2, 0.1, 0.3]; P = [0.325, 0.225, 0.175, 0.275].
        double[] scores = [0.5, 0.5, 0.5, 0.5, 0.8, 0.4, 0.2, 0.6];
        var loss = ExpertLoadBalancing.SequenceBalanceLoss<double>(scores, [0, 1, 0, 3], 4, 0.1, new double[8]);

        Assert.Equal(0.1 * ((2 * 0.325) + 0.225 + 0.275), loss, 1e-15);
    }

    [Fact]
    public void SequenceBalanceLoss_PerfectBalance_EqualsAlpha()
    {
        // Each expert chosen equally often and all scores equal: f = 1, P = 1/E, so L = α.
        double[] scores = [0.3, 0.3, 0.3, 0.3, 0.7, 0.7, 0.7, 0.7];
        var loss = ExpertLoadBalancing.SequenceBalanceLoss<double>(scores, [0, 1, 2, 3], 4, 1e-4, new double[8]);
        Assert.Equal(1e-4, loss, 1e-18);
    }

    [Fact]
    public void SequenceBalanceLoss_Gradient_MatchesFiniteDifferences()
    {
        const int t = 3, e = 6;
        const double alpha = 0.3, h = 1e-6;
        var random = new Random(17);
        var logits = Enumerable.Range(0, t * e).Select(_ => (random.NextDouble() * 4) - 2).ToArray();
        var scores = logits.Select(l => 1 / (1 + Math.Exp(-l))).ToArray();
        int[] experts = [0, 4, 4, 5, 1, 4];

        var dScores = new double[t * e];
        ExpertLoadBalancing.SequenceBalanceLoss<double>(scores, experts, e, alpha, dScores);
        var dLogits = new double[t * e];
        ExpertLoadBalancing.SigmoidBackward<double>(scores, dScores, dLogits);

        for (var i = 0; i < t * e; i++)
        {
            var plus = (double[])scores.Clone();
            var minus = (double[])scores.Clone();
            plus[i] += h;
            minus[i] -= h;
            var fd = (Loss(plus) - Loss(minus)) / (2 * h);
            Assert.True(Math.Abs(fd - dScores[i]) < 1e-8, $"dscore[{i}]: fd {fd} vs {dScores[i]}");

            var lp = (double[])logits.Clone();
            var lm = (double[])logits.Clone();
            lp[i] += h;
            lm[i] -= h;
            var fdLogit = (Loss(Sigmoid(lp)) - Loss(Sigmoid(lm))) / (2 * h);
            Assert.True(Math.Abs(fdLogit - dLogits[i]) < 1e-8, $"dlogit[{i}]: fd {fdLogit} vs {dLogits[i]}");
        }

        // Every expert's score gets a gradient, not only the chosen ones (doc §9.3).
        Assert.All(dScores, d => Assert.NotEqual(0, d));

        double Loss(double[] s) => ExpertLoadBalancing.SequenceBalanceLoss<double>(s, experts, e, alpha, new double[t * e]);
        static double[] Sigmoid(double[] l) => l.Select(x => 1 / (1 + Math.Exp(-x))).ToArray();
    }

    [Fact]
    public void SequenceBalanceLoss_Float_AgreesWithDouble()
    {
        double[] scores = [0.5, 0.5, 0.5, 0.5, 0.8, 0.4, 0.2, 0.6];
        var d = ExpertLoadBalancing.SequenceBalanceLoss<double>(scores, [0, 1, 0, 3], 4, 0.1, new double[8]);
        var f = ExpertLoadBalancing.SequenceBalanceLoss<float>(scores.Select(x => (float)x).ToArray(), [0, 1, 0, 3], 4, 0.1f, new float[8]);
        Assert.Equal(d, f, 1e-7);
    }
}
