using System.Numerics.Tensors;

namespace DeepSeekRL.Model.Optimization;

// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_): one norm over every gradient, one scale for all.
// The norm is accumulated in double in a fixed order so that it is bit-for-bit reproducible run to run.

/// <summary>Global L2 norm of gradients and clipping to a maximum norm.</summary>
public static class GradientClipping
{
    /// <summary>The L2 norm of <paramref name="gradients"/>, accumulated in double in index order.</summary>
    /// <param name="gradients">The gradients.</param>
    /// <returns>sqrt(Σ g²).</returns>
    public static double GlobalNorm(ReadOnlySpan<float> gradients) => Math.Sqrt(SumOfSquares(gradients));

    /// <summary>Σ g² in double, in index order (blocks of 4096 summed by TensorPrimitives, then added in double).</summary>
    /// <param name="gradients">The gradients.</param>
    /// <returns>The sum of squares.</returns>
    public static double SumOfSquares(ReadOnlySpan<float> gradients)
    {
        // Blocks keep float rounding bounded (each block's sum has at most 4096 terms) while staying SIMD.
        const int block = 4096;
        double sum = 0;
        for (var i = 0; i < gradients.Length; i += block)
        {
            sum += TensorPrimitives.SumOfSquares(gradients.Slice(i, Math.Min(block, gradients.Length - i)));
        }

        return sum;
    }

    /// <summary>The factor min(1, maxNorm / (norm + 1e-6)) that clipping multiplies every gradient by (PyTorch's rule).</summary>
    /// <param name="norm">The global norm.</param>
    /// <param name="maxNorm">The maximum norm; 0 = no clipping (factor 1).</param>
    /// <returns>The factor in (0, 1].</returns>
    public static double ClipFactor(double norm, double maxNorm) =>
        maxNorm <= 0 ? 1 : Math.Min(1, maxNorm / (norm + 1e-6));

    /// <summary>Scales <paramref name="gradients"/> in place so that their global norm is at most <paramref name="maxNorm"/>.</summary>
    /// <param name="gradients">The gradients (scaled in place).</param>
    /// <param name="maxNorm">The maximum norm; 0 = no clipping.</param>
    /// <returns>The norm before clipping.</returns>
    public static double ClipByGlobalNorm(Span<float> gradients, double maxNorm)
    {
        var norm = GlobalNorm(gradients);
        var factor = ClipFactor(norm, maxNorm);
        if (factor < 1)
        {
            TensorPrimitives.Multiply(gradients, (float)factor, gradients);
        }

        return norm;
    }
}
