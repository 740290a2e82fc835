using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace DeepSeekRL.Model.PolicyLosses;

// Per-token log-probabilities of given completion tokens under logits, log softmax(z/τ)[target], with the entropy of
// each row as a by-product and the backward into the logits. Generic over float (the engine) and double (gradient
// checks). It does not slice prompts from completions: the caller passes the rows that predict completion tokens.

/// <summary>log π(target | row) from logits, its entropy, and the gradient back into the logits.</summary>
public static class TokenLogProbs
{
    /// <summary>logp[n] = log softmax(logits[n]/τ)[targets[n]], and optionally the entropy H[n] of that softmax.</summary>
    /// <typeparam name="T">float or double.</typeparam>
    /// <param name="logits">The logits [N, V].</param>
    /// <param name="targets">The token whose log-prob is wanted, [N], each in [0, V).</param>
    /// <param name="vocabSize">V.</param>
    /// <param name="logProbs">The log-probs [N] (overwritten).</param>
    /// <param name="entropies">The entropies [N] (overwritten), or empty to skip.</param>
    /// <param name="temperature">τ &gt; 0, the sampling temperature the completions were drawn with (TRL divides by it). Default 1.</param>
    public static void Forward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> targets, int vocabSize, Span<T> logProbs, Span<T> entropies, double temperature = 1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var n = Check(logits, targets, vocabSize, logProbs.Length, temperature);
        if (!entropies.IsEmpty && entropies.Length != n)
        {
            throw new ArgumentException($"entropies has {entropies.Length} rows, expected {n} or none", nameof(entropies));
        }

        var invTau = T.CreateChecked(1 / temperature);
        var pool = ArrayPool<T>.Shared;
        var x = pool.Rent(vocabSize);
        var e = pool.Rent(vocabSize);
        try
        {
            var xs = x.AsSpan(0, vocabSize);
            var es = e.AsSpan(0, vocabSize);
            for (var row = 0; row < n; row++)
            {
                // xs = z/τ − max (shifted, so exp cannot overflow); logZ' = log Σ exp(xs).
                TensorPrimitives.Multiply(logits.Slice(row * vocabSize, vocabSize), invTau, xs);
                TensorPrimitives.Subtract(xs, TensorPrimitives.Max<T>(xs), xs);
                TensorPrimitives.Exp<T>(xs, es);
                var sum = TensorPrimitives.Sum<T>(es);
                var logZ = T.Log(sum);
                logProbs[row] = xs[targets[row]] - logZ;
                if (!entropies.IsEmpty)
                {
                    // H = −Σ p log p = logZ' − Σ p xs with p = exp(xs)/Σ.
                    entropies[row] = logZ - (TensorPrimitives.Dot<T>(es, xs) / sum);
                }
            }
        }
        finally
        {
            pool.Return(x);
            pool.Return(e);
        }
    }

    /// <summary>dlogits[n, v] += dlogp[n] · (1[v = target] − p_v) / τ: the backward of <see cref="Forward"/> (accumulates).</summary>
    /// <typeparam name="T">float or double.</typeparam>
    /// <param name="logits">The logits [N, V] of the forward.</param>
    /// <param name="targets">The targets [N].</param>
    /// <param name="vocabSize">V.</param>
    /// <param name="dLogProbs">dLoss/dlogp [N] (e.g. from <see cref="PolicyLoss.Compute"/>).</param>
    /// <param name="dLogits">dLoss/dlogits [N, V] (accumulated).</param>
    /// <param name="temperature">τ of the forward. Default 1.</param>
    public static void Backward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> targets, int vocabSize, ReadOnlySpan<T> dLogProbs, Span<T> dLogits, double temperature = 1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var n = Check(logits, targets, vocabSize, dLogProbs.Length, temperature);
        if (dLogits.Length != logits.Length)
        {
            throw new ArgumentException($"dLogits has {dLogits.Length} elements, the logits {logits.Length}", nameof(dLogits));
        }

        var invTau = T.CreateChecked(1 / temperature);
        var pool = ArrayPool<T>.Shared;
        var x = pool.Rent(vocabSize);
        try
        {
            var xs = x.AsSpan(0, vocabSize);
            for (var row = 0; row < n; row++)
            {
                var g = dLogProbs[row];
                if (g == T.Zero)
                {
                    continue;
                }

                TensorPrimitives.Multiply(logits.Slice(row * vocabSize, vocabSize), invTau, xs);
                TensorPrimitives.Subtract(xs, TensorPrimitives.Max<T>(xs), xs);
                TensorPrimitives.Exp<T>(xs, xs);
                var scale = -g * invTau / TensorPrimitives.Sum<T>(xs);

                // dz_v += −g p_v / τ for every v, then + g/τ at the target.
                var d = dLogits.Slice(row * vocabSize, vocabSize);
                TensorPrimitives.MultiplyAdd<T>(xs, scale, d, d);
                d[targets[row]] += g * invTau;
            }
        }
        finally
        {
            pool.Return(x);
        }
    }

    private static int Check<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> targets, int vocabSize, int rows, double temperature)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        if (!(temperature > 0) || double.IsInfinity(temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "expected a finite temperature > 0");
        }

        var n = targets.Length;
        if (logits.Length != (long)n * vocabSize || rows != n)
        {
            throw new ArgumentException($"logits ({logits.Length}) must be [N = {n}, V = {vocabSize}] and the per-row buffer ({rows}) [N]");
        }

        foreach (var t in targets)
        {
            if ((uint)t >= (uint)vocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(targets), t, $"target outside [0, {vocabSize})");
            }
        }

        return n;
    }
}
