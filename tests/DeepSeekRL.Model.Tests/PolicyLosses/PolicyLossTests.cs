using DeepSeekRL.Model.PolicyLosses;

namespace DeepSeekRL.Model.Tests.PolicyLosses;

public sealed class PolicyLossTests
{
    // Clipping case: B = 2, T = 2, every token active. Sequence 0 has A = +1 and ratios (1.5, 0.5); sequence 1 has
    // A = −1 and ratios (0.5, 1.5). With ε = 0.2 the token losses are −min(ρA, clip(ρ)A):
    //   (0, 0): −min(1.5, 1.2) = −1.2 (clipped high, no gradient)   (0, 1): −min(0.5, 0.8) = −0.5 (gradient)
    //   (1, 0): −min(−0.5, −0.8) = 0.8 (clipped low, no gradient)   (1, 1): −min(−1.5, −1.2) = 1.5 (gradient)
    private static readonly double[] ClipOld = [-1, -2, -1.5, -0.7];
    private static readonly double[] ClipRatios = [1.5, 0.5, 0.5, 1.5];
    private static readonly double[] ClipAdvantages = [1, -1];

    private static double[] LogProbs(double[] old, double[] ratios) => old.Select((o, i) => o + Math.Log(ratios[i])).ToArray();

    [Fact]
    public void Compute_TokenClipBothSides_HandValuesGradientAndFractions()
    {
        var (r, g) = Run(new PolicyLossOptions { Aggregation = LossAggregation.Dapo }, 2, 2, LogProbs(ClipOld, ClipRatios), Ones(4), ClipAdvantages, old: ClipOld);

        Assert.Equal((-1.2 - 0.5 + 0.8 + 1.5) / 4, r.Loss, 1e-12);

        // dL/dlp = c · (−A) · ρ on the unclipped tokens, c = 1/4.
        AssertClose([0, 0.25 * -1 * 0.5, 0, 0.25 * 1 * 1.5], g);
        Assert.Equal(0.25, r.ClipFractionLow, 1e-15);
        Assert.Equal(0.25, r.ClipFractionHigh, 1e-15);
        Assert.Equal(0.5, r.ClipFractionRegion, 1e-15);
        Assert.Equal(1, r.MeanRatio, 1e-12);
        Assert.Equal(4, r.ActiveTokens);
        Assert.True(double.IsNaN(r.MeanKl));
        Assert.True(double.IsNaN(r.MeanEntropy));
    }

    [Theory]
    [InlineData(0.2, -1.2, 0.0)] // clipped at 1.2: constant, no gradient
    [InlineData(0.28, -1.25, -1.25)] // DAPO clip-higher: 1.25 < 1.28 stays unclipped
    public void Compute_EpsilonHigh_ClipsAtOnePlusEpsHigh(double epsilonHigh, double loss, double gradient)
    {
        double[] old = [-1];
        var (r, g) = Run(new PolicyLossOptions { EpsilonHigh = epsilonHigh }, 1, 1, LogProbs(old, [1.25]), [1], [1], old: old);
        Assert.Equal(loss, r.Loss, 1e-12);
        Assert.Equal(gradient, g[0], 1e-12);
        Assert.Equal(gradient == 0 ? 1 : 0, r.ClipFractionHigh);
    }

    [Theory]
    [InlineData(null, 4.0, 0.0, 4.0)] // no dual clip: −min(−4, −1.2) = 4, gradient −A ρ · c with c = 1/2
    [InlineData(3.0, 3.0, 0.5, 0.0)] // dual clip δ = 3: the objective max(−4, −3) = −3 is constant
    public void Compute_DualClip_CapsNegativeAdvantageRatio(double? delta, double firstLoss, double dualFraction, double firstGradientTimesTwo)
    {
        // Sequence with A = −1, two tokens with ratios 4 and 2.5 (2.5 < δ, so the second is never dual-clipped).
        double[] old = [-1, -1];
        var (r, g) = Run(new PolicyLossOptions { DualClip = delta }, 1, 2, LogProbs(old, [4, 2.5]), [1, 1], [-1], old: old);

        Assert.Equal((firstLoss + 2.5) / 2, r.Loss, 1e-12);
        Assert.Equal(firstGradientTimesTwo / 2, g[0], 1e-12);
        Assert.Equal(0.5 * 2.5, g[1], 1e-12);
        Assert.Equal(dualFraction, r.DualClipFraction, 1e-15);
    }

    [Fact]
    public void Compute_DualClipPositiveAdvantage_NoEffect()
    {
        double[] old = [-1];
        var (r, _) = Run(new PolicyLossOptions { DualClip = 3 }, 1, 1, LogProbs(old, [4]), [1], [1], old: old);
        Assert.Equal(-1.2, r.Loss, 1e-12);
    }

