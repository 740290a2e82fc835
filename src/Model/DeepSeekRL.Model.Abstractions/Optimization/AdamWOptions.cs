namespace DeepSeekRL.Model.Optimization;

// The knobs of AdamW, gradient clipping and the learning-rate schedule (defaults: DeepSeek-V3 report §4.2, reference
// doc §11). A plain options object; the update is in AdamW, the schedule in LearningRateSchedule.

/// <summary>AdamW with decoupled weight decay, global-norm clipping and a warm-up + cosine schedule.</summary>
public sealed class AdamWOptions
{
    /// <summary>Decay of the first moment. Default 0.9 (V3), in [0, 1).</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>Decay of the second moment. Default 0.95 (V3), in [0, 1).</summary>
    public double Beta2 { get; init; } = 0.95;

    /// <summary>Added to sqrt(v̂) in the denominator. Default 1e-8, &gt; 0.</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Decoupled weight decay λ: p ← p·(1 − lr·λ) before the Adam step (PyTorch AdamW). Default 0.1 (V3), &gt;= 0.</summary>
    public double WeightDecay { get; init; } = 0.1;

    /// <summary>
    /// Whether rank-1 tensors (RMSNorm weights) are weight-decayed too. Default false: only matrices decay, as in
    /// nanoGPT and llm.c. Non-trainable tensors (<c>e_score_correction_bias</c>) are never touched either way.
    /// </summary>
    public bool DecayVectors { get; init; }

    /// <summary>Clip the gradients so that their global L2 norm is at most this. Default 1.0 (V3); 0 = no clipping; &gt;= 0.</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>The learning-rate schedule. Default: <see cref="LearningRateScheduleOptions"/>'s defaults.</summary>
    public LearningRateScheduleOptions Schedule { get; init; } = new();

    /// <summary>Checks the values.</summary>
    /// <returns>An error naming the option and the bad value, or <see langword="null"/>.</returns>
    public string? Validate() =>
        !(Beta1 >= 0 && Beta1 < 1) ? $"beta1 = {Beta1}: expected a value in [0, 1)"
        : !(Beta2 >= 0 && Beta2 < 1) ? $"beta2 = {Beta2}: expected a value in [0, 1)"
        : !(Epsilon > 0) || double.IsInfinity(Epsilon) ? $"epsilon = {Epsilon}: expected a finite value > 0"
        : !(WeightDecay >= 0) || double.IsInfinity(WeightDecay) ? $"weight_decay = {WeightDecay}: expected a finite value >= 0"
        : !(MaxGradNorm >= 0) || double.IsInfinity(MaxGradNorm) ? $"max_grad_norm = {MaxGradNorm}: expected a finite value >= 0 (0 = off)"
        : Schedule is null ? "schedule: expected schedule options"
        : Schedule.Validate();
}

/// <summary>Linear warm-up to the peak, then cosine decay to the minimum, then the minimum.</summary>
/// <remarks>
/// Steps count from 1 (the first update is step 1): lr(t) = peak·t/W for t ≤ W; then
/// min + ½(peak − min)(1 + cos(π (t − W)/(T − W))) for W &lt; t ≤ T; then min. With W = 0 there is no warm-up.
/// </remarks>
public sealed class LearningRateScheduleOptions
{
    /// <summary>The learning rate at the end of warm-up. Default 2.2e-4 (V3), &gt; 0.</summary>
    public double PeakLearningRate { get; init; } = 2.2e-4;

    /// <summary>The learning rate at and after <see cref="TotalSteps"/>. Default 2.2e-5 (V3), in [0, peak].</summary>
    public double MinLearningRate { get; init; } = 2.2e-5;

    /// <summary>Linear warm-up length in steps. Default 2000 (V3), &gt;= 0.</summary>
    public long WarmupSteps { get; init; } = 2000;

    /// <summary>The step at which the cosine reaches the minimum. Default 100000, &gt;= <see cref="WarmupSteps"/>.</summary>
    public long TotalSteps { get; init; } = 100_000;

    /// <summary>Checks the values.</summary>
    /// <returns>An error naming the option and the bad value, or <see langword="null"/>.</returns>
    public string? Validate() =>
        !(PeakLearningRate > 0) || double.IsInfinity(PeakLearningRate) ? $"peak_lr = {PeakLearningRate}: expected a finite value > 0"
        : !(MinLearningRate >= 0 && MinLearningRate <= PeakLearningRate) ? $"min_lr = {MinLearningRate}: expected a value in [0, peak_lr = {PeakLearningRate}]"
        : WarmupSteps < 0 ? $"warmup_steps = {WarmupSteps}: expected >= 0"
        : TotalSteps < WarmupSteps ? $"total_steps = {TotalSteps}: expected >= warmup_steps = {WarmupSteps}"
        : null;
}
