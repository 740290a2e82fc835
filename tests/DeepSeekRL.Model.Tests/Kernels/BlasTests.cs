using DeepSeekRL.Model.Kernels;

namespace DeepSeekRL.Model.Tests.Kernels;

public sealed unsafe class BlasTests
{
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 37, 19)]
    [InlineData(3, 5, 7)]
    [InlineData(16, 128, 384)]
    [InlineData(33, 65, 17)]
    public void GemmNT_RandomShapes_MatchesNaive(int m, int n, int k)
    {
        var rng = new Random(m * 1000 + n * 10 + k);
        var a = Fill(rng, m * (k + 3));
        var b = Fill(rng, n * (k + 1));
        var c = Fill(rng, m * (n + 2));
        var expected = (float[])c.Clone();
        for (var i = 0; i < m; i++)
        {
            for (var j = 0; j < n; j++)
            {
                double s = 0;
                for (var t = 0; t < k; t++)
                {
                    s += a[i * (k + 3) + t] * b[j * (k + 1) + t];
                }

                expected[i * (n + 2) + j] = (float)(0.5 * s + 1.0 * expected[i * (n + 2) + j]);
            }
        }

        fixed (float* pa = a, pb = b, pc = c)
        {
            // A single row must be contiguous (sgemv path): use lda = k there.
            Blas.GemmNT(m, n, k, pa, k + 3, pb, k + 1, pc, n + 2, alpha: 0.5f, beta: 1f);
        }

        AssertClose(expected, c, m == 1 ? n : c.Length);
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 40, 23)]
    [InlineData(4, 64, 100)]
    [InlineData(17, 9, 31)]
    public void GemmNN_RandomShapes_MatchesNaive(int m, int n, int k)
    {
        var rng = new Random(m * 7 + n * 3 + k);
        var a = Fill(rng, m * k);
        var b = Fill(rng, k * (n + 5));
        var c = new float[m * n];
        var expected = new float[m * n];
        for (var i = 0; i < m; i++)
        {
            for (var j = 0; j < n; j++)
            {
                double s = 0;
                for (var t = 0; t < k; t++)
                {
                    s += a[i * k + t] * b[t * (n + 5) + j];
                }

                expected[i * n + j] = (float)s;
            }
        }

        fixed (float* pa = a, pb = b, pc = c)
        {
            Blas.GemmNN(m, n, k, pa, k, pb, n + 5, pc, n);
        }

        AssertClose(expected, c, c.Length);
    }

    [Fact]
    public void SetThreads_Two_IsReported()
    {
        // Process-wide: other tests' small products may drop OpenBLAS to one thread meanwhile.
        Blas.SetThreads(2);
        Assert.Equal(2, Blas.MaxThreads);
        Assert.InRange(Blas.GetThreads(), 1, 2);
        Assert.False(string.IsNullOrEmpty(Blas.CoreName()));
    }

    internal static float[] Fill(Random rng, int n)
    {
        var x = new float[n];
        for (var i = 0; i < n; i++)
        {
            x[i] = (float)(rng.NextDouble() * 2 - 1);
        }

        return x;
    }

    private static void AssertClose(float[] expected, float[] actual, int count)
    {
        for (var i = 0; i < count; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4f * (1 + Math.Abs(expected[i])), $"index {i}: expected {expected[i]}, got {actual[i]}");
        }
    }
}
