using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Optimization;

namespace DeepSeekRL.Model.Reinforcement;

/// <summary>
/// What <c>GrpoUpdater</c> needs from an engine: the completion tokens' log-probs of a packed micro-batch, the
/// backward of a weighting of them into the engine's own gradient, and the optimizer step on the engine's own weights.
/// The loss family itself (<see cref="PolicyLosses.PolicyLoss"/>) runs on the host, the same for every engine.
/// </summary>
public interface IGrpoEngine
{
    /// <summary>The config.</summary>
    DeepSeekV3Config Config { get; }

    /// <summary>Optimizer steps taken.</summary>
    long StepCount { get; }

    /// <summary>
    /// Forwards the micro-batch (teacher forcing) and writes logp = log softmax(z/τ)[token] of each completion token
    /// ([b, Tc] row-major, zero on padding) and, when <paramref name="entropies"/> is not empty, the entropy of each
    /// such distribution. The forward is kept for <see cref="BackwardCompletions"/>.
    /// </summary>
    /// <param name="micro">The packed micro-batch.</param>
    /// <param name="temperature">τ.</param>
    /// <param name="logProbs">[b, Tc].</param>
    /// <param name="entropies">[b, Tc], or empty.</param>
    void ForwardCompletions(GrpoMicroBatch micro, float temperature, Span<double> logProbs, Span<double> entropies);

    /// <summary>The experts chosen for each row of a layer in the last forward (N·K), or empty for a dense layer.</summary>
    /// <param name="layer">The layer.</param>
    /// <returns>The selections.</returns>
    int[] Selection(int layer);

    /// <summary>Adds the gradient of Σ dLogProbs · logp (through the last forward) to the engine's gradient.</summary>
    /// <param name="dLogProbs">[b, Tc] weights (zero on padding).</param>
    void BackwardCompletions(ReadOnlySpan<double> dLogProbs);

    /// <summary>Clears the gradient.</summary>
    void ZeroGradients();

    /// <summary>The gradient's global L2 norm (all elements).</summary>
    /// <returns>The norm.</returns>
    double GradientNorm();

    /// <summary>One AdamW step (clipping, schedule) with the accumulated gradient.</summary>
    /// <returns>The step's numbers.</returns>
    AdamWStepResult OptimizerStep();

    /// <summary>The auxiliary-loss-free bias update of one MoE layer (reference §9.1).</summary>
    /// <param name="layer">The layer.</param>
    /// <param name="load">Tokens routed to each expert.</param>
    /// <param name="speed">γ.</param>
    void UpdateRoutingBias(int layer, ReadOnlySpan<float> load, float speed);
}

/// <summary>
/// Sequences [Start, Start + Count) of a batch laid out as (Count, T) tokens, left-aligned and right-padded, with the
/// target mask 1 on completion positions; T is the longest sequence, Tc the longest completion.
/// </summary>
/// <param name="Batch">The whole batch.</param>
/// <param name="Start">The first sequence.</param>
/// <param name="Count">b.</param>
/// <param name="Tokens">(b, T) tokens.</param>
/// <param name="Mask">(b, T) target weights.</param>
/// <param name="T">T.</param>
/// <param name="Tc">Tc.</param>
public sealed record GrpoMicroBatch(IReadOnlyList<GrpoSequence> Batch, int Start, int Count, int[] Tokens, float[] Mask, int T, int Tc);
