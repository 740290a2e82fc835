using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Reinforcement;
using DeepSeekRL.Model.Sampling;
using DeepSeekRL.Model.Weights;
using static TorchSharp.torch;
using Generator = DeepSeekRL.Model.Inference.Generator;

namespace DeepSeekRL.Model.TorchSharp.Engines;

/// <summary>
/// The libtorch engine (TorchSharp): CPU here; CUDA with a CUDA libtorch package and device <c>cuda[:N]</c>. Loading
/// libtorch happens on the first policy; a failure is one line naming the cause.
/// </summary>
public sealed class TorchModelEngine : IModelEngine
{
    /// <inheritdoc/>
    public string Name => ModelBackends.Torch;

    /// <inheritdoc/>
    public EngineProblem? Check(ModelEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (TorchRuntime.TryLoad() is { } error)
        {
            return new EngineProblem("backend", error);
        }

        return TorchRuntime.ParseDevice(options.Device).Error is { } deviceError ? new EngineProblem("device", deviceError) : null;
    }

    /// <inheritdoc/>
    public IPolicySampler CreateSampler(ModelWeights weights, ModelEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var model = new TorchDeepSeekV3(weights, Prepare(options), options.MaxPositions);
        return new TorchPolicySampler(model);
    }

    /// <inheritdoc/>
    public IPolicyTrainer CreateTrainer(ModelWeights weights, AdamWOptions optimizer, AdamW? state, ModelEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(optimizer);
        var model = new TorchDeepSeekV3(weights, Prepare(options));
        var adam = new TorchAdamW(model, optimizer);
        if (state is not null)
        {
            adam.Load(state);
        }

        return new TorchPolicyTrainer(model, adam, state?.Metadata);
    }

    /// <inheritdoc/>
    public IGrpoEngine CreateReference(ModelWeights weights, ModelEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(weights);
        return new TorchGrpoEngine(new TorchDeepSeekV3(weights, Prepare(options)), null, ownsModel: true);
    }

    private static Device Prepare(ModelEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        TorchRuntime.EnsureLoaded();
        var (device, error) = TorchRuntime.ParseDevice(options.Device);
        if (device is null)
        {
            throw new ArgumentException(error);
        }

        TorchRuntime.SetThreads(options.Threads);
        return device;
    }
}

/// <summary>A libtorch policy for generation through the shared <see cref="Generator"/> (absorbed latent cache).</summary>
/// <param name="model">The model (owned).</param>
public sealed class TorchPolicySampler(TorchDeepSeekV3 model) : IPolicySampler
{
    private readonly Generator _generator = new(model);

    /// <inheritdoc/>
    public DeepSeekV3Config Config => model.Config;

    /// <inheritdoc/>
    public int MaxPositions => model.MaxPositions;

    /// <summary>The model.</summary>
    public TorchDeepSeekV3 Model => model;

    /// <inheritdoc/>
    public void SetWeights(ReadOnlySpan<float> data) => model.Load(data);

    /// <inheritdoc/>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, IReadOnlyList<(ulong Seed, int Index)> streams, SamplingOptions options, CancellationToken cancellationToken = default) =>
        _generator.Generate(prompts, streams, options, KvCacheKind.Absorbed, cancellationToken);

    /// <inheritdoc/>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, IReadOnlyList<(ulong Seed, int Index)> streams, SamplingOptions options, KvCacheKind cache, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.SpeculativeMtp)
        {
            throw new NotSupportedException("speculative MTP decoding runs on the native engine only");
        }

