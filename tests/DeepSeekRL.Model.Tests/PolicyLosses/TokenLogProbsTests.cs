using DeepSeekRL.Model.PolicyLosses;

namespace DeepSeekRL.Model.Tests.PolicyLosses;

public sealed class TokenLogProbsTests
{
    [Fact]
    public void Forward_HandRow_LogProbAndEntropy()
    {
        // softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6.
        double[] logits = [0, Math.Log(2), Math.Log(3), 5, 5, 5];
        var logp = new double[2];
        var entropy = new double[2];
        TokenLogProbs.Forward<double>(logits, [2, 0], 3, logp, entropy);

        Assert.Equal(Math.Log(0.5), logp[0], 1e-14);
        Assert.Equal(-((1.0 / 6 * Math.Log(1.0 / 6)) + (2.0 / 6 * Math.Log(2.0 / 6)) + (0.5 * Math.Log(0.5))), entropy[0], 1e-14);
        Assert.Equal(Math.Log(1.0 / 3), logp[1], 1e-14);
        Assert.Equal(Math.Log(3), entropy[1], 1e-14);
    }

    [Fact]
    public void Forward_Temperature_DividesLogits()
    {
        // [0, 2 ln 2] / 2 = [0, ln 2] → p = [1/3, 2/3].
        var logp = new double[1];
        TokenLogProbs.Forward<double>([0, 2 * Math.Log(2)], [1], 2, logp, [], temperature: 2);
        Assert.Equal(Math.Log(2.0 / 3), logp[0], 1e-14);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.7)]
    public void Backward_Random_MatchesFiniteDifferences(double temperature)
    {
        const int n = 3, v = 7;
        const double h = 1e-6;
        var random = new Random(23);
        var logits = Enumerable.Range(0, n * v).Select(_ => (random.NextDouble() * 6) - 3).ToArray();
        int[] targets = [4, 0, 6];
        double[] dLogp = [0.7, -1.3, 0.4];

        var dLogits = new double[n * v];
        dLogits[5] = 10; // Backward accumulates.
        TokenLogProbs.Backward<double>(logits, targets, v, dLogp, dLogits, temperature);
        dLogits[5] -= 10;

        for (var i = 0; i < n * v; i++)
        {
            var plus = (double[])logits.Clone();
            var minus = (double[])logits.Clone();
            plus[i] += h;
            minus[i] -= h;
            var fd = (Objective(plus) - Objective(minus)) / (2 * h);
            Assert.True(Math.Abs(fd - dLogits[i]) < 1e-8, $"dlogits[{i}]: fd {fd} vs {dLogits[i]}");
        }

        double Objective(double[] z)
        {
            var logp = new double[n];
            TokenLogProbs.Forward<double>(z, targets, v, logp, [], temperature);
            return (dLogp[0] * logp[0]) + (dLogp[1] * logp[1]) + (dLogp[2] * logp[2]);
        }
    }

    [Fact]
    public void Forward_FloatAllVocabSizes_AgreesWithDouble()
    {
        var random = new Random(29);
        for (var v = 1; v <= 70; v++)
        {
            var logits = Enumerable.Range(0, 2 * v).Select(_ => (float)((random.NextDouble() * 20) - 10)).ToArray();
            int[] targets = [v - 1, v / 2];
            var lf = new float[2];
            var ef = new float[2];
            var ld = new double[2];
            var ed = new double[2];
            TokenLogProbs.Forward<float>(logits, targets, v, lf, ef);
            TokenLogProbs.Forward<double>(logits.Select(x => (double)x).ToArray(), targets, v, ld, ed);
            for (var i = 0; i < 2; i++)
            {
                Assert.True(Math.Abs(lf[i] - ld[i]) < 1e-4 * (1 + Math.Abs(ld[i])), $"V={v} logp[{i}]");
                Assert.True(Math.Abs(ef[i] - ed[i]) < 1e-4 * (1 + Math.Abs(ed[i])), $"V={v} entropy[{i}]");
            }

            var gf = new float[2 * v];
            var gd = new double[2 * v];
            TokenLogProbs.Backward<float>(logits, targets, v, [1f, -0.5f], gf);
            TokenLogProbs.Backward<double>(logits.Select(x => (double)x).ToArray(), targets, v, [1, -0.5], gd);
            for (var i = 0; i < 2 * v; i++)
            {
                Assert.True(Math.Abs(gf[i] - gd[i]) < 1e-5, $"V={v} dlogits[{i}]");
            }
        }
    }

    [Fact]
    public void Forward_TargetOutsideVocab_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenLogProbs.Forward<float>(new float[4], [4], 4, new float[1], []));
}
