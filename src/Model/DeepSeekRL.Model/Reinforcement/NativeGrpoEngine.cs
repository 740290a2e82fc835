using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.PolicyLosses;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Reinforcement;

/// <summary>
/// The native engine's side of a GRPO update: <see cref="TrainingModel"/> forward, log-probs of the completion rows of
/// the logits (<see cref="TokenLogProbs"/>), their backward into dlogits and through the model into one
/// <see cref="Training.Gradients"/> block, and <see cref="AdamW"/> on the weights in place. Not thread-safe.
/// </summary>
public sealed class NativeGrpoEngine : IGrpoEngine
{
    private readonly ModelWeights _weights;
    private readonly AdamW? _optimizer;
    private readonly TrainingModel _model;
    private readonly int _v;
    private GrpoMicroBatch? _last;
    private float _temperature = 1;
    private float[] _dLogits = [];

    /// <summary>Creates the engine over <paramref name="weights"/> (updated in place).</summary>
    /// <param name="weights">The weights.</param>
    /// <param name="optimizer">The optimizer, or null for a frozen (reference) model.</param>
    /// <param name="threads">Kernel threads.</param>
    public NativeGrpoEngine(ModelWeights weights, AdamW? optimizer, int threads = 2)
    {
        ArgumentNullException.ThrowIfNull(weights);
        _weights = weights;
        _optimizer = optimizer;
        _v = weights.Config.VocabSize;
        _model = new TrainingModel(weights, threads);
        Gradients = new Gradients(weights.Config);
    }

    /// <inheritdoc/>
    public DeepSeekV3Config Config => _weights.Config;

    /// <summary>A GRPO updater over <paramref name="policy"/> on the native engine (updated in place by its steps).</summary>
    /// <param name="policy">The policy weights being trained.</param>
    /// <param name="reference">The frozen reference weights for the KL term (same config); required when β &gt; 0. When given with β = 0, only the KL metric uses it (one extra forward per micro-batch).</param>
    /// <param name="optimizer">The optimizer, laid out like <paramref name="policy"/>.</param>
    /// <param name="options">The options (validated by the updater).</param>
    /// <returns>The updater; its <see cref="GrpoUpdater.Engine"/> is a <see cref="NativeGrpoEngine"/>.</returns>
    /// <exception cref="ArgumentException">Mismatched layouts, or the updater's own checks.</exception>
    public static GrpoUpdater Updater(ModelWeights policy, ModelWeights? reference, AdamW optimizer, GrpoUpdaterOptions options)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(options);
        if (optimizer.FirstMoment.Length != policy.Data.Length)
        {
            throw new ArgumentException("the optimizer's layout differs from the policy's", nameof(optimizer));
        }

        if (reference is not null && reference.Data.Length != policy.Data.Length)
        {
            throw new ArgumentException("the reference weights' layout differs from the policy's", nameof(reference));
        }

        return new GrpoUpdater(
            new NativeGrpoEngine(policy, optimizer, options.Threads), reference is null ? null : new NativeGrpoEngine(reference, null, options.Threads), options);
    }

    /// <summary>The accumulated gradient.</summary>
    public Gradients Gradients { get; }

    /// <inheritdoc/>
    public long StepCount => _optimizer?.StepCount ?? 0;

    /// <inheritdoc/>
    public void ForwardCompletions(GrpoMicroBatch micro, float temperature, Span<double> logProbs, Span<double> entropies)
    {
        ArgumentNullException.ThrowIfNull(micro);
        _model.Forward(micro.Tokens, micro.Count, micro.Mask);
        _last = micro;
        _temperature = temperature;
        var logits = _model.Logits;
        var lpF = new float[micro.Tc];
        var hF = new float[micro.Tc];
        for (var i = 0; i < micro.Count; i++)
        {
            var s = micro.Batch[micro.Start + i];
            int cn = s.Completion.Length, row = (i * micro.T) + s.Prompt.Length - 1;
            var h = entropies.IsEmpty ? Span<float>.Empty : hF.AsSpan(0, cn);
            TokenLogProbs.Forward<float>(logits.Slice(row * _v, cn * _v), s.Completion, _v, lpF.AsSpan(0, cn), h, temperature);
            for (var k = 0; k < cn; k++)
            {
                logProbs[(i * micro.Tc) + k] = lpF[k];
                if (!entropies.IsEmpty)
                {
                    entropies[(i * micro.Tc) + k] = hF[k];
                }
            }
        }
    }

    /// <inheritdoc/>
    public int[] Selection(int layer) => _model.Selection(layer);

    /// <inheritdoc/>
    public void BackwardCompletions(ReadOnlySpan<double> dLogProbs)
    {
        var micro = _last ?? throw new InvalidOperationException("no forward to go back through");

        // dlogits (b·T, V) from dlogp through log softmax(z/τ), only on the rows that predict completion tokens.
        var size = micro.Count * micro.T * _v;
        if (_dLogits.Length < size)
        {
            _dLogits = new float[size];
        }

        var dLogits = _dLogits.AsSpan(0, size);
        dLogits.Clear();
        var logits = _model.Logits;
        var dlpF = new float[micro.Tc];
        for (var i = 0; i < micro.Count; i++)
        {
            var s = micro.Batch[micro.Start + i];
            int cn = s.Completion.Length, row = (i * micro.T) + s.Prompt.Length - 1;
            for (var k = 0; k < cn; k++)
            {
                dlpF[k] = (float)dLogProbs[(i * micro.Tc) + k];
            }

            TokenLogProbs.Backward<float>(logits.Slice(row * _v, cn * _v), s.Completion, _v, dlpF.AsSpan(0, cn), dLogits.Slice(row * _v, cn * _v), _temperature);
        }

        _model.BackwardFromLogits(Gradients, dLogits);
    }

    /// <inheritdoc/>
    public void ZeroGradients() => Gradients.Clear();

    /// <inheritdoc/>
    public double GradientNorm() => GradientClipping.GlobalNorm(Gradients.Data);

    /// <inheritdoc/>
    public AdamWStepResult OptimizerStep() =>
        (_optimizer ?? throw new InvalidOperationException("a reference engine has no optimizer")).Step(_weights.Data, Gradients.Data);

    /// <inheritdoc/>
    public void UpdateRoutingBias(int layer, ReadOnlySpan<float> load, float speed) =>
        ExpertLoadBalancing.UpdateBias(load.ToArray(), _weights.Get($"model.layers.{layer}.mlp.gate.e_score_correction_bias"), speed);
}
