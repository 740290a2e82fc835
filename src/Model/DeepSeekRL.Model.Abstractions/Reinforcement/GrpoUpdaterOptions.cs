using DeepSeekRL.Model.PolicyLosses;

namespace DeepSeekRL.Model.Reinforcement;

/// <summary>Options of <c>GrpoUpdater</c>.</summary>
public sealed class GrpoUpdaterOptions
{
    /// <summary>The policy loss (clipping, ratio level, KL, aggregation, off-policy bounds). Default: TRL's defaults (DAPO aggregation, β = 0).</summary>
    /// <remarks>
    /// <see cref="PolicyLossOptions.StepActiveTokens"/> and <see cref="PolicyLossOptions.MaxCompletionLength"/> may be
    /// left null: the updater then uses the whole step's active tokens and longest completion, so micro-batching does
    /// not change the result.
    /// </remarks>
    public PolicyLossOptions Loss { get; init; } = new();

    /// <summary>τ, the sampling temperature the completions were drawn with; logits are divided by it. Default 1, finite and &gt; 0.</summary>
    public float Temperature { get; init; } = 1;

    /// <summary>Sequences per forward/backward pass (gradients accumulate over micro-batches). Default 8, &gt;= 1.</summary>
    public int MicroBatchSequences { get; init; } = 8;

    /// <summary>The token that pads sequences to the longest of a micro-batch (masked; must be in the vocabulary). Default 0.</summary>
    public int PadToken { get; init; }

    /// <summary>γ of the auxiliary-loss-free routing-bias update after each step (reference §9.1; V3: 0.001). Default 0 (off), finite and &gt;= 0.</summary>
    public float RoutingBiasSpeed { get; init; }

    /// <summary>OpenBLAS threads (process-wide). Default 2, &gt;= 1.</summary>
    public int Threads { get; init; } = 2;

    /// <summary>Checks the values.</summary>
    /// <returns>An error naming the option and the bad value, or <see langword="null"/>.</returns>
    public string? Validate() =>
        Loss is null ? "loss: required"
        : Loss.Validate() is { } error ? error
        : !(Temperature > 0) || float.IsInfinity(Temperature) ? $"temperature = {Temperature}: expected a finite value > 0"
        : MicroBatchSequences < 1 ? $"micro_batch_sequences = {MicroBatchSequences}: expected >= 1"
        : PadToken < 0 ? $"pad_token = {PadToken}: expected >= 0"
        : !(RoutingBiasSpeed >= 0) || float.IsInfinity(RoutingBiasSpeed) ? $"routing_bias_speed = {RoutingBiasSpeed}: expected a finite value >= 0"
        : Threads < 1 ? $"threads = {Threads}: expected >= 1"
        : null;
}
