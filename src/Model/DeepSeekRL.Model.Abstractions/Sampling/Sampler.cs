using System.Numerics.Tensors;

namespace DeepSeekRL.Model.Sampling;

// Turns one row of logits into a token (temperature, top-k, top-p, seeded draws) and into the processed distribution
// speculative decoding needs. It owns its scratch (no allocation per token) and knows nothing about the model.

/// <summary>A seeded SplitMix64 stream: reproducible on every machine.</summary>
/// <param name="state">The initial state.</param>
public struct SplitMix64(ulong state)
{
    private ulong _state = state;

    private const ulong Gamma = 0x9E3779B97F4A7C15UL;

    /// <summary>
    /// A stream for sequence <paramref name="index"/> of a run seeded with <paramref name="seed"/>: its state is the
    /// full SplitMix64 hash of (seed, index), so the streams of one seed are unrelated. (A state of
    /// <c>seed ^ gamma * (index + 1)</c>, as before, made stream i of seed 0 stream 0 shifted by i draws.)
    /// </summary>
    /// <param name="seed">The run seed.</param>
    /// <param name="index">The sequence index.</param>
    /// <returns>The stream.</returns>
    public static SplitMix64 ForSequence(ulong seed, int index) =>
        new(Mix(Mix(seed + Gamma) + (Gamma * ((ulong)(uint)index + 1))));

    /// <summary>SplitMix64's output function (Stafford's Mix13): a bijection of 64-bit words with full avalanche.</summary>
    /// <param name="z">The word.</param>
    /// <returns>The mixed word.</returns>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The next 64 random bits.</summary>
    /// <returns>The bits.</returns>
    public ulong NextUInt64()
    {
        _state += Gamma;
        return Mix(_state);
    }

    /// <summary>A uniform double in [0, 1).</summary>
    /// <returns>The value.</returns>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}

/// <summary>Samples tokens from logits. One instance per thread; it reuses its scratch.</summary>
/// <param name="vocab">V.</param>
public sealed class Sampler(int vocab)
{
    private readonly float[] _probs = new float[vocab];
    private readonly float[] _sorted = new float[vocab];
    private readonly int[] _order = new int[vocab];

    /// <summary>V.</summary>
    public int Vocab => _probs.Length;

    /// <summary>
    /// Writes the processed distribution: softmax(logits / T) restricted to the top-k and then to the top-p nucleus and
    /// renormalised; one-hot at the argmax when T = 0.
    /// </summary>
    /// <param name="logits">The logits (V).</param>
    /// <param name="options">The options.</param>
    /// <param name="probs">The distribution (V).</param>
    public void Distribution(ReadOnlySpan<float> logits, SamplingOptions options, Span<float> probs)
    {
        ArgumentNullException.ThrowIfNull(options);
        var v = logits.Length;
        if (options.Temperature == 0)
        {
            probs[..v].Clear();
            probs[TensorPrimitives.IndexOfMax(logits)] = 1f;
            return;
        }

        TensorPrimitives.Multiply(logits, 1f / options.Temperature, probs);
        TensorPrimitives.SoftMax(probs[..v], probs);
        var k = options.TopK is > 0 && options.TopK < v ? options.TopK : v;
        if (k == v && options.TopP >= 1f)
        {
            return;
        }

        // Sort by descending probability (stable ties to the lower id), keep the top-k, then the nucleus.
        var keys = _sorted.AsSpan(0, v);
        var order = _order.AsSpan(0, v);
        for (var i = 0; i < v; i++)
        {
            keys[i] = -probs[i];
            order[i] = i;
        }

        keys.Sort(order);
        var kept = k;
        if (options.TopP < 1f)
        {
            double mass = 0;
            for (var i = 0; i < k; i++)
            {
                mass -= keys[i];
                if (mass >= options.TopP)
                {
                    kept = i + 1;
                    break;
                }
            }
        }

        double total = 0;
        for (var i = 0; i < kept; i++)
        {
            total -= keys[i];
        }

        probs[..v].Clear();
        var scale = (float)(1.0 / total);
        for (var i = 0; i < kept; i++)
        {
            probs[order[i]] = -keys[i] * scale;
        }
    }

    /// <summary>Draws a token.</summary>
    /// <param name="logits">The logits (V).</param>
    /// <param name="options">The options.</param>
    /// <param name="rng">The sequence's random stream (advanced by one draw unless greedy).</param>
    /// <returns>The token id.</returns>
    public int Sample(ReadOnlySpan<float> logits, SamplingOptions options, ref SplitMix64 rng)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Temperature == 0)
        {
            return TensorPrimitives.IndexOfMax(logits);
        }

        var probs = _probs.AsSpan(0, logits.Length);
        Distribution(logits, options, probs);
        return Draw(probs, ref rng);
    }

    /// <summary>Inverse-CDF draw from a distribution (zeros are never drawn).</summary>
    /// <param name="probs">The distribution.</param>
    /// <param name="rng">The random stream.</param>
    /// <returns>The index.</returns>
    public static int Draw(ReadOnlySpan<float> probs, ref SplitMix64 rng)
    {
        var u = rng.NextDouble() * TensorPrimitives.Sum(probs);
        double cumulative = 0;
        var last = -1;
        for (var i = 0; i < probs.Length; i++)
        {
            if (probs[i] <= 0)
            {
                continue;
            }

            last = i;
            cumulative += probs[i];
            if (u < cumulative)
            {
                return i;
            }
        }

        return last;
    }
}
