using DeepSeekRL.Model.Kernels;

namespace DeepSeekRL.Model.Tests.Kernels;

public sealed class OpsTests
{
    [Fact]
    public void RmsNorm_Lengths1To256_MatchesNaive()
    {
        var rng = new Random(1);
        for (var n = 1; n <= 256; n++)
        {
            var x = BlasTests.Fill(rng, n);
            var w = BlasTests.Fill(rng, n);
            var y = new float[n];
            Ops.RmsNorm(x, w, 1e-6f, y);
            double ss = 0;
            for (var i = 0; i < n; i++)
            {
                ss += x[i] * (double)x[i];
            }

            var r = 1 / Math.Sqrt(ss / n + 1e-6);
            for (var i = 0; i < n; i++)
            {
                Assert.True(Math.Abs(y[i] - w[i] * x[i] * r) < 1e-5, $"n={n} i={i}");
            }
        }
    }

    [Fact]
    public void SiluMul_Lengths1To256_MatchesNaive()
    {
        var rng = new Random(2);
        for (var n = 1; n <= 256; n++)
        {
            var g = BlasTests.Fill(rng, n);
            var u = BlasTests.Fill(rng, n);
            var h = new float[n];
            Ops.SiluMul(g, u, h);
            for (var i = 0; i < n; i++)
            {
                var expected = g[i] / (1 + Math.Exp(-g[i])) * u[i];
                Assert.True(Math.Abs(h[i] - expected) < 1e-5, $"n={n} i={i}");
            }
        }
    }

    [Fact]
    public void MaskedSoftmax_Lengths1To256_MatchesNaiveAndZeroesMasked()
    {
        var rng = new Random(3);
        for (var n = 1; n <= 256; n++)
        {
            var valid = 1 + rng.Next(n);
            var x = BlasTests.Fill(rng, n);
            var y = (float[])x.Clone();
            Ops.MaskedSoftmax(y, valid);
            double max = double.NegativeInfinity, sum = 0;
            for (var i = 0; i < valid; i++)
            {
                max = Math.Max(max, x[i]);
            }

            for (var i = 0; i < valid; i++)
            {
                sum += Math.Exp(x[i] - max);
            }

            for (var i = 0; i < n; i++)
            {
                var expected = i < valid ? Math.Exp(x[i] - max) / sum : 0;
                Assert.True(Math.Abs(y[i] - expected) < 1e-6, $"n={n} i={i}");
            }
        }
    }

    [Fact]
    public void ExpSubtractSum_Lengths1To256AndWideRange_MatchesMathExp()
    {
        var rng = new Random(7);
        for (var n = 1; n <= 256; n++)
        {
            var x = new float[n];
            for (var i = 0; i < n; i++)
            {
                x[i] = (float)(-100 * rng.NextDouble() + 2); // includes values below shift − 87.3
            }

            var y = (float[])x.Clone();
            var sum = Ops.ExpSubtractSum(y, 2f);
            double expected = 0;
            for (var i = 0; i < n; i++)
            {
                var e = Math.Exp(x[i] - 2f); // the float-rounded argument, as the kernel sees it
                expected += e;
                Assert.True(Math.Abs(y[i] - e) <= 3e-7 * e + 2e-38, $"n={n} i={i}: exp({x[i] - 2}) = {e}, got {y[i]}");
            }

            Assert.Equal(expected, sum, expected * 1e-6);
        }
    }

    [Fact]
    public void RopeInterleaved_AllPairCounts_MatchesComplexRotation()
    {
        var rng = new Random(4);
        for (var half = 1; half <= 128; half++)
        {
            var x = BlasTests.Fill(rng, 2 * half);
            var angles = BlasTests.Fill(rng, half);
            var cos = Array.ConvertAll(angles, a => MathF.Cos(3 * a));
            var sin = Array.ConvertAll(angles, a => MathF.Sin(3 * a));
            var y = (float[])x.Clone();
            Ops.RopeInterleaved(y, cos, sin);
            for (var i = 0; i < half; i++)
            {
                var z = new System.Numerics.Complex(x[2 * i], x[2 * i + 1]) * System.Numerics.Complex.FromPolarCoordinates(1, 3 * angles[i]);
                Assert.True(Math.Abs(y[2 * i] - z.Real) < 1e-5 && Math.Abs(y[2 * i + 1] - z.Imaginary) < 1e-5, $"half={half} i={i}");
            }
        }
    }

    [Fact]
    public void RopeHalf_AllPairCounts_EqualsInterleavedUnderEvensThenOddsPermutation()
    {
        var rng = new Random(6);
        for (var half = 1; half <= 128; half++)
        {
            var x = BlasTests.Fill(rng, 2 * half);
            var angles = BlasTests.Fill(rng, half);
            var cos = Array.ConvertAll(angles, MathF.Cos);
            var sin = Array.ConvertAll(angles, MathF.Sin);
            var permuted = new float[2 * half]; // new[j] = old[2j], new[j + half] = old[2j + 1]
            for (var j = 0; j < half; j++)
            {
                (permuted[j], permuted[j + half]) = (x[2 * j], x[2 * j + 1]);
            }

            Ops.RopeInterleaved(x, cos, sin);
            Ops.RopeHalf(permuted, cos, sin);
            for (var j = 0; j < half; j++)
            {
                Assert.Equal(x[2 * j], permuted[j], 6);
                Assert.Equal(x[2 * j + 1], permuted[j + half], 6);
            }
        }
    }

    [Fact]
    public void LogSoftmaxAt_RandomLogits_MatchesDefinition()
    {
        var rng = new Random(5);
        for (var n = 1; n <= 256; n += 17)
        {
            var x = BlasTests.Fill(rng, n);
            var index = rng.Next(n);
            var sum = x.Sum(v => Math.Exp(v));
            Assert.Equal(x[index] - Math.Log(sum), Ops.LogSoftmaxAt(x, index), 1e-6);
        }
    }
}
