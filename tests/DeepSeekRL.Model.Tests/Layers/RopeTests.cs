using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Tests.Kernels;
using DeepSeekRL.Model.Layers;
using DeepSeekRL.Model.Tests.Inference;

namespace DeepSeekRL.Model.Tests.Layers;

public sealed class RopeTests
{
    private static DeepSeekV3Config V3Rope() => TestModels.Micro() with
    {
        QkRopeHeadDim = 64, QkNopeHeadDim = 128, MaxPositionEmbeddings = 163840,
        RopeScaling = new YarnScaling(40, 4096, 32, 1, 1, 1),
    };

    [Fact]
    public void YarnRange_V3_Is10To23()
    {
        var (low, high) = Rope.YarnRange(64, 10000, 4096, 32, 1);
        Assert.Equal(10, low);
        Assert.Equal(23, high);
    }

    [Fact]
    public void ComputeFrequencies_V3_MatchesReferenceNumbers()
    {
        var f = Rope.ComputeFrequencies(V3Rope());
        double Base(int i) => Math.Pow(10000, -2.0 * i / 64);
        for (var i = 0; i <= 10; i++)
        {
            Assert.Equal(Base(i), f[i], 12);
        }

        Assert.Equal(1.818, Base(16) / f[16], 3);
        Assert.Equal(10.0, Base(22) / f[22], 6);
        for (var i = 23; i < 32; i++)
        {
            Assert.Equal(40.0, Base(i) / f[i], 9);
        }

        // The formula of §4.4 for every pair.
        for (var i = 0; i < 32; i++)
        {
            var keep = 1 - Math.Clamp((i - 10) / 13.0, 0, 1);
            Assert.Equal(Base(i) * keep + Base(i) / 40 * (1 - keep), f[i], 12);
        }
    }

    [Fact]
    public void SoftmaxScale_V3Yarn_Is0_1352338()
    {
        var rope = new Rope(V3Rope() with { MaxPositionEmbeddings = 16 }, 16);
        Assert.Equal(0.1352338, rope.SoftmaxScale, 6);
        Assert.Equal(1 / Math.Sqrt(48), new Rope(TestModels.Tiny(), 4).SoftmaxScale, 6);
    }

    [Fact]
    public void RopeInterleaved_VersusHfRotateHalfOnDeinterleaved_EqualUnderPermutation()
    {
        var config = TestModels.Tiny();
        var rope = new Rope(config, 64);
        var rng = new Random(3);
        const int dr = 16, half = 8;
        for (var p = 0; p < 64; p += 7)
        {
            var x = BlasTests.Fill(rng, dr);
            var y = (float[])x.Clone();
            rope.Apply(y, p);

            // HF: de-interleave (evens then odds), then x·cos + rotate_half(x)·sin with duplicated angles.
            var xp = new double[dr];
            for (var j = 0; j < half; j++)
            {
                xp[j] = x[2 * j];
                xp[j + half] = x[2 * j + 1];
            }

            for (var j = 0; j < dr; j++)
            {
                var phi = p * rope.Frequencies[j % half];
                var rotated = j < half ? -xp[j + half] : xp[j - half];
                var hf = xp[j] * Math.Cos(phi) + rotated * Math.Sin(phi);
                var mine = j < half ? y[2 * j] : y[2 * (j - half) + 1];
                Assert.True(Math.Abs(hf - mine) < 1e-5, $"p={p} j={j}: HF {hf} vs interleaved {mine}");
            }

            // Plain rotate-half on the un-permuted layout is a different model.
            var plain = x[0] * Math.Cos(p * rope.Frequencies[0]) - x[half] * Math.Sin(p * rope.Frequencies[0]);
            if (p > 0)
            {
                Assert.NotEqual(plain, y[0], 3);
            }
        }
    }
}
