namespace DeepSeekRL.Model.PolicyLosses;

// The knobs of the GRPO family (reference rl-and-rewards.md §2): clipping, ratio level, KL, aggregation and the
// off-policy correction. A plain options object; the arithmetic is in PolicyLoss.

/// <summary>Where the importance ratio is taken.</summary>
public enum RatioLevel
{
    /// <summary>Per token: ρ_{i,t} = exp(logp_θ − logp_old) (GRPO, DAPO).</summary>
    Token,

    /// <summary>Per sequence (GSPO): s_i = exp(mean over the completion's tokens of (logp_θ − logp_old)), shared by its tokens.</summary>
    Sequence,
}

/// <summary>The per-token estimator of KL(π_θ ‖ π_ref).</summary>
public enum KlEstimator
{
    /// <summary>k1 = logp_θ − logp_ref.</summary>
    K1,

    /// <summary>k2 = ½ (logp_θ − logp_ref)².</summary>
    K2,

    /// <summary>k3 = exp(logp_ref − logp_θ) − (logp_ref − logp_θ) − 1 (≥ 0; GRPO's choice).</summary>
    K3,
}

/// <summary>How per-token losses l (masked by m) become one number.</summary>
public enum LossAggregation
{
    /// <summary><c>grpo</c>: mean over sequences of Σ_t l m / Σ_t m (length-biased).</summary>
    Grpo,

    /// <summary><c>bnpo</c>: Σ l m / Σ m over the local batch.</summary>
    Bnpo,

    /// <summary><c>dapo</c>: Σ l m / (active tokens of the whole step's batch, <see cref="PolicyLossOptions.StepActiveTokens"/>).</summary>
    Dapo,

    /// <summary><c>dr_grpo</c>: Σ l m / (B · max completion length).</summary>
    DrGrpo,
}

/// <summary>Options of <see cref="PolicyLoss.Compute"/>.</summary>
public sealed class PolicyLossOptions
{
    /// <summary>ε_low: the ratio is clipped below at 1 − ε_low. Default 0.2, in [0, 1).</summary>
    public double EpsilonLow { get; init; } = 0.2;

    /// <summary>ε_high: the ratio is clipped above at 1 + ε_high. Default 0.2 (DAPO clip-higher: 0.28), &gt;= 0.</summary>
    public double EpsilonHigh { get; init; } = 0.2;

    /// <summary>Dual clip δ: for negative advantages the objective is max(min(ρA, clip(ρ)A), δA), so the ratio is capped at δ. Default null (off); &gt; 1 + ε_high (e.g. 3).</summary>
    public double? DualClip { get; init; }

    /// <summary>Token-level ratio or GSPO's sequence-level ratio. Default <see cref="RatioLevel.Token"/>.</summary>
    public RatioLevel RatioLevel { get; init; } = RatioLevel.Token;

    /// <summary>KL coefficient β. Default 0 (TRL; no reference log-probs needed); &gt;= 0.</summary>
    public double Beta { get; init; }

    /// <summary>The KL estimator. Default <see cref="KlEstimator.K3"/>.</summary>
    public KlEstimator KlEstimator { get; init; } = KlEstimator.K3;

    /// <summary>The aggregation. Default <see cref="LossAggregation.Dapo"/> (TRL's default <c>loss_type</c>).</summary>
    public LossAggregation Aggregation { get; init; } = LossAggregation.Dapo;

    /// <summary>
    /// <c>dapo</c>'s normaliser: the number of active completion tokens in the whole step's batch (all micro-batches).
    /// Default null: this call's Σ m. &gt; 0.
    /// </summary>
    public double? StepActiveTokens { get; init; }

    /// <summary><c>dr_grpo</c>'s max completion length. Default null: the padded length T of the inputs. &gt;= 1.</summary>
    public int? MaxCompletionLength { get; init; }

    /// <summary>
    /// Off-policy correction (TRL <c>sequence_mask</c>): with sampling log-probs given, each sequence's policy term is
    /// weighted by ρ_seq = exp(Σ_t m (logp_old − logp_sampling)) when ρ_seq lies in [min, max], and masked (weight 0)
    /// otherwise. Lower bound default 1/3, in (0, 1].
    /// </summary>
    public double OffPolicyMinRatio { get; init; } = 1.0 / 3;

    /// <summary>Upper bound of the off-policy ratio (see <see cref="OffPolicyMinRatio"/>). Default 3, &gt;= 1.</summary>
    public double OffPolicyMaxRatio { get; init; } = 3;

    /// <summary>Checks the values.</summary>
    /// <returns>An error naming the option and the bad value, or <see langword="null"/>.</returns>
    public string? Validate() =>
        !(EpsilonLow >= 0 && EpsilonLow < 1) ? $"epsilon_low = {EpsilonLow}: expected a value in [0, 1)"
        : !(EpsilonHigh >= 0) || double.IsInfinity(EpsilonHigh) ? $"epsilon_high = {EpsilonHigh}: expected a finite value >= 0"
        : DualClip is { } d && !(d > 1 + EpsilonHigh && !double.IsInfinity(d)) ? $"dual_clip = {d}: expected a finite value > 1 + epsilon_high = {1 + EpsilonHigh}"
        : !(Beta >= 0) || double.IsInfinity(Beta) ? $"beta = {Beta}: expected a finite value >= 0"
        : !Enum.IsDefined(RatioLevel) ? $"ratio_level = {RatioLevel}: not a ratio level"
        : !Enum.IsDefined(KlEstimator) ? $"kl_estimator = {KlEstimator}: not an estimator"
        : !Enum.IsDefined(Aggregation) ? $"aggregation = {Aggregation}: not an aggregation"
        : StepActiveTokens is { } a && !(a > 0) ? $"step_active_tokens = {a}: expected > 0"
        : MaxCompletionLength is { } l && l < 1 ? $"max_completion_length = {l}: expected >= 1"
        : !(OffPolicyMinRatio > 0 && OffPolicyMinRatio <= 1) ? $"off_policy_min_ratio = {OffPolicyMinRatio}: expected a value in (0, 1]"
        : !(OffPolicyMaxRatio >= 1) ? $"off_policy_max_ratio = {OffPolicyMaxRatio}: expected a value >= 1"
        : null;
}
