namespace DeepSeekRL.Model.PolicyLosses;

// The GRPO-family policy loss (reference rl-and-rewards.md §2; TRL GRPOTrainer._compute_loss arithmetic) over a
// padded [B, T] batch of completion tokens: clipped surrogate (token or GSPO sequence ratio, optional dual clip), KL
// to a reference, off-policy sequence mask, four aggregations. It returns the loss, dLoss/dlogp_θ per token (for
// TokenLogProbs.Backward) and the metrics. Computed in double: the token count is small next to the model's work.

/// <summary>The per-token inputs of <see cref="PolicyLoss.Compute"/>, all [B, T] row-major except the advantages [B].</summary>
/// <remarks>Built through the constructor; the optional log-probs are set with <c>init</c> and default to empty.</remarks>
public readonly ref struct PolicyLossInputs
{
    /// <summary>Creates the required inputs.</summary>
    /// <param name="sequences">B, the number of completions.</param>
    /// <param name="length">T, the padded completion length.</param>
    /// <param name="logProbs">logp_θ [B, T] of the completion tokens under the policy being trained.</param>
    /// <param name="mask">The completion-token mask m [B, T]: 1 for a real token, 0 for padding.</param>
    /// <param name="advantages">A [B], one per completion (<see cref="Advantages.Compute"/>).</param>
    public PolicyLossInputs(int sequences, int length, ReadOnlySpan<double> logProbs, ReadOnlySpan<double> mask, ReadOnlySpan<double> advantages)
    {
        Sequences = sequences;
        Length = length;
        LogProbs = logProbs;
        Mask = mask;
        Advantages = advantages;
    }

    /// <summary>B.</summary>
    public int Sequences { get; }

    /// <summary>T.</summary>
    public int Length { get; }

    /// <summary>logp_θ [B, T].</summary>
    public ReadOnlySpan<double> LogProbs { get; }

    /// <summary>m [B, T].</summary>
    public ReadOnlySpan<double> Mask { get; }

    /// <summary>A [B].</summary>
    public ReadOnlySpan<double> Advantages { get; }

    /// <summary>logp_old [B, T] of the policy the ratio is taken against. Empty (default): on-policy, logp_old = logp_θ held constant (ρ = 1, TRL's <c>detach</c>).</summary>
    public ReadOnlySpan<double> OldLogProbs { get; init; }

    /// <summary>logp_ref [B, T] of the reference policy. Needed only when β &gt; 0; when given with β = 0 only the KL metric uses it.</summary>
    public ReadOnlySpan<double> ReferenceLogProbs { get; init; }

    /// <summary>logp [B, T] of the policy that sampled the completions (the rollout worker). Empty (default): no off-policy correction.</summary>
    public ReadOnlySpan<double> SamplingLogProbs { get; init; }

    /// <summary>Per-token entropies [B, T] (from <see cref="TokenLogProbs.Forward"/>), for the entropy metric only. Empty: metric NaN.</summary>
    public ReadOnlySpan<double> Entropies { get; init; }
}

/// <summary>The loss and the step's policy metrics.</summary>
/// <param name="Loss">The aggregated loss (policy term + β·KL).</param>
/// <param name="ActiveTokens">Σ m.</param>
/// <param name="MeanKl">Masked mean of the chosen KL estimator; NaN when no reference log-probs were given.</param>
/// <param name="MeanEntropy">Masked mean entropy; NaN when no entropies were given.</param>
/// <param name="MeanRatio">Masked mean of the importance ratio (token or sequence).</param>
/// <param name="ClipFractionLow">Masked fraction of tokens with ρ &lt; 1 − ε_low and A &lt; 0 (clipped from below; no gradient).</param>
/// <param name="ClipFractionHigh">Masked fraction of tokens with ρ &gt; 1 + ε_high and A &gt; 0 (clipped from above; no gradient).</param>
/// <param name="ClipFractionRegion">Low or high: the fraction outside the trust region.</param>
/// <param name="DualClipFraction">Masked fraction of tokens with A &lt; 0 and ρ &gt; δ (dual-clipped); 0 when off.</param>
/// <param name="OffPolicyMaskedFraction">Fraction of sequences masked by the off-policy correction (0 without sampling log-probs).</param>
public sealed record PolicyLossResult(
    double Loss,
    double ActiveTokens,
    double MeanKl,
    double MeanEntropy,
    double MeanRatio,
    double ClipFractionLow,
    double ClipFractionHigh,
    double ClipFractionRegion,
    double DualClipFraction,
    double OffPolicyMaskedFraction);

