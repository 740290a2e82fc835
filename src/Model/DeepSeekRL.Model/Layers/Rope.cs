using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Layers;

// RoPE frequencies with the YaRN correction (reference §4.1, §4.4), the cos/sin table for every position, and the
// softmax scale with the YaRN mscale (§4.5). The rotation itself is Ops.RopeInterleaved (or Ops.RopeHalf for
// rope_interleave = false checkpoints, §4.3); this file holds no weights.

/// <summary>RoPE tables for the decoupled rope channels (d_r of them), with YaRN when <c>rope_scaling</c> is set.</summary>
/// <remarks>
/// YaRN is applied whenever the config has <c>rope_scaling</c> (HF's rule), not only when the context exceeds the
/// original one (the DeepSeek reference's rule; reference §4.5 AMBIGUITY). Cos and sin are multiplied by HF's
/// <c>attention_factor</c> = mscale(s, mscale) / mscale(s, mscale_all_dim) when both are set (1 for V3), and the
/// softmax scale by mscale(s, mscale_all_dim)² when <c>mscale_all_dim</c> is non-zero.
/// </remarks>
public sealed class Rope
{
    /// <summary>Builds the tables for positions 0 … <paramref name="maxPositions"/>−1.</summary>
    /// <param name="config">The config.</param>
    /// <param name="maxPositions">The number of positions.</param>
    public Rope(DeepSeekV3Config config, int maxPositions)
    {
        ArgumentNullException.ThrowIfNull(config);
        Half = config.QkRopeHeadDim / 2;
        Interleaved = config.RopeInterleave;
        MaxPositions = maxPositions;
        Frequencies = ComputeFrequencies(config);
        var attentionFactor = 1.0;
        var scale = 1.0 / Math.Sqrt(config.QkHeadDim);
        if (config.RopeScaling is { } y)
        {
            if (y.Mscale != 0 && y.MscaleAllDim != 0)
            {
                attentionFactor = YarnMscale(y.Factor, y.Mscale) / YarnMscale(y.Factor, y.MscaleAllDim);
            }

            if (y.MscaleAllDim != 0)
            {
                var m = YarnMscale(y.Factor, y.MscaleAllDim);
                scale *= m * m;
            }
        }

        SoftmaxScale = (float)scale;
        Cos = new float[maxPositions * Half];
        Sin = new float[maxPositions * Half];
        for (var p = 0; p < maxPositions; p++)
        {
            for (var i = 0; i < Half; i++)
            {
                var phi = p * Frequencies[i];
                Cos[p * Half + i] = (float)(Math.Cos(phi) * attentionFactor);
                Sin[p * Half + i] = (float)(Math.Sin(phi) * attentionFactor);
            }
        }
    }

    /// <summary>d_r / 2, the number of rotated pairs.</summary>
    public int Half { get; }

    /// <summary>
    /// Whether the stored rope channels are interleaved pairs (<c>rope_interleave</c> = true, the DeepSeek layout) or
    /// halves (false: HF rotate-half on the stored weights). q·k is the same model either way for matching weights.
    /// </summary>
    public bool Interleaved { get; }

    /// <summary>The number of positions in the tables.</summary>
    public int MaxPositions { get; }

    /// <summary>f'_i, the (YaRN-corrected) frequency of pair i (d_r/2).</summary>
    public double[] Frequencies { get; }

    /// <summary>τ: d_qk^(-1/2), times mscale² under YaRN.</summary>
    public float SoftmaxScale { get; }

    /// <summary>cos φ_{p,i}, (maxPositions, d_r/2).</summary>
    public float[] Cos { get; }

    /// <summary>sin φ_{p,i}, (maxPositions, d_r/2).</summary>
    public float[] Sin { get; }

    /// <summary>Rotates one rope slice (d_r) at position <paramref name="p"/> in place.</summary>
    /// <param name="x">The slice.</param>
    /// <param name="p">The absolute position.</param>
    public void Apply(Span<float> x, int p)
    {
        if (Interleaved)
        {
            Kernels.Ops.RopeInterleaved(x, Cos.AsSpan(p * Half, Half), Sin.AsSpan(p * Half, Half));
        }
        else
        {
            Kernels.Ops.RopeHalf(x, Cos.AsSpan(p * Half, Half), Sin.AsSpan(p * Half, Half));
        }
    }

    /// <summary>YaRN's m = 0.1·mscale·ln(s) + 1 (1 when s ≤ 1).</summary>
    /// <param name="factor">s.</param>
    /// <param name="mscale">mscale.</param>
    /// <returns>m.</returns>
    public static double YarnMscale(double factor, double mscale) => factor <= 1 ? 1.0 : 0.1 * mscale * Math.Log(factor) + 1.0;

    /// <summary>The pair frequencies: θ^(−2i/d_r), blended toward f/s by the YaRN ramp (reference §4.4).</summary>
    /// <param name="config">The config.</param>
    /// <returns>f'_i for i = 0 … d_r/2 − 1.</returns>
    public static double[] ComputeFrequencies(DeepSeekV3Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var dr = config.QkRopeHeadDim;
        var f = new double[dr / 2];
        for (var i = 0; i < f.Length; i++)
        {
            f[i] = Math.Pow(config.RopeTheta, -2.0 * i / dr);
        }

        if (config.RopeScaling is not { } y)
        {
            return f;
        }

        var (low, high) = YarnRange(dr, config.RopeTheta, y.OriginalMaxPositionEmbeddings, y.BetaFast, y.BetaSlow);
        for (var i = 0; i < f.Length; i++)
        {
            var ramp = Math.Clamp((i - low) / (high - low), 0.0, 1.0);
            var keep = 1 - ramp;
            f[i] = f[i] * keep + f[i] / y.Factor * (1 - keep);
        }

        return f;
    }

    /// <summary>The YaRN correction range [low, high] in pair indices (reference §4.4 steps 1-2).</summary>
    /// <param name="dr">d_r.</param>
    /// <param name="theta">θ_base.</param>
    /// <param name="original">L_orig.</param>
    /// <param name="betaFast">β_fast.</param>
    /// <param name="betaSlow">β_slow.</param>
    /// <returns>low and high (high bumped by 0.001 when equal).</returns>
    public static (double Low, double High) YarnRange(int dr, double theta, int original, double betaFast, double betaSlow)
    {
        double Corr(double rotations) => dr * Math.Log(original / (2 * Math.PI * rotations)) / (2 * Math.Log(theta));
        var low = Math.Max(Math.Floor(Corr(betaFast)), 0);
        var high = Math.Min(Math.Ceiling(Corr(betaSlow)), dr - 1);
        if (low == high)
        {
            high += 0.001;
        }

        return (low, high);
    }
}
