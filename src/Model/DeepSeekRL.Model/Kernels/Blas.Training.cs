namespace DeepSeekRL.Model.Kernels;

// The transposed-A product the backward pass needs (dW += dYᵀ X, dK = τ dSᵀ Q); the forward calls live in Blas.cs.

/// <content>Products with A transposed.</content>
public static unsafe partial class Blas
{
    /// <summary>C (M,N) = alpha·A(K,M)ᵀ · B (K,N) + beta·C: the weight gradient dW += dYᵀ X.</summary>
    /// <param name="m">Columns of A, rows of C.</param>
    /// <param name="n">Columns of B and C.</param>
    /// <param name="k">Rows of A and B (the summed dimension).</param>
    /// <param name="a">A, leading dimension <paramref name="lda"/>.</param>
    /// <param name="lda">Leading dimension of A.</param>
    /// <param name="b">B, leading dimension <paramref name="ldb"/>.</param>
    /// <param name="ldb">Leading dimension of B.</param>
    /// <param name="c">C, leading dimension <paramref name="ldc"/>.</param>
    /// <param name="ldc">Leading dimension of C.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="beta">Scale of the old C (1 accumulates).</param>
    public static void GemmTN(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, float alpha = 1f, float beta = 0f)
    {
        if (m == 0 || n == 0 || k == 0)
        {
            return;
        }

        UseThreads((long)m * n * k);
        cblas_sgemm(RowMajor, Trans, NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
}