        Supported(cache);
        return _generator.Generate(prompts, streams, options, cache, cancellationToken);
    }

    /// <inheritdoc/>
    public (float[] Logits, float[] MtpLogits) SequenceLogits(int[] tokens, bool decode, KvCacheKind cache)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        Supported(cache);
        var v = model.Config.VocabSize;
        var logits = new float[tokens.Length * v];
        if (decode)
        {
            using var latent = (TorchLatentCache)model.CreateDecodingCache(KvCacheKind.Absorbed, 1, tokens.Length);
            for (var p = 0; p < tokens.Length; p++)
            {
                model.Decode([tokens[p]], [p], [0], latent, [0], logits.AsSpan(p * v, v));
            }

            return (logits, []);
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = tensor(tokens.Select(x => (long)x).ToArray(), [1, tokens.Length], ScalarType.Int64, model.Device);
        var (all, mtp) = model.Forward(ids, mtp: true);
        TorchDeepSeekV3.Copy(all, logits);
        var mtpLogits = mtp is null ? [] : new float[(tokens.Length - 1) * v];
        if (mtp is not null)
        {
            TorchDeepSeekV3.Copy(mtp, mtpLogits);
        }

        return (logits, mtpLogits);
    }

    private static void Supported(KvCacheKind cache)
    {
        if (cache != KvCacheKind.Absorbed)
        {
            throw new NotSupportedException("the torch engine decodes with the absorbed latent cache only");
        }
    }

    /// <inheritdoc/>
    public void Dispose() => model.Dispose();
}

/// <summary>A libtorch policy for training: the model, <see cref="TorchAdamW"/>, SFT and GRPO steps.</summary>
public sealed class TorchPolicyTrainer : IPolicyTrainer
{
    private readonly TorchDeepSeekV3 _model;
    private readonly TorchAdamW _optimizer;
    private readonly TorchTrainer _trainer;
    private readonly Dictionary<string, string> _metadata;
    private TorchGrpoEngine? _grpo;

    /// <summary>Creates the trainer (it owns the model and the optimizer).</summary>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">Its optimizer.</param>
    /// <param name="metadata">The optimizer state's user metadata to carry (run keys), or null.</param>
    public TorchPolicyTrainer(TorchDeepSeekV3 model, TorchAdamW optimizer, IEnumerable<KeyValuePair<string, string>>? metadata)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        _model = model;
        _optimizer = optimizer;
        _trainer = new TorchTrainer(model, optimizer);
        _metadata = new Dictionary<string, string>(metadata ?? [], StringComparer.Ordinal);
    }

    /// <inheritdoc/>
    public DeepSeekV3Config Config => _model.Config;

    /// <summary>The model.</summary>
    public TorchDeepSeekV3 Model => _model;

    /// <inheritdoc/>
    public long StepCount => _optimizer.StepCount;

    /// <inheritdoc/>
    public IGrpoEngine Grpo => _grpo ??= new TorchGrpoEngine(_model, _optimizer);

    /// <inheritdoc/>
    public void GetWeights(Span<float> data) => _model.Export(data);

    /// <inheritdoc/>
    public void SetWeights(ReadOnlySpan<float> data) => _model.Load(data);

    /// <inheritdoc/>
    public SftStepResult SftStep(ReadOnlySpan<int> tokens, int batch, ReadOnlySpan<float> mask, float mtpWeight, float balanceAlpha, float biasSpeed) =>
        _trainer.Step(tokens, batch, mask, mtpWeight, balanceAlpha, biasSpeed);

    /// <inheritdoc/>
    public (double Loss, double MainLoss, double MtpLoss) Gradients(ReadOnlySpan<int> tokens, int batch, float mtpWeight, Span<float> gradients)
    {
        var t = tokens.Length / batch;
        using var scope = NewDisposeScope();
        var ids = new long[tokens.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = tokens[i];
        }

        using (no_grad())
        {
            _model.Flat.grad?.zero_();
        }

        var (loss, main, mtp, _) = _model.TrainingLoss(tensor(ids, [batch, t], ScalarType.Int64, _model.Device), null, mtpWeight);
        loss.backward();
        TorchDeepSeekV3.Copy(_model.Flat.grad!, gradients);
        return (loss.item<float>(), main, mtp);
    }

    /// <inheritdoc/>
    public int[] ExpertLoad(int layer) =>
        _model.ExpertLoad.TryGetValue(layer, out var load) ? Array.ConvertAll(load, x => (int)x) : [];

    /// <inheritdoc/>
    public void Reserve(int batch, int length, float mtpWeight, float balanceAlpha)
    {
    }

    /// <inheritdoc/>
    public void ReleaseBuffers()
    {
    }

    /// <inheritdoc/>
    public AdamW OptimizerState()
    {
        var state = _optimizer.ToNative();
        foreach (var (key, value) in _metadata)
        {
            state.Metadata[key] = value;
        }

        return state;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _grpo?.Dispose();
        _optimizer.Dispose();
        _model.Dispose();
    }
}
