using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace DeepSeekRL.Model.Layers;

// The DeepSeekMoE router for one token (reference §7.1-7.4): sigmoid scores, bias for selection only, group-limited
// top-k with top-2 group sums and −∞ masking, normalised weights × route scale. No experts and no backward here.

/// <summary>Selects a token's experts and their combine weights.</summary>
public static class MoeRouter
{
    /// <summary>Routes one token.</summary>
    /// <param name="logits">l = W_g x (E).</param>
    /// <param name="bias">b, <c>e_score_correction_bias</c> (E); used for selection only.</param>
    /// <param name="groups">G, <c>n_group</c>.</param>
    /// <param name="keptGroups">G_k, <c>topk_group</c>.</param>
    /// <param name="routeScale">R, <c>routed_scaling_factor</c>.</param>
    /// <param name="normalise"><c>norm_topk_prob</c>: divide by the sum of the selected scores.</param>
    /// <param name="experts">The selected experts (K), in selection order (best first; ties to the lower index).</param>
    /// <param name="weights">Their combine weights (K), from the unbiased scores.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Route(ReadOnlySpan<float> logits, ReadOnlySpan<float> bias, int groups, int keptGroups, float routeScale, bool normalise, Span<int> experts, Span<float> weights)
    {
        var e = logits.Length;
        var k = experts.Length;
        Span<float> s = e <= 512 ? stackalloc float[e] : new float[e];
        Span<float> sel = e <= 512 ? stackalloc float[e] : new float[e];
        TensorPrimitives.Sigmoid(logits, s);            // s_e = σ(l_e)
        TensorPrimitives.Add(s, bias, sel);              // ŝ_e = s_e + b_e (selection only)

        if (groups > 1 && keptGroups < groups)
        {
            // Group score = sum of the top-2 ŝ in the group; keep the best G_k groups, mask the rest with −∞.
            var size = e / groups;
            Span<float> groupScore = stackalloc float[groups];
            for (var g = 0; g < groups; g++)
            {
                float first = float.NegativeInfinity, second = float.NegativeInfinity;
                for (var j = g * size; j < (g + 1) * size; j++)
                {
                    var v = sel[j];
                    if (v > first)
                    {
                        second = first;
                        first = v;
                    }
                    else if (v > second)
                    {
                        second = v;
                    }
                }

                groupScore[g] = first + second;
            }

            Span<bool> kept = stackalloc bool[groups];
            for (var n = 0; n < keptGroups; n++)
            {
                var best = -1;
                for (var g = 0; g < groups; g++)
                {
                    if (!kept[g] && (best < 0 || groupScore[g] > groupScore[best]))
                    {
                        best = g;
                    }
                }

                kept[best] = true;
            }

            for (var g = 0; g < groups; g++)
            {
                if (!kept[g])
                {
                    sel.Slice(g * size, size).Fill(float.NegativeInfinity);
                }
            }
        }

        // Top-K over the masked ŝ (repeated argmax; K is small).
        float sum = 0;
        for (var n = 0; n < k; n++)
        {
            var best = -1;
            for (var j = 0; j < e; j++)
            {
                if (!float.IsNaN(sel[j]) && (best < 0 || sel[j] > sel[best]))
                {
                    best = j;
                }
            }

            experts[n] = best;
            sel[best] = float.NaN; // taken
            weights[n] = s[best];
            sum += s[best];
        }

        // w_e = R · s_e / Σ_S s_j (reference §7.4; no epsilon, as the reference).
        var scale = normalise ? routeScale / sum : routeScale;
        for (var n = 0; n < k; n++)
        {
            weights[n] *= scale;
        }
    }
}
