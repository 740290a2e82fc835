using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Reinforcement;
using DeepSeekRL.Model.Sampling;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Engines;

// What grains and commands need from a policy, whichever engine runs it: sampling with per-token log-probs, log-probs
// of given completions and GRPO updates (through IGrpoEngine and the shared GrpoUpdater), SFT steps, the routing-bias
// update, and weights and optimizer state that move as the shared HF-named safetensors. Only the host picks an engine.

/// <summary>One model engine (a backend): the native C# engine or the libtorch one.</summary>
public interface IModelEngine
{
    /// <summary>The backend's name (<see cref="ModelBackends"/>).</summary>
    string Name { get; }

    /// <summary>
    /// Why this engine cannot run with <paramref name="options"/> here, in one line (its runtime does not load, or the
    /// device is not one it has), or null when it can. Loads the engine's runtime.
    /// </summary>
    /// <param name="options">Device and threads.</param>
    /// <returns>The problem, or null.</returns>
    EngineProblem? Check(ModelEngineOptions options);

    /// <summary>Loads a policy for generation.</summary>
    /// <param name="weights">The weights (copied by engines that keep their own).</param>
    /// <param name="options">Device and threads.</param>
    /// <returns>The sampler.</returns>
    IPolicySampler CreateSampler(ModelWeights weights, ModelEngineOptions options);

    /// <summary>Loads a policy for training.</summary>
    /// <param name="weights">The starting weights (copied by engines that keep their own).</param>
    /// <param name="optimizer">The optimizer's options.</param>
    /// <param name="state">Optimizer state to resume from (same layout), or null for zero moments.</param>
    /// <param name="options">Device and threads.</param>
    /// <returns>The trainer.</returns>
    IPolicyTrainer CreateTrainer(ModelWeights weights, AdamWOptions optimizer, AdamW? state, ModelEngineOptions options);

    /// <summary>Loads a frozen policy whose log-probs a GRPO update compares against (the KL reference).</summary>
    /// <param name="weights">The weights.</param>
    /// <param name="options">Device and threads.</param>
    /// <returns>Its GRPO engine (no optimizer).</returns>
    IGrpoEngine CreateReference(ModelWeights weights, ModelEngineOptions options);
}

/// <summary>Why an engine cannot run: the setting at fault (<c>backend</c> or <c>device</c>) and a one-line message.</summary>
/// <param name="Field">The setting: <c>backend</c> (the runtime) or <c>device</c>.</param>
/// <param name="Message">What is wrong, in one line.</param>
public sealed record EngineProblem(string Field, string Message);

/// <summary>A policy loaded for generation. Not thread-safe.</summary>
public interface IPolicySampler : IDisposable
{
    /// <summary>The config.</summary>
    DeepSeekV3Config Config { get; }

    /// <summary>The longest sequence (prompt and completion) it can generate (<see cref="ModelEngineOptions.MaxPositions"/>).</summary>
    int MaxPositions { get; }

    /// <summary>Replaces the weights (same layout; a new policy version).</summary>
    /// <param name="data">The weights in layout order.</param>
    void SetWeights(ReadOnlySpan<float> data);

    /// <summary>Generates a completion per prompt, prompt i drawing from the stream (Seed, Index) of <paramref name="streams"/>.</summary>
    /// <param name="prompts">Prompts (token ids, each non-empty).</param>
    /// <param name="streams">Each prompt's random stream.</param>
    /// <param name="options">Sampling and stopping.</param>
    /// <param name="cancellationToken">Cancels between steps.</param>
    /// <returns>The completions with per-token log-probs.</returns>
    GenerationResult Generate(IReadOnlyList<int[]> prompts, IReadOnlyList<(ulong Seed, int Index)> streams, SamplingOptions options, CancellationToken cancellationToken = default);

    /// <summary>
    /// Generates with a chosen KV cache (an engine may offer only the absorbed latent cache) and, when the options ask
    /// for it, MTP speculative decoding (an engine may not offer it).
    /// </summary>
    /// <param name="prompts">Prompts.</param>
    /// <param name="streams">Each prompt's random stream.</param>
    /// <param name="options">Sampling and stopping.</param>
    /// <param name="cache">The KV cache.</param>
    /// <param name="cancellationToken">Cancels between steps.</param>
    /// <returns>The completions.</returns>
    /// <exception cref="NotSupportedException">The engine does not offer the cache or speculative decoding (one line).</exception>
    GenerationResult Generate(IReadOnlyList<int[]> prompts, IReadOnlyList<(ulong Seed, int Index)> streams, SamplingOptions options, KvCacheKind cache, CancellationToken cancellationToken = default);