    [Fact]
    public void Compute_SequenceRatio_GspoHandValuesAndGradient()
    {
        // Sequence 0 (A = −1): log-ratios 0.1, 0.2, 0.3 → s0 = e^0.2 = 1.2214 > 1.2; for A < 0 min(−s0, −1.2) = −s0
        // (unclipped). Sequence 1 (A = 0.5): log-ratios −0.1, 0.05 and a padded token → s1 = e^−0.025, inside.
        double[] old = [-1, -1, -1, -2, -2, -2];
        double[] lp = [-0.9, -0.8, -0.7, -2.1, -1.95, 5];
        double[] mask = [1, 1, 1, 1, 1, 0];
        var (r, g) = Run(new PolicyLossOptions { RatioLevel = RatioLevel.Sequence, Aggregation = LossAggregation.Dapo }, 2, 3, lp, mask, [-1, 0.5], old: old);

        double s0 = Math.Exp(0.2), s1 = Math.Exp(-0.025);
        Assert.Equal(((3 * s0) + (2 * -0.5 * s1)) / 5, r.Loss, 1e-12);

        // dL/dlp_u = (Σ_t c) · (−A) · s · (1 / n): (3/5)(1)(s0)(1/3) and (2/5)(−0.5)(s1)(1/2).
        AssertClose([s0 / 5, s0 / 5, s0 / 5, -0.5 * s1 / 5, -0.5 * s1 / 5, 0], g);
        Assert.Equal(((3 * s0) + (2 * s1)) / 5, r.MeanRatio, 1e-12);
        Assert.Equal(0, r.ClipFractionRegion);
    }

    [Fact]
    public void Compute_SequenceRatioClipped_AllTokensOfTheSequenceClipped()
    {
        // Same as above with A = +1 on sequence 0: s0 = 1.2214 > 1.2 is clipped for all three tokens.
        double[] old = [-1, -1, -1];
        var (r, g) = Run(new PolicyLossOptions { RatioLevel = RatioLevel.Sequence }, 1, 3, [-0.9, -0.8, -0.7], Ones(3), [1], old: old);
        Assert.Equal(-1.2, r.Loss, 1e-12);
        AssertClose([0, 0, 0], g);
        Assert.Equal(1, r.ClipFractionHigh);
    }

    [Theory]
    [InlineData(KlEstimator.K1)]
    [InlineData(KlEstimator.K2)]
    [InlineData(KlEstimator.K3)]
    public void Compute_KlEstimators_HandValuesAndGradient(KlEstimator estimator)
    {
        // On-policy (no old log-probs: ρ = 1) with A = 0, so only β·KL remains. d = ref − lp = (−0.5, 1).
        double[] lp = [-1, -2];
        double[] reference = [-1.5, -1];
        double[] expectedKl = estimator switch
        {
            KlEstimator.K1 => [0.5, -1],
            KlEstimator.K2 => [0.125, 0.5],
            _ => [Math.Exp(-0.5) + 0.5 - 1, Math.Exp(1) - 1 - 1],
        };
        double[] derivative = estimator switch
        {
            KlEstimator.K1 => [1, 1],
            KlEstimator.K2 => [0.5, -1],
            _ => [1 - Math.Exp(-0.5), 1 - Math.Exp(1)],
        };

        var (r, g) = Run(new PolicyLossOptions { Beta = 0.04, KlEstimator = estimator }, 1, 2, lp, [1, 1], [0], reference: reference);

        var meanKl = (expectedKl[0] + expectedKl[1]) / 2;
        Assert.Equal(meanKl, r.MeanKl, 1e-14);
        Assert.Equal(0.04 * meanKl, r.Loss, 1e-14);
        AssertClose([0.5 * 0.04 * derivative[0], 0.5 * 0.04 * derivative[1]], g);
    }

    [Fact]
    public void Compute_BetaZero_NoReferenceNeeded()
    {
        var (r, g) = Run(new PolicyLossOptions { Beta = 0 }, 1, 2, [-1, -2], [1, 1], [2]);
        Assert.Equal(-2, r.Loss, 1e-14); // ρ = 1: −A on every token, mean
        AssertClose([-1, -1], g);
        Assert.True(double.IsNaN(r.MeanKl));
    }

    [Fact]
    public void Compute_BetaPositiveWithoutReference_Throws() =>
        Assert.Throws<ArgumentException>(() => Run(new PolicyLossOptions { Beta = 0.1 }, 1, 1, [-1], [1], [1]));

    [Fact]
    public void Compute_BetaZeroWithReference_KlMetricOnly()
    {
        var (r, g) = Run(new PolicyLossOptions { Beta = 0, KlEstimator = KlEstimator.K1 }, 1, 1, [-1], [1], [0], reference: [-1.5]);
        Assert.Equal(0.5, r.MeanKl, 1e-15);
        Assert.Equal(0, r.Loss);
        Assert.Equal(0, g[0]);
    }

