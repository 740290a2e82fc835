using DeepSeekRL.Model.PolicyLosses;

namespace DeepSeekRL.Model.Tests.PolicyLosses;

public sealed class AdvantagesTests
{
    // Three groups of two: (1, 0), (0.5, 0.5), (2, 0).
    private static readonly double[] Rewards = [1, 0, 0.5, 0.5, 2, 0];

    [Fact]
    public void Compute_Group_BesselStdPlusEpsilon()
    {
        var a = new double[6];
        var stats = Advantages.Compute(Rewards, 2, AdvantageNormalization.Group, a);

        // Group (1, 0): mean 0.5, Bessel std √0.5; group (0.5, 0.5): std 0 so A = 0; group (2, 0): mean 1, std √2.
        var s1 = Math.Sqrt(0.5) + 1e-4;
        var s3 = Math.Sqrt(2) + 1e-4;
        AssertClose([0.5 / s1, -0.5 / s1, 0, 0, 1 / s3, -1 / s3], a);
        Assert.Equal(1.0 / 3, stats.ZeroStdGroupFraction, 1e-15);
        Assert.Equal(4.0 / 6, stats.RewardMean, 1e-15);
    }

    [Fact]
    public void Compute_Batch_GroupMeanOverBatchStd()
    {
        var a = new double[6];
        var stats = Advantages.Compute(Rewards, 2, AdvantageNormalization.Batch, a);

        // Batch mean 2/3; Σ (r − 2/3)² = 1/9 + 4/9 + 1/36 + 1/36 + 16/9 + 4/9 = 17/6; Bessel: / 5.
        var std = Math.Sqrt(17.0 / 6 / 5);
        Assert.Equal(std, stats.RewardStd, 1e-15);
        var s = std + 1e-4;
        AssertClose([0.5 / s, -0.5 / s, 0, 0, 1 / s, -1 / s], a);
    }

    [Fact]
    public void Compute_None_MeanCentredOnly()
    {
        var a = new double[6];
        Advantages.Compute(Rewards, 2, AdvantageNormalization.None, a);
        AssertClose([0.5, -0.5, 0, 0, 1, -1], a);
    }

    [Fact]
    public void Compute_GroupOfThree_BesselDividesByTwo()
    {
        var a = new double[3];
        Advantages.Compute([1, 2, 4], 3, AdvantageNormalization.Group, a);

        // mean 7/3; Σ squares (16 + 1 + 25)/9 = 42/9; / (3 − 1) → std √(7/3).
        var s = Math.Sqrt(7.0 / 3) + 1e-4;
        AssertClose([(1 - (7.0 / 3)) / s, (2 - (7.0 / 3)) / s, (4 - (7.0 / 3)) / s], a);
    }

    [Fact]
    public void Compute_PartialGroup_Throws() =>
        Assert.Throws<ArgumentException>(() => Advantages.Compute([1, 2, 3], 2, AdvantageNormalization.Group, new double[3]));

    private static void AssertClose(double[] expected, double[] actual)
    {
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-12, $"[{i}]: expected {expected[i]}, got {actual[i]}");
        }
    }
}