    /// <summary>
    /// The logits of every position of one sequence, [T, V] (row i predicts token i+1), by one prefill or token by token
    /// through the KV cache; and, when the model has an MTP module, its logits [T−1, V] (row i predicts token i+2), else empty.
    /// </summary>
    /// <param name="tokens">The sequence (at most the model's positions).</param>
    /// <param name="decode">Token by token instead of one prefill.</param>
    /// <param name="cache">The KV cache of the decode.</param>
    /// <returns>The logits and the MTP logits.</returns>
    /// <exception cref="NotSupportedException">The engine does not offer the cache (one line).</exception>
    (float[] Logits, float[] MtpLogits) SequenceLogits(int[] tokens, bool decode, KvCacheKind cache);
}

/// <summary>A policy loaded for training: its weights, gradient and AdamW state live in the engine. Not thread-safe.</summary>
public interface IPolicyTrainer : IDisposable
{
    /// <summary>The config.</summary>
    DeepSeekV3Config Config { get; }

    /// <summary>Optimizer steps taken.</summary>
    long StepCount { get; }

    /// <summary>The engine's side of GRPO updates (give it to <see cref="GrpoUpdater"/>).</summary>
    IGrpoEngine Grpo { get; }

    /// <summary>Copies the weights out (layout order).</summary>
    /// <param name="data">The destination.</param>
    void GetWeights(Span<float> data);

    /// <summary>Replaces the weights (same layout).</summary>
    /// <param name="data">The weights.</param>
    void SetWeights(ReadOnlySpan<float> data);

    /// <summary>
    /// One SFT step over (B, T) tokens: masked next-token cross-entropy + W × MTP + α × balance loss, backward, AdamW,
    /// then (γ &gt; 0) the aux-loss-free bias update of every MoE layer that ran.
    /// </summary>
    /// <param name="tokens">(B, T) token ids.</param>
    /// <param name="batch">B.</param>
    /// <param name="mask">(B, T) target weights (index 0 of each row unused), or empty for ones.</param>
    /// <param name="mtpWeight">W.</param>
    /// <param name="balanceAlpha">α.</param>
    /// <param name="biasSpeed">γ.</param>
    /// <returns>The losses and the optimizer step.</returns>
    SftStepResult SftStep(ReadOnlySpan<int> tokens, int batch, ReadOnlySpan<float> mask, float mtpWeight, float balanceAlpha, float biasSpeed);

    /// <summary>
    /// The training loss over (B, T) tokens (mean next-token cross-entropy + W × MTP) and the gradient of every parameter
    /// (layout order), without stepping: diagnostics and cross-engine checks.
    /// </summary>
    /// <param name="tokens">(B, T) token ids.</param>
    /// <param name="batch">B.</param>
    /// <param name="mtpWeight">W.</param>
    /// <param name="gradients">The destination, the layout's size.</param>
    /// <returns>The loss, the main loss and the MTP loss.</returns>
    (double Loss, double MainLoss, double MtpLoss) Gradients(ReadOnlySpan<int> tokens, int batch, float mtpWeight, Span<float> gradients);

    /// <summary>Tokens routed to each expert of a layer by the last SFT step's forward (empty for a dense layer).</summary>
    /// <param name="layer">The layer (num_hidden_layers = the MTP block).</param>
    /// <returns>E counts.</returns>
    int[] ExpertLoad(int layer);

    /// <summary>Prepares for steps of up to <paramref name="batch"/> sequences of <paramref name="length"/> tokens (engines that pool buffers size them once).</summary>
    /// <param name="batch">B.</param>
    /// <param name="length">T.</param>
    /// <param name="mtpWeight">W of the steps.</param>
    /// <param name="balanceAlpha">α of the steps.</param>
    void Reserve(int batch, int length, float mtpWeight, float balanceAlpha);

    /// <summary>Lets go of buffers held between steps (training finished).</summary>
    void ReleaseBuffers();

    /// <summary>The optimizer's state in the shared format (a copy; <see cref="AdamW.Save"/> writes optimizer.safetensors).</summary>
    /// <returns>The state.</returns>
    AdamW OptimizerState();
}

/// <summary>The result of one SFT step.</summary>
/// <param name="Loss">main + W·MTP + balance.</param>
/// <param name="MainLoss">The masked mean next-token cross-entropy.</param>
/// <param name="MtpLoss">The MTP cross-entropy (0 without).</param>
/// <param name="BalanceLoss">α × the sequence-wise balance loss.</param>
/// <param name="Optimizer">The AdamW step.</param>
public sealed record SftStepResult(double Loss, double MainLoss, double MtpLoss, double BalanceLoss, AdamWStepResult Optimizer);