    // Aggregation case: on-policy (ρ = 1), so l = −A per token. Sequence 0: A = 1 with 3 tokens; sequence 1: A = −0.5
    // with 1 token (2 padded). Σ l m = −3 + 0.5 = −2.5.
    [Theory]
    [InlineData(LossAggregation.Grpo, null, null, -0.25, -1.0 / 6, 0.25)] // mean(−1, 0.5); c = 1/(B n_i)
    [InlineData(LossAggregation.Bnpo, null, null, -0.625, -0.25, 0.125)] // −2.5 / 4
    [InlineData(LossAggregation.Dapo, null, null, -0.625, -0.25, 0.125)] // −2.5 / (this batch's 4 tokens)
    [InlineData(LossAggregation.Dapo, 8.0, null, -0.3125, -0.125, 0.0625)] // −2.5 / (8 tokens in the whole step)
    [InlineData(LossAggregation.DrGrpo, null, null, -2.5 / 6, -1.0 / 6, 0.5 / 6)] // −2.5 / (B · T = 6)
    [InlineData(LossAggregation.DrGrpo, null, 5, -0.25, -0.1, 0.05)] // −2.5 / (B · 5)
    public void Compute_Aggregation_HandValues(LossAggregation aggregation, double? stepTokens, int? maxLength, double loss, double gradFirst, double gradSecond)
    {
        var options = new PolicyLossOptions { Aggregation = aggregation, StepActiveTokens = stepTokens, MaxCompletionLength = maxLength };
        var (r, g) = Run(options, 2, 3, [-1, -1, -1, -1, -7, -7], [1, 1, 1, 1, 0, 0], [1, -0.5]);

        Assert.Equal(loss, r.Loss, 1e-14);
        AssertClose([gradFirst, gradFirst, gradFirst, gradSecond, 0, 0], g);
    }

    [Fact]
    public void Compute_OffPolicy_SequenceMaskOutsideOneThirdToThree()
    {
        // Σ_t m (old − sampling) per sequence: 0.5 (weight e^0.5), 1.5 (e^1.5 = 4.48 > 3: masked), −1.2 (e^−1.2 = 0.30 < 1/3: masked).
        double[] lp = [-1, -1, -1, -1, -1, -1];
        double[] sampling = [-1.25, -1.25, -1.75, -1.75, -0.4, -0.4];
        var (r, g) = Run(new PolicyLossOptions { Aggregation = LossAggregation.Bnpo }, 3, 2, lp, Ones(6), [1, 1, 1], sampling: sampling);

        var w = Math.Exp(0.5);
        Assert.Equal(2 * w * -1 / 6, r.Loss, 1e-12);
        AssertClose([-w / 6, -w / 6, 0, 0, 0, 0], g);
        Assert.Equal(2.0 / 3, r.OffPolicyMaskedFraction, 1e-15);
    }

    [Fact]
    public void Compute_OffPolicyKl_NotWeighted()
    {
        // A masked sequence still pays its KL term (TRL adds β·KL after the importance weight).
        var (r, _) = Run(new PolicyLossOptions { Beta = 0.5, KlEstimator = KlEstimator.K1 }, 1, 1, [-1], [1], [1], reference: [-1.25], sampling: [-3]);
        Assert.Equal(0.5 * 0.25, r.Loss, 1e-14);
        Assert.Equal(1, r.OffPolicyMaskedFraction);
    }

    [Fact]
    public void Compute_Entropies_MaskedMean()
    {
        var (r, _) = Run(new PolicyLossOptions(), 1, 3, [-1, -1, -1], [1, 1, 0], [1], entropies: [0.5, 1.5, 100]);
        Assert.Equal(1, r.MeanEntropy, 1e-15);
    }

    [Fact]
    public void Validate_DualClipBelowRange_NamesOption()
    {
        Assert.StartsWith("dual_clip = 1.1", new PolicyLossOptions { DualClip = 1.1 }.Validate(), StringComparison.Ordinal);
        Assert.StartsWith("epsilon_low = 1", new PolicyLossOptions { EpsilonLow = 1 }.Validate(), StringComparison.Ordinal);
        Assert.Null(new PolicyLossOptions().Validate());
    }

