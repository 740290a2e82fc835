using System.Numerics;

namespace DeepSeekRL.Model.Optimization;

// DeepSeek-V3 load balancing (reference doc §9): the auxiliary-loss-free bias update applied after each step, the
// complementary sequence-wise balance loss with its gradient w.r.t. the gate scores, and per-expert load metrics.
// Not here: routing itself (Layers/MoeRouter) and the chain from gate scores into W_g (the MoE backward).

/// <summary>Per-expert load of one MoE layer over one step's batch.</summary>
/// <param name="Load">The number of (token, slot) assignments per expert.</param>
/// <param name="Total">Σ load = tokens·K.</param>
/// <param name="Mean">Total / E.</param>
/// <param name="Min">The smallest load.</param>
/// <param name="Max">The largest load.</param>
/// <param name="MaxViolation">(Max − Mean) / Mean, "MaxVio" of Wang et al. 2024 (0 = perfectly balanced; 0 when Total = 0).</param>
/// <param name="CoefficientOfVariation">Population std of the loads / Mean (0 when Total = 0).</param>
public sealed record ExpertLoadStatistics(float[] Load, double Total, double Mean, double Min, double Max, double MaxViolation, double CoefficientOfVariation);

/// <summary>The auxiliary-loss-free bias update, the sequence-wise balance loss and load statistics.</summary>
public static class ExpertLoadBalancing
{
    /// <summary>Adds one to <paramref name="load"/>[e] for every assignment e in <paramref name="experts"/> (accumulates).</summary>
    /// <param name="experts">The chosen experts, [tokens, K] flattened (MoeRouter's output), each in [0, E).</param>
    /// <param name="load">The per-expert counts [E] (accumulated, so several micro-batches add up to the step's load).</param>
    /// <exception cref="ArgumentOutOfRangeException">An expert id is outside [0, E).</exception>
    public static void CountLoad(ReadOnlySpan<int> experts, Span<float> load)
    {
        foreach (var e in experts)
        {
            if ((uint)e >= (uint)load.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(experts), e, $"expert id outside [0, {load.Length})");
            }

            load[e] += 1;
        }
    }

    /// <summary>
    /// The auxiliary-loss-free update (reference doc §9.1, V3 report §2.1.2): b_e ← b_e + γ·sign(mean − load_e), so an
    /// overloaded expert's bias goes down by γ and an underloaded one's up by γ; exact equality leaves it unchanged.
    /// </summary>
    /// <param name="load">The step's per-expert load [E] over the whole batch (see <see cref="CountLoad"/>).</param>
    /// <param name="bias">The layer's <c>e_score_correction_bias</c> [E] (updated in place; not an optimizer parameter).</param>
    /// <param name="gamma">The bias update speed γ (V3: 0.001, then 0 for the last 500B tokens); &gt;= 0.</param>
    /// <exception cref="ArgumentException">The lengths differ or γ is negative.</exception>
    public static void UpdateBias(ReadOnlySpan<float> load, Span<float> bias, float gamma)
    {
        if (load.Length != bias.Length)
        {
            throw new ArgumentException($"load has {load.Length} experts, bias {bias.Length}", nameof(bias));
        }

        if (!(gamma >= 0))
        {
            throw new ArgumentException($"gamma = {gamma}: expected >= 0", nameof(gamma));
        }

        double total = 0;
        foreach (var l in load)
        {
            total += l;
        }

        var mean = total / load.Length;
        for (var e = 0; e < bias.Length; e++)
        {
            bias[e] += gamma * Math.Sign(mean - load[e]);
        }
    }

    /// <summary>Summarises a per-expert load vector.</summary>
    /// <param name="load">The per-expert load [E], E &gt;= 1.</param>
    /// <returns>The statistics (the load is copied).</returns>
    public static ExpertLoadStatistics Statistics(ReadOnlySpan<float> load)
    {
        if (load.IsEmpty)
        {
            throw new ArgumentException("no experts", nameof(load));
        }

        double total = 0, min = double.PositiveInfinity, max = double.NegativeInfinity;
        foreach (var l in load)
        {
            total += l;
            min = Math.Min(min, l);
            max = Math.Max(max, l);
        }

        var mean = total / load.Length;
        double variance = 0;
        foreach (var l in load)
        {
            variance += (l - mean) * (l - mean);
        }

        variance /= load.Length;
        return new ExpertLoadStatistics(load.ToArray(), total, mean, min, max,
            mean > 0 ? (max - mean) / mean : 0, mean > 0 ? Math.Sqrt(variance) / mean : 0);
    }

    /// <summary>
    /// The complementary sequence-wise balance loss of one sequence for one MoE layer (reference doc §9.2-9.3, V3
    /// report eqs. 17-20): L = α Σ_i f_i P_i with f_i = E/(K T) Σ_t 1[i ∈ chosen(t)], P_i = (1/T) Σ_t s_{i,t} / Σ_j s_{j,t}.
    /// </summary>
    /// <typeparam name="T">float or double.</typeparam>
    /// <param name="scores">The sigmoid gate scores s [T, E] (unbiased, before selection).</param>
    /// <param name="experts">The experts actually chosen per token [T, K] (with the bias and group limit: the doc's
    /// AMBIGUITY, resolved as "the experts really used").</param>
    /// <param name="numExperts">E.</param>
    /// <param name="alpha">α (V3: 1e-4). For a batch of B sequences pass α / B to get the batch mean.</param>
    /// <param name="dScores">dL/ds [T, E], accumulated (+=); f is a constant (selection is not differentiable).</param>
    /// <returns>L.</returns>
    public static T SequenceBalanceLoss<T>(ReadOnlySpan<T> scores, ReadOnlySpan<int> experts, int numExperts, T alpha, Span<T> dScores)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numExperts, 1);
        if (scores.Length % numExperts != 0 || dScores.Length != scores.Length)
        {
            throw new ArgumentException($"scores ({scores.Length}) and dScores ({dScores.Length}) must both be [T, {numExperts}]");
        }

        var tokens = scores.Length / numExperts;
        if (tokens == 0)
        {
            return T.Zero;
        }

        if (experts.Length % tokens != 0)
        {
            throw new ArgumentException($"experts ({experts.Length}) is not [T = {tokens}, K]", nameof(experts));
        }

        var k = experts.Length / tokens;
        Span<T> f = numExperts <= 256 ? stackalloc T[numExperts] : new T[numExperts];
        Span<T> p = numExperts <= 256 ? stackalloc T[numExperts] : new T[numExperts];
        f.Clear();
        p.Clear();
        var tt = T.CreateChecked(tokens);
        var fScale = T.CreateChecked(numExperts) / (T.CreateChecked(k) * tt);
        foreach (var e in experts)
        {
            if ((uint)e >= (uint)numExperts)
            {
                throw new ArgumentOutOfRangeException(nameof(experts), e, $"expert id outside [0, {numExperts})");
            }

            f[e] += fScale;
        }

        for (var t = 0; t < tokens; t++)
        {
            var s = scores.Slice(t * numExperts, numExperts);
            var z = Sum(s);
            for (var i = 0; i < numExperts; i++)
            {
                p[i] += s[i] / z;
            }
        }

        var loss = T.Zero;
        for (var i = 0; i < numExperts; i++)
        {
            loss += f[i] * p[i] / tt;
        }

        // §9.3: with g_i = α f_i / T and Z_t = Σ_j s_{j,t}: ds_{m,t} = (g_m − Σ_i g_i s_{i,t}/Z_t) / Z_t.
        for (var t = 0; t < tokens; t++)
        {
            var s = scores.Slice(t * numExperts, numExperts);
            var ds = dScores.Slice(t * numExperts, numExperts);
            var z = Sum(s);
            var dot = T.Zero;
            for (var i = 0; i < numExperts; i++)
            {
                dot += alpha * f[i] / tt * s[i] / z;
            }

            for (var m = 0; m < numExperts; m++)
            {
                ds[m] += ((alpha * f[m] / tt) - dot) / z;
            }
        }

        return alpha * loss;
    }

    /// <summary>Chains dL/ds into the gate logits for sigmoid scores: dl = ds · s (1 − s), accumulated (+=).</summary>
    /// <typeparam name="T">float or double.</typeparam>
    /// <param name="scores">s = σ(l), any shape.</param>
    /// <param name="dScores">dL/ds, same shape.</param>
    /// <param name="dLogits">dL/dl, same shape (accumulated).</param>
    public static void SigmoidBackward<T>(ReadOnlySpan<T> scores, ReadOnlySpan<T> dScores, Span<T> dLogits)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (dScores.Length != scores.Length || dLogits.Length != scores.Length)
        {
            throw new ArgumentException($"scores ({scores.Length}), dScores ({dScores.Length}) and dLogits ({dLogits.Length}) must have one length");
        }

        for (var i = 0; i < scores.Length; i++)
        {
            dLogits[i] += dScores[i] * scores[i] * (T.One - scores[i]);
        }
    }

    private static T Sum<T>(ReadOnlySpan<T> values)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var sum = T.Zero;
        foreach (var x in values)
        {
            sum += x;
        }

        return sum;
    }
}