/// <summary>The GRPO / DAPO / Dr. GRPO / GSPO policy loss with its gradient w.r.t. logp_θ.</summary>
/// <remarks>
/// Per token: l = w_i · (−min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A) [, dual-clipped]) + β·KL, where w_i is the off-policy
/// weight (1 without sampling log-probs); then L = Σ c_{i,t} l_{i,t} with c the aggregation's mask weights. The
/// gradient treats logp_old, logp_ref, logp_sampling, A and w as constants. Thread-safe (no state).
/// </remarks>
public static class PolicyLoss
{
    /// <summary>Computes the loss, writes dLoss/dlogp_θ, and gathers the metrics.</summary>
    /// <param name="inputs">The batch.</param>
    /// <param name="options">The options (validated).</param>
    /// <param name="dLogProbs">dLoss/dlogp_θ [B, T] (overwritten; 0 on padding).</param>
    /// <returns>The loss and metrics.</returns>
    /// <exception cref="ArgumentException">Invalid options or inconsistent shapes (a bug in the caller).</exception>
    public static PolicyLossResult Compute(in PolicyLossInputs inputs, PolicyLossOptions options, Span<double> dLogProbs)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } error)
        {
            throw new ArgumentException(error, nameof(options));
        }

        int b = inputs.Sequences, t = inputs.Length, n = b * t;
        var lp = inputs.LogProbs;
        var mask = inputs.Mask;
        CheckLength(lp, n, "log_probs", required: true);
        CheckLength(mask, n, "mask", required: true);
        CheckLength(dLogProbs, n, "d_log_probs", required: true);
        CheckLength(inputs.Advantages, b, "advantages", required: true);
        CheckLength(inputs.OldLogProbs, n, "old_log_probs", required: false);
        CheckLength(inputs.ReferenceLogProbs, n, "reference_log_probs", required: options.Beta > 0);
        CheckLength(inputs.SamplingLogProbs, n, "sampling_log_probs", required: false);
        CheckLength(inputs.Entropies, n, "entropies", required: false);
        var old = inputs.OldLogProbs.IsEmpty ? lp : inputs.OldLogProbs;
        var reference = inputs.ReferenceLogProbs;
        var sampling = inputs.SamplingLogProbs;

        double active = 0;
        foreach (var m in mask)
        {
            active += m;
        }

        // The aggregation's weight per masked token: c_{i,t} = m_{i,t} · norm_i.
        var maxLength = options.MaxCompletionLength ?? t;
        double lowLimit = 1 - options.EpsilonLow, highLimit = 1 + options.EpsilonHigh;
        double loss = 0, klSum = 0, entropySum = 0, ratioSum = 0, low = 0, high = 0, dual = 0;
        var masked = 0;
        dLogProbs.Clear();
        for (var i = 0; i < b; i++)
        {
            var row = i * t;
            var mi = mask.Slice(row, t);
            double ni = 0;
            foreach (var m in mi)
            {
                ni += m;
            }

            var norm = options.Aggregation switch
            {
                LossAggregation.Grpo => 1 / (b * Math.Max(ni, 1)),
                LossAggregation.Bnpo => 1 / Math.Max(active, 1),
                LossAggregation.Dapo => 1 / (options.StepActiveTokens ?? Math.Max(active, 1)),
                _ => 1.0 / (b * (double)maxLength),
            };

            // Off-policy weight (TRL sequence_mask): ρ_seq against the sampling policy, 0 outside [min, max].
            var w = 1.0;
            if (!sampling.IsEmpty)
            {
                double diff = 0;
                for (var k = 0; k < t; k++)
                {
                    diff += mi[k] * (old[row + k] - sampling[row + k]);
                }

                w = Math.Exp(diff);
                if (w < options.OffPolicyMinRatio || w > options.OffPolicyMaxRatio)
                {
                    w = 0;
                    masked++;
                }
            }

            var a = inputs.Advantages[i];

            // GSPO: log s_i = Σ_t m (lp − old) / max(n_i, 1), one ratio for every token of the sequence.
            double seqRatio = 0, seqSlope = 0;
            if (options.RatioLevel == RatioLevel.Sequence)
            {
                double logS = 0;
                for (var k = 0; k < t; k++)
                {
                    logS += mi[k] * (lp[row + k] - old[row + k]);
                }

                seqRatio = Math.Exp(logS / Math.Max(ni, 1));
                var (objective, slope) = Surrogate(seqRatio, a, lowLimit, highLimit, options.DualClip);

                // Every token carries the same policy term; dL/dlp_{i,u} = (Σ_t c_{i,t}) w · dobj · s_i · m_{i,u} / max(n_i, 1).
                loss += w * -objective * norm * ni;
                seqSlope = w * -slope * seqRatio * norm * ni / Math.Max(ni, 1);
            }

            for (var k = 0; k < t; k++)
            {
                var m = mi[k];
                if (m == 0)
                {
                    continue;
                }

                var j = row + k;
                var c = m * norm;
                double ratio, grad;
                if (options.RatioLevel == RatioLevel.Token)
                {
                    ratio = Math.Exp(lp[j] - old[j]);
                    var (objective, slope) = Surrogate(ratio, a, lowLimit, highLimit, options.DualClip);
                    loss += c * w * -objective;
                    grad = c * w * -slope * ratio;
                }
                else
                {
                    ratio = seqRatio;
                    grad = seqSlope * m;
                }

                ratioSum += m * ratio;
                if (ratio < lowLimit && a < 0)
                {
                    low += m;
                }

                if (ratio > highLimit && a > 0)
                {
                    high += m;
                }

                if (options.DualClip is { } delta && a < 0 && ratio > delta)
                {
                    dual += m;
                }

                if (!reference.IsEmpty)
                {
                    var (kl, dKl) = Kl(options.KlEstimator, lp[j], reference[j]);
                    klSum += m * kl;
                    if (options.Beta > 0)
                    {
                        loss += c * options.Beta * kl;
                        grad += c * options.Beta * dKl;
                    }
                }

                if (!inputs.Entropies.IsEmpty)
                {
                    entropySum += m * inputs.Entropies[j];
                }

                dLogProbs[j] = grad;
            }
        }

        var perToken = active > 0 ? 1 / active : 0;
        return new PolicyLossResult(
            Loss: loss,
            ActiveTokens: active,
            MeanKl: reference.IsEmpty ? double.NaN : klSum * perToken,
            MeanEntropy: inputs.Entropies.IsEmpty ? double.NaN : entropySum * perToken,
            MeanRatio: ratioSum * perToken,
            ClipFractionLow: low * perToken,
            ClipFractionHigh: high * perToken,
            ClipFractionRegion: (low + high) * perToken,
            DualClipFraction: dual * perToken,
            OffPolicyMaskedFraction: b > 0 ? (double)masked / b : 0);
    }

    /// <summary>The clipped objective min(ρA, clip(ρ)A) [dual-clipped] and its derivative w.r.t. ρ.</summary>
    /// <param name="ratio">ρ.</param>
    /// <param name="advantage">A.</param>
    /// <param name="lowLimit">1 − ε_low.</param>
    /// <param name="highLimit">1 + ε_high.</param>
    /// <param name="dualClip">δ, or null.</param>
    /// <returns>The objective (to maximise) and dobjective/dρ.</returns>
    public static (double Objective, double Slope) Surrogate(double ratio, double advantage, double lowLimit, double highLimit, double? dualClip)
    {
        var unclipped = ratio * advantage;
        var clipped = Math.Clamp(ratio, lowLimit, highLimit) * advantage;

        // On a tie (ρ inside the range) both branches have slope A; outside it the clipped branch is constant.
        var (objective, slope) = unclipped <= clipped ? (unclipped, advantage) : (clipped, 0.0);
        if (dualClip is { } delta && advantage < 0 && delta * advantage > objective)
        {
            return (delta * advantage, 0);
        }

        return (objective, slope);
    }

    /// <summary>A per-token KL estimate and its derivative w.r.t. logp_θ.</summary>
    /// <param name="estimator">k1, k2 or k3.</param>
    /// <param name="logProb">logp_θ.</param>
    /// <param name="referenceLogProb">logp_ref.</param>
    /// <returns>The estimate and d/dlogp_θ.</returns>
    public static (double Value, double Derivative) Kl(KlEstimator estimator, double logProb, double referenceLogProb)
    {
        var d = referenceLogProb - logProb;
        return estimator switch
        {
            KlEstimator.K1 => (-d, 1),
            KlEstimator.K2 => (0.5 * d * d, -d),
            _ => (Math.Exp(d) - d - 1, 1 - Math.Exp(d)),
        };
    }

    private static void CheckLength(ReadOnlySpan<double> span, int expected, string name, bool required)
    {
        if ((required || !span.IsEmpty) && span.Length != expected)
        {
            throw new ArgumentException(span.IsEmpty
                ? $"{name} is required here but empty (expected {expected} values)"
                : $"{name} has {span.Length} values, expected {expected}");
        }
    }
}
