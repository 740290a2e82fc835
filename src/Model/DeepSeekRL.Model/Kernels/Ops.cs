using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DeepSeekRL.Model.Kernels;

// Elementwise and row kernels of the forward pass (RMSNorm, SwiGLU, interleaved RoPE, masked softmax), as static
// methods over spans that allocate nothing. Matrix products are not here (see Blas); backward kernels come later.

/// <summary>Row kernels over spans: RMSNorm, SiLU-gated products, interleaved RoPE, softmax.</summary>
public static class Ops
{
    /// <summary>y = w ⊙ x · (mean(x²) + eps)^(-1/2) (reference §3).</summary>
    /// <param name="x">The input row (n).</param>
    /// <param name="w">The weight (n).</param>
    /// <param name="eps">The epsilon.</param>
    /// <param name="y">The output row (n); may alias <paramref name="x"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps, Span<float> y)
    {
        var ms = TensorPrimitives.SumOfSquares(x) / x.Length;
        var r = 1f / MathF.Sqrt(ms + eps);
        TensorPrimitives.Multiply(x, r, y);
        TensorPrimitives.Multiply(y[..x.Length], w, y);
    }

    /// <summary>RMSNorm applied to each of <paramref name="rows"/> rows of width n, with row strides.</summary>
    /// <param name="x">Input rows.</param>
    /// <param name="ldx">Stride of the input rows.</param>
    /// <param name="w">The weight (n).</param>
    /// <param name="eps">The epsilon.</param>
    /// <param name="y">Output rows.</param>
    /// <param name="ldy">Stride of the output rows.</param>
    /// <param name="rows">The number of rows.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RmsNormRows(ReadOnlySpan<float> x, int ldx, ReadOnlySpan<float> w, float eps, Span<float> y, int ldy, int rows)
    {
        var n = w.Length;
        for (var i = 0; i < rows; i++)
        {
            RmsNorm(x.Slice(i * ldx, n), w, eps, y.Slice(i * ldy, n));
        }
    }

    /// <summary>h = silu(g) ⊙ u with silu(a) = a·σ(a) (reference §6).</summary>
    /// <param name="g">The gate projection (n).</param>
    /// <param name="u">The up projection (n).</param>
    /// <param name="h">The output (n); must not alias <paramref name="g"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SiluMul(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> h)
    {
        TensorPrimitives.Sigmoid(g, h);
        TensorPrimitives.Multiply(h[..g.Length], g, h);
        TensorPrimitives.Multiply(h[..g.Length], u, h);
    }

    /// <summary>
    /// Interleaved-pair RoPE in place (reference §4.2): (x[2i], x[2i+1]) rotated by the angle whose cosine and sine
    /// are <paramref name="cos"/>[i] and <paramref name="sin"/>[i].
    /// </summary>
    /// <param name="x">The rope slice (d_r), rotated in place.</param>
    /// <param name="cos">cos φ_i (d_r/2).</param>
    /// <param name="sin">sin φ_i (d_r/2).</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RopeInterleaved(Span<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        var half = cos.Length;
        for (var i = 0; i < half; i++)
        {
            float a = x[2 * i], b = x[2 * i + 1], c = cos[i], s = sin[i];
            x[2 * i] = a * c - b * s;
            x[2 * i + 1] = a * s + b * c;
        }
    }

    /// <summary>
    /// Rotate-half RoPE in place (HF layout with <c>rope_interleave</c> = false, reference §4.3): the pairs
    /// (x[i], x[i + d_r/2]) rotated by φ_i.
    /// </summary>
    /// <param name="x">The rope slice (d_r), rotated in place.</param>
    /// <param name="cos">cos φ_i (d_r/2).</param>
    /// <param name="sin">sin φ_i (d_r/2).</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RopeHalf(Span<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        var half = cos.Length;
        for (var i = 0; i < half; i++)
        {
            float a = x[i], b = x[i + half], c = cos[i], s = sin[i];
            x[i] = a * c - b * s;
            x[i + half] = a * s + b * c;
        }
    }

    /// <summary>Softmax over the first <paramref name="valid"/> entries of a row; the rest (masked, −∞) become 0.</summary>
    /// <param name="row">The scores, replaced by probabilities.</param>
    /// <param name="valid">How many leading entries are unmasked (at least 1).</param>
    /// <remarks>
    /// Fused: one pass for the max, one for exp(x − max) and its sum, one to scale. TensorPrimitives has no fused
    /// exp-and-sum, and its separate Subtract/Exp/Sum passes measured several times slower inside attention.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MaskedSoftmax(Span<float> row, int valid)
    {
        var live = row[..valid];
        var max = TensorPrimitives.Max(live);
        var sum = ExpSubtractSum(live, max);
        TensorPrimitives.Multiply(live, 1f / sum, live);
        row[valid..].Clear();
    }

    /// <summary>x ← exp(x − shift) in place for x ≤ shift (inputs below shift − 87.3 flush to about 1e-38); returns Σ x.</summary>
    /// <param name="x">The values (at most <paramref name="shift"/>).</param>
    /// <param name="shift">The value subtracted first (the row max).</param>
    /// <returns>The sum of the results.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float ExpSubtractSum(Span<float> x, float shift)
    {
        var i = 0;
        var sum = 0f;
        if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
        {
            ref var r = ref MemoryMarshal.GetReference(x);
            var acc = Vector256<float>.Zero;
            var s = Vector256.Create(shift);
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var e = ExpNonPositive(Vector256.LoadUnsafe(ref r, (nuint)i) - s);
                e.StoreUnsafe(ref r, (nuint)i);
                acc += e;
            }

            sum = Vector256.Sum(acc);
        }

        for (; i < x.Length; i++)
        {
            x[i] = MathF.Exp(x[i] - shift);
            sum += x[i];
        }

        return sum;
    }

    /// <summary>
    /// e^x for x ≤ 0 (clamped at −87.3): x = n·ln2 + r with |r| ≤ ln2/2, e^r by its degree-6 Taylor polynomial
    /// (remainder below 1.3e-7 relative), times 2^n built in the exponent bits.
    /// </summary>
    /// <param name="x">The exponents.</param>
    /// <returns>e^x.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ExpNonPositive(Vector256<float> x)
    {
        x = Vector256.Max(x, Vector256.Create(-87.3f));
        var n = Vector256.Round(x * Vector256.Create(1.44269504f));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-0.693145752f), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-1.42860677e-6f), r);
        var p = Vector256.Create(1f / 720);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 120));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 24));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(0.5f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        var scale = (Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23;
        return p * scale.AsSingle();
    }

    /// <summary>log_softmax(logits)[index], computed stably in double.</summary>
    /// <param name="logits">The logits.</param>
    /// <param name="index">The index.</param>
    /// <returns>The log-probability.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double LogSoftmaxAt(ReadOnlySpan<float> logits, int index)
    {
        var max = TensorPrimitives.Max(logits);
        double sum = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            sum += Math.Exp(logits[i] - max);
        }

        return logits[index] - max - Math.Log(sum);
    }
}
