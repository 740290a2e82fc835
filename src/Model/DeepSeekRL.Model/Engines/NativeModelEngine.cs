using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Reinforcement;
using DeepSeekRL.Model.Sampling;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Engines;

/// <summary>The native C# engine (OpenBLAS, hand-written backward): CPU only.</summary>
public sealed class NativeModelEngine : IModelEngine
{
    /// <inheritdoc/>
    public string Name => ModelBackends.Native;

    /// <inheritdoc/>
    public IPolicySampler CreateSampler(ModelWeights weights, ModelEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(options);
        CheckDevice(options);
        return new NativePolicySampler(new ModelWeights(weights.Config, weights.Data.ToArray()), options.Threads, options.MaxPositions);
    }

    /// <inheritdoc/>
    public IPolicyTrainer CreateTrainer(ModelWeights weights, AdamWOptions optimizer, AdamW? state, ModelEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(options);
        CheckDevice(options);
        var own = new ModelWeights(weights.Config, weights.Data.ToArray());
        var adam = new AdamW(own.Specs, optimizer);
        if (state is not null)
        {
            if (state.FirstMoment.Length != own.Data.Length)
            {
                throw new ArgumentException($"the optimizer state holds {state.FirstMoment.Length} moments, the model {own.Data.Length}", nameof(state));
            }

            state.FirstMoment.CopyTo(adam.FirstMoment, 0);
            state.SecondMoment.CopyTo(adam.SecondMoment, 0);
            adam.RestoreStepCount(state.StepCount);
            foreach (var (key, value) in state.Metadata)
            {
                adam.Metadata[key] = value;
            }
        }

        return new NativePolicyTrainer(own, adam, options.Threads);
    }

    /// <inheritdoc/>
    public IGrpoEngine CreateReference(ModelWeights weights, ModelEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(options);
        CheckDevice(options);
        return new NativeGrpoEngine(new ModelWeights(weights.Config, weights.Data.ToArray()), null, options.Threads);
    }

    /// <inheritdoc/>
    public EngineProblem? Check(ModelEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Device == "cpu" ? null : new EngineProblem("device", $"device = \"{options.Device}\": the native engine runs on \"cpu\" only (use backend \"torch\" for CUDA)");
    }

    private void CheckDevice(ModelEngineOptions options)
    {
        if (Check(options) is { } problem)
        {
            throw new ArgumentException(problem.Message);
        }
    }
}

/// <summary>A native policy for generation: <see cref="Transformer"/> and <see cref="Generator"/> over its own weights.</summary>
/// <param name="weights">The weights (held; <see cref="SetWeights"/> overwrites them).</param>
/// <param name="threads">OpenBLAS threads.</param>
/// <param name="maxPositions">Positions covered (0: min(max_position_embeddings, 8192)).</param>
public sealed class NativePolicySampler(ModelWeights weights, int threads, int maxPositions = 0) : IPolicySampler
{
    private readonly Generator _generator = new(new Transformer(weights, new TransformerOptions { Threads = threads, MaxPositions = maxPositions > 0 ? maxPositions : null }));

    /// <inheritdoc/>
    public DeepSeekV3Config Config => weights.Config;

    /// <inheritdoc/>
    public int MaxPositions => _generator.Model!.MaxPositions;

    /// <summary>The generator (speculative MTP decoding and the naive cache are native-only).</summary>
    public Generator Generator => _generator;

    /// <inheritdoc/>
    public void SetWeights(ReadOnlySpan<float> data)
    {
        if (data.Length != weights.Data.Length)
        {
            throw new ArgumentException($"{data.Length} weights for a layout of {weights.Data.Length}", nameof(data));
        }

        data.CopyTo(weights.Data);
    }

    /// <inheritdoc/>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, IReadOnlyList<(ulong Seed, int Index)> streams, SamplingOptions options, CancellationToken cancellationToken = default) =>
        _generator.Generate(prompts, streams, options, KvCacheKind.Absorbed, cancellationToken);

    /// <inheritdoc/>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, IReadOnlyList<(ulong Seed, int Index)> streams, SamplingOptions options, KvCacheKind cache, CancellationToken cancellationToken = default) =>
        _generator.Generate(prompts, streams, options, cache, cancellationToken);

    /// <inheritdoc/>
    public (float[] Logits, float[] MtpLogits) SequenceLogits(int[] tokens, bool decode, KvCacheKind cache)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var model = _generator.Model!;
        var logits = decode ? model.DecodeSequence(tokens, cache) : model.ForwardSequence(tokens, cache);
        return (logits, weights.Config.NumNextnPredictLayers > 0 && tokens.Length > 1 ? model.MtpSequence(tokens) : []);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}