    public static TheoryData<LossAggregation, RatioLevel, KlEstimator, bool, bool> Variants()
    {
        var data = new TheoryData<LossAggregation, RatioLevel, KlEstimator, bool, bool>();
        foreach (var aggregation in Enum.GetValues<LossAggregation>())
        {
            foreach (var level in Enum.GetValues<RatioLevel>())
            {
                foreach (var kl in Enum.GetValues<KlEstimator>())
                {
                    data.Add(aggregation, level, kl, true, true);
                    data.Add(aggregation, level, kl, false, false);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Compute_EveryVariant_GradientMatchesFiniteDifferences(LossAggregation aggregation, RatioLevel level, KlEstimator kl, bool dualClip, bool offPolicy)
    {
        // 2 groups × 3 completions × 4 tokens, ragged masks, ratios spread over [0.3, 4] so that both clips and the
        // dual clip are exercised, β = 0.1.
        const int b = 6, t = 4;
        const double h = 1e-6;
        var random = new Random(31 + (int)aggregation + (10 * (int)level) + (100 * (int)kl));
        var old = new double[b * t];
        var lp = new double[b * t];
        var reference = new double[b * t];
        var sampling = new double[b * t];
        var mask = new double[b * t];
        for (var i = 0; i < b * t; i++)
        {
            old[i] = -0.2 - (random.NextDouble() * 3);
            lp[i] = old[i] + (random.NextDouble() * 2.6) - 1.2;
            reference[i] = old[i] + (random.NextDouble() * 1.6) - 0.8;
            sampling[i] = old[i] + (random.NextDouble() * 0.8) - 0.4;
            mask[i] = (i % t) < 1 + ((i / t) % t) ? 1 : 0;
        }

        var advantages = new double[b];
        Advantages.Compute([1, 0, 0.5, 2, 1, 0], 3, AdvantageNormalization.Group, advantages);
        var options = new PolicyLossOptions
        {
            Aggregation = aggregation,
            RatioLevel = level,
            KlEstimator = kl,
            Beta = 0.1,
            DualClip = dualClip ? 2.0 : null,
            EpsilonHigh = 0.28,
        };

        var (result, grad) = Run(options, b, t, lp, mask, advantages, old, reference, offPolicy ? sampling : null);
        var nonZero = 0;
        for (var i = 0; i < b * t; i++)
        {
            var plus = (double[])lp.Clone();
            var minus = (double[])lp.Clone();
            plus[i] += h;
            minus[i] -= h;
            var fd = (Run(options, b, t, plus, mask, advantages, old, reference, offPolicy ? sampling : null).Result.Loss
                - Run(options, b, t, minus, mask, advantages, old, reference, offPolicy ? sampling : null).Result.Loss) / (2 * h);
            Assert.True(Math.Abs(fd - grad[i]) < 1e-7, $"dlogp[{i}]: fd {fd:R} vs analytic {grad[i]:R}");
            nonZero += grad[i] != 0 ? 1 : 0;
        }

        Assert.True(nonZero > 0);
        Assert.True(double.IsFinite(result.Loss));
    }

    [Fact]
    public void Compute_TokenRatioVariety_BothClipsAndDualClipActiveInTheGradientCheckData()
    {
        // Guards the FD theory above against testing only the unclipped branch.
        const int b = 6, t = 4;
        var random = new Random(31);
        var old = new double[b * t];
        var lp = new double[b * t];
        for (var i = 0; i < b * t; i++)
        {
            old[i] = -0.2 - (random.NextDouble() * 3);
            lp[i] = old[i] + (random.NextDouble() * 2.6) - 1.2;
            random.NextDouble();
            random.NextDouble();
        }

        var advantages = new double[b];
        Advantages.Compute([1, 0, 0.5, 2, 1, 0], 3, AdvantageNormalization.Group, advantages);
        var (r, _) = Run(new PolicyLossOptions { DualClip = 2.0, EpsilonHigh = 0.28 }, b, t, lp, Ones(b * t), advantages, old);
        Assert.True(r.ClipFractionLow > 0 && r.ClipFractionHigh > 0 && r.DualClipFraction > 0, $"low {r.ClipFractionLow}, high {r.ClipFractionHigh}, dual {r.DualClipFraction}");
    }

    private static double[] Ones(int n) => Enumerable.Repeat(1.0, n).ToArray();

    private static (PolicyLossResult Result, double[] Gradient) Run(
        PolicyLossOptions options, int b, int t, double[] lp, double[] mask, double[] advantages,
        double[]? old = null, double[]? reference = null, double[]? sampling = null, double[]? entropies = null)
    {
        var inputs = new PolicyLossInputs(b, t, lp, mask, advantages)
        {
            OldLogProbs = old,
            ReferenceLogProbs = reference,
            SamplingLogProbs = sampling,
            Entropies = entropies,
        };
        var gradient = new double[b * t];
        var result = PolicyLoss.Compute(inputs, options, gradient);
        return (result, gradient);
    }

    private static void AssertClose(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-12, $"[{i}]: expected {expected[i]:R}, got {actual[i]:R}");
        }
    }
}
