namespace DeepSeekRL.Model.Reinforcement;

/// <summary>What one <c>GrpoUpdater.Step</c> (or <c>GrpoUpdater.ComputeGradients</c>) saw and did.</summary>
/// <param name="Step">The optimizer step just taken (1-based); for <c>GrpoUpdater.ComputeGradients</c>, the steps taken so far.</param>
/// <param name="Loss">The aggregated loss over the whole batch (policy term + β·KL).</param>
/// <param name="KlMean">Mean per-token KL estimate to the reference (the configured estimator); NaN without a reference model.</param>
/// <param name="EntropyMean">Mean per-token entropy of the policy (at the temperature) over completion tokens.</param>
/// <param name="RatioMean">Mean importance ratio over completion tokens (1 on-policy).</param>
/// <param name="ClipLowFraction">Fraction of completion tokens clipped from below (ρ &lt; 1 − ε_low, A &lt; 0).</param>
/// <param name="ClipHighFraction">Fraction of completion tokens clipped from above (ρ &gt; 1 + ε_high, A &gt; 0).</param>
/// <param name="ClipRegionFraction">Low or high.</param>
/// <param name="DualClipFraction">Fraction of completion tokens dual-clipped (0 when off).</param>
/// <param name="OffPolicyMaskedFraction">Fraction of sequences masked because their ratio to the sampling policy left the bounds.</param>
/// <param name="GradNorm">Global L2 norm of the gradient before clipping.</param>
/// <param name="ClipFactor">Factor the optimizer scaled the gradient by (1 = not clipped; 1 for <c>GrpoUpdater.ComputeGradients</c>).</param>
/// <param name="LearningRate">The learning rate used; NaN for <c>GrpoUpdater.ComputeGradients</c>.</param>
/// <param name="Sequences">B, the number of sequences.</param>
/// <param name="CompletionTokens">Σ completion lengths (the active tokens).</param>
/// <param name="ExpertLoad">
/// Per main-model layer (index = layer), the tokens routed to each routed expert over all real (non-padding) tokens of
/// the batch, prompts included; an empty array for a dense layer.
/// </param>
public sealed record GrpoStepMetrics(
    long Step,
    double Loss,
    double KlMean,
    double EntropyMean,
    double RatioMean,
    double ClipLowFraction,
    double ClipHighFraction,
    double ClipRegionFraction,
    double DualClipFraction,
    double OffPolicyMaskedFraction,
    double GradNorm,
    double ClipFactor,
    double LearningRate,
    int Sequences,
    long CompletionTokens,
    IReadOnlyList<int[]> ExpertLoad);