/// <summary>A native policy for training: <see cref="TrainingModel"/>, <see cref="Gradients"/> and <see cref="AdamW"/> over its own weights.</summary>
public sealed class NativePolicyTrainer : IPolicyTrainer
{
    private readonly ModelWeights _weights;
    private readonly AdamW _optimizer;
    private readonly int _threads;
    private TrainingModel? _sft;
    private Gradients? _grads;
    private NativeGrpoEngine? _grpo;

    /// <summary>Creates the trainer.</summary>
    /// <param name="weights">The weights (updated in place).</param>
    /// <param name="optimizer">The optimizer (same layout).</param>
    /// <param name="threads">OpenBLAS threads.</param>
    public NativePolicyTrainer(ModelWeights weights, AdamW optimizer, int threads)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(optimizer);
        _weights = weights;
        _optimizer = optimizer;
        _threads = threads;
    }

    /// <inheritdoc/>
    public DeepSeekV3Config Config => _weights.Config;

    /// <summary>The weights (updated in place by the steps).</summary>
    public ModelWeights Weights => _weights;

    /// <summary>The optimizer.</summary>
    public AdamW Optimizer => _optimizer;

    /// <inheritdoc/>
    public long StepCount => _optimizer.StepCount;

    /// <inheritdoc/>
    public IGrpoEngine Grpo => _grpo ??= new NativeGrpoEngine(_weights, _optimizer, _threads);

    /// <inheritdoc/>
    public void GetWeights(Span<float> data) => _weights.Data.CopyTo(data);

    /// <inheritdoc/>
    public void SetWeights(ReadOnlySpan<float> data)
    {
        if (data.Length != _weights.Data.Length)
        {
            throw new ArgumentException($"{data.Length} weights for a layout of {_weights.Data.Length}", nameof(data));
        }

        data.CopyTo(_weights.Data);
    }

    /// <inheritdoc/>
    public SftStepResult SftStep(ReadOnlySpan<int> tokens, int batch, ReadOnlySpan<float> mask, float mtpWeight, float balanceAlpha, float biasSpeed)
    {
        var model = Sft();
        var loss = model.Forward(tokens, batch, mask, mtpWeight, balanceAlpha);
        _grads ??= new Gradients(Config);
        _grads.Clear();
        model.Backward(_grads);
        var step = _optimizer.Step(_weights.Data, _grads.Data);
        if (biasSpeed > 0)
        {
            model.UpdateRoutingBias(biasSpeed);
        }

        return new SftStepResult(loss, model.MainLoss, model.MtpLoss, model.BalanceLoss, step);
    }

    /// <inheritdoc/>
    public (double Loss, double MainLoss, double MtpLoss) Gradients(ReadOnlySpan<int> tokens, int batch, float mtpWeight, Span<float> gradients)
    {
        var model = Sft();
        var loss = model.Forward(tokens, batch, default, mtpWeight);
        _grads ??= new Gradients(Config);
        _grads.Clear();
        model.Backward(_grads);
        _grads.Data.CopyTo(gradients);
        return (loss, model.MainLoss, model.MtpLoss);
    }

    /// <inheritdoc/>
    public int[] ExpertLoad(int layer) => _sft?.ExpertLoad(layer) ?? [];

    /// <inheritdoc/>
    public void Reserve(int batch, int length, float mtpWeight, float balanceAlpha) => Sft().Reserve(batch, length, mtpWeight, balanceAlpha);

    /// <inheritdoc/>
    public void ReleaseBuffers() => _sft?.ReleaseBuffers();

    /// <inheritdoc/>
    public AdamW OptimizerState()
    {
        var copy = new AdamW(_optimizer.Specs, _optimizer.Options);
        _optimizer.FirstMoment.CopyTo(copy.FirstMoment, 0);
        _optimizer.SecondMoment.CopyTo(copy.SecondMoment, 0);
        copy.RestoreStepCount(_optimizer.StepCount);
        foreach (var (key, value) in _optimizer.Metadata)
        {
            copy.Metadata[key] = value;
        }

        return copy;
    }

    /// <inheritdoc/>
    public void Dispose() => _sft?.ReleaseBuffers();

    private TrainingModel Sft() => _sft ??= new TrainingModel(_weights, _threads);
}
