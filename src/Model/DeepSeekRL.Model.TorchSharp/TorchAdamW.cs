using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Optimization;
using static TorchSharp.torch;

namespace DeepSeekRL.Model.TorchSharp;

// AdamW on the device over the flat parameter tensor, with the native AdamW's arithmetic: global-norm clipping over the
// trainable slices, the shared LearningRateSchedule, bias corrections folded into the step size and denominator,
// decoupled decay of matrices (and of vectors when DecayVectors), non-trainable slices untouched. Its state saves and
// loads in the native optimizer.safetensors format (exp_avg./exp_avg_sq. + HF names), so either engine resumes the other.

/// <summary>AdamW for <see cref="TorchDeepSeekV3"/>.</summary>
public sealed class TorchAdamW : IDisposable
{
    private readonly IReadOnlyList<ParameterSpec> _specs;
    private readonly Tensor _trainable;
    private readonly Tensor _decay;

    /// <summary>Creates the optimizer with zero moments.</summary>
    /// <param name="model">The model whose <see cref="TorchDeepSeekV3.Flat"/> it updates.</param>
    /// <param name="options">The options (validated).</param>
    public TorchAdamW(TorchDeepSeekV3 model, AdamWOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } error)
        {
            throw new ArgumentException(error, nameof(options));
        }

        Options = options;
        _specs = ParameterLayout.Parameters(model.Config);
        var total = model.Flat.shape[0];
        var decay = new float[total];
        long offset = 0;
        foreach (var spec in _specs)
        {
            if (spec.Trainable && (options.DecayVectors || spec.Shape.Length > 1))
            {
                decay.AsSpan((int)offset, (int)spec.Count).Fill(1);
            }

            offset += spec.Count;
        }

        Model = model;
        _trainable = model.TrainableMask.to(ScalarType.Bool);
        _decay = tensor(decay, [total], ScalarType.Float32, model.Device);
        FirstMoment = zeros(total, ScalarType.Float32, model.Device);
        SecondMoment = zeros(total, ScalarType.Float32, model.Device);
    }

    /// <summary>The model.</summary>
    public TorchDeepSeekV3 Model { get; }

    /// <summary>The options.</summary>
    public AdamWOptions Options { get; }

    /// <summary>m, laid out as the parameters.</summary>
    public Tensor FirstMoment { get; }

    /// <summary>v, laid out as the parameters.</summary>
    public Tensor SecondMoment { get; }

    /// <summary>Updates taken.</summary>
    public long StepCount { get; private set; }

    /// <summary>One update with the gradient in <see cref="TorchDeepSeekV3.Flat"/>'s grad (zero when absent).</summary>
    /// <returns>The step's numbers (norm before clipping).</returns>
    public AdamWStepResult Step()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var flat = Model.Flat;
        var grad = flat.grad is { } g ? g.where(_trainable, 0f) : zeros_like(flat);
        var norm = Math.Sqrt(grad.to(ScalarType.Float64).square().sum().item<double>());
        var clip = GradientClipping.ClipFactor(norm, Options.MaxGradNorm);
        var t = StepCount + 1;
        var lr = LearningRateSchedule.At(Options.Schedule, t);
        var o = Options;
        var gi = grad * (float)clip;
        FirstMoment.mul_((float)o.Beta1).add_(gi * (float)(1 - o.Beta1));
        SecondMoment.mul_((float)o.Beta2).add_(gi * gi * (float)(1 - o.Beta2));
        var denom = (SecondMoment.sqrt() / (float)Math.Sqrt(1 - Math.Pow(o.Beta2, t))) + (float)o.Epsilon;
        var decayFactor = 1f - (_decay * (float)(lr * o.WeightDecay));
        var updated = (flat * decayFactor) - ((FirstMoment / denom) * (float)(lr / (1 - Math.Pow(o.Beta1, t))));
        flat.copy_(updated.where(_trainable, flat));
        StepCount = t;
        return new AdamWStepResult(t, lr, norm, clip);
    }

    /// <summary>The state as a native <see cref="AdamW"/> (for saving, or for the native engine to resume).</summary>
    /// <returns>The optimizer.</returns>
    public AdamW ToNative()
    {
        var native = new AdamW(_specs, Options);
        TorchDeepSeekV3.Copy(FirstMoment, native.FirstMoment);
        TorchDeepSeekV3.Copy(SecondMoment, native.SecondMoment);
        native.RestoreStepCount(StepCount);
        return native;
    }

    /// <summary>Takes the state of a native optimizer with the same layout.</summary>
    /// <param name="native">The optimizer.</param>
    public void Load(AdamW native)
    {
        ArgumentNullException.ThrowIfNull(native);
        if (native.FirstMoment.LongLength != FirstMoment.shape[0])
        {
            throw new ArgumentException($"the optimizer holds {native.FirstMoment.Length} moments, the model {FirstMoment.shape[0]}", nameof(native));
        }

        using var noGrad = no_grad();
        using var m = tensor(native.FirstMoment, [native.FirstMoment.LongLength], ScalarType.Float32);
        using var v = tensor(native.SecondMoment, [native.SecondMoment.LongLength], ScalarType.Float32);
        FirstMoment.copy_(m);
        SecondMoment.copy_(v);
        StepCount = native.StepCount;
    }

    /// <summary>Saves the state as <c>optimizer.safetensors</c> in <paramref name="directory"/> (the native format).</summary>
    /// <param name="directory">The directory.</param>
    public void Save(string directory) => ToNative().Save(directory);

    /// <inheritdoc/>
    public void Dispose()
    {
        _trainable.Dispose();
        _decay.Dispose();
        FirstMoment.Dispose();
        SecondMoment.Dispose();
    }
}
