using System.Globalization;
using System.Numerics;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Optimization;

// AdamW (Loshchilov & Hutter; PyTorch torch.optim.AdamW's arithmetic) over the engine's contiguous parameter block:
// parameters, gradients and both moments share the ParameterStore layout. Non-trainable slices (the expert-selection
// bias, updated by ExpertLoadBalancing) are skipped entirely. It is not a general optimizer framework: no parameter
// groups beyond "decayed or not", no AMSGrad, no fused multi-tensor tricks.

/// <summary>What one <see cref="AdamW.Step"/> did.</summary>
/// <param name="Step">The update number just taken (1-based).</param>
/// <param name="LearningRate">The learning rate used (from the schedule).</param>
/// <param name="GradNorm">The global L2 norm of the trainable gradients before clipping.</param>
/// <param name="ClipFactor">The factor the gradients were multiplied by (1 = not clipped).</param>
public readonly record struct AdamWStepResult(long Step, double LearningRate, double GradNorm, double ClipFactor);

/// <summary>
/// AdamW with decoupled weight decay, global-norm gradient clipping and the warm-up + cosine schedule, whose whole
/// state (both moments, the step counter, caller metadata) saves next to a checkpoint and loads back exactly.
/// </summary>
/// <remarks>
/// Per trainable element, with clipped gradient g and step t (PyTorch order of operations):
/// m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; p ← p (1 − lr λ); p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε).
/// λ applies to matrices only unless <see cref="AdamWOptions.DecayVectors"/>. Deterministic: the same inputs give
/// the same bits, so a resumed run equals an uninterrupted one. Not thread-safe.
/// </remarks>
public sealed class AdamW
{
    /// <summary>The optimizer file written next to a checkpoint.</summary>
    public const string FileName = "optimizer.safetensors";

    /// <summary>The <c>__metadata__</c> format tag.</summary>
    public const string Format = "deepseekrl-adamw-v1";

    private const string StepKey = "step";
    private const string FormatKey = "format";
    private const string UserPrefix = "user.";

    private readonly long[] _offsets;

    /// <summary>Creates an optimizer with zero moments at step 0 for the layout <paramref name="specs"/>.</summary>
    /// <param name="specs">The parameters in block order (e.g. <see cref="ParameterStore.Specs"/>).</param>
    /// <param name="options">The options (validated).</param>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public AdamW(IReadOnlyList<ParameterSpec> specs, AdamWOptions options)
    {
        ArgumentNullException.ThrowIfNull(specs);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } error)
        {
            throw new ArgumentException(error, nameof(options));
        }

        Specs = specs;
        Options = options;
        _offsets = new long[specs.Count];
        long total = 0;
        for (var i = 0; i < specs.Count; i++)
        {
            _offsets[i] = total;
            total += specs[i].Count;
        }

        FirstMoment = new float[total];
        SecondMoment = new float[total];
    }

    /// <summary>Creates an optimizer for the layout of <paramref name="store"/>.</summary>
    /// <param name="store">The parameters.</param>
    /// <param name="options">The options.</param>
    public AdamW(ParameterStore store, AdamWOptions options)
        : this((store ?? throw new ArgumentNullException(nameof(store))).Specs, options)
    {
    }

    /// <summary>The parameter layout.</summary>
    public IReadOnlyList<ParameterSpec> Specs { get; }

    /// <summary>The options.</summary>
    public AdamWOptions Options { get; }

    /// <summary>The first moment m, in the parameter layout (zero on non-trainable slices).</summary>
    public float[] FirstMoment { get; }

    /// <summary>The second moment v, in the parameter layout (zero on non-trainable slices).</summary>
    public float[] SecondMoment { get; }

    /// <summary>The number of updates taken so far (the schedule position).</summary>
    public long StepCount { get; private set; }

    /// <summary>Sets the step count, when the state moves in from another engine (its moments copied into <see cref="FirstMoment"/> and <see cref="SecondMoment"/>).</summary>
    /// <param name="steps">Updates taken (at least 0).</param>
    public void RestoreStepCount(long steps) => StepCount = steps >= 0 ? steps : throw new ArgumentOutOfRangeException(nameof(steps), $"{steps}: expected >= 0");

    /// <summary>Caller strings saved with the state (e.g. a data cursor or a sampler seed); loaded back by <see cref="Load"/>.</summary>
    public IDictionary<string, string> Metadata { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The learning rate the next <see cref="Step"/> will use.</summary>
    public double NextLearningRate => LearningRateSchedule.At(Options.Schedule, StepCount + 1);

    /// <summary>Takes one AdamW step: clips by global norm, updates the moments and the trainable parameters.</summary>
    /// <param name="parameters">The parameter block (updated in place).</param>
    /// <param name="gradients">The gradient block, same layout (read only; clipping is applied on the fly).</param>
    /// <returns>The step number, learning rate, gradient norm and clip factor.</returns>
    /// <exception cref="ArgumentException">A block's length differs from the layout's.</exception>
    public AdamWStepResult Step(Span<float> parameters, ReadOnlySpan<float> gradients)
    {
        var n = FirstMoment.Length;
        if (parameters.Length != n || gradients.Length != n)
        {
            throw new ArgumentException($"parameters ({parameters.Length}) and gradients ({gradients.Length}) must both hold the layout's {n} elements");
        }

        // The norm covers trainable slices only (a non-trainable slice should hold no gradient anyway).
        double sumSquares = 0;
        for (var i = 0; i < Specs.Count; i++)
        {
            if (Specs[i].Trainable)
            {
                sumSquares += GradientClipping.SumOfSquares(gradients.Slice((int)_offsets[i], (int)Specs[i].Count));
            }
        }

        var norm = Math.Sqrt(sumSquares);
        var clip = GradientClipping.ClipFactor(norm, Options.MaxGradNorm);
        var t = StepCount + 1;
        var lr = LearningRateSchedule.At(Options.Schedule, t);
        var o = Options;
        var k = new Constants(
            Clip: (float)clip,
            Beta1: (float)o.Beta1,
            OneMinusBeta1: (float)(1 - o.Beta1),
            Beta2: (float)o.Beta2,
            OneMinusBeta2: (float)(1 - o.Beta2),
            StepSize: (float)(lr / (1 - Math.Pow(o.Beta1, t))),
            SqrtBiasCorrection2: (float)Math.Sqrt(1 - Math.Pow(o.Beta2, t)),
            Epsilon: (float)o.Epsilon,
            Decay: 1f);
        var decayed = k with { Decay = (float)(1 - (lr * o.WeightDecay)) };
        for (var i = 0; i < Specs.Count; i++)
        {
            var spec = Specs[i];
            if (!spec.Trainable)
            {
                continue;
            }

            int offset = (int)_offsets[i], count = (int)spec.Count;
            var decay = o.DecayVectors || spec.Shape.Length > 1;
            Update(parameters.Slice(offset, count), gradients.Slice(offset, count), FirstMoment.AsSpan(offset, count),
                SecondMoment.AsSpan(offset, count), decay ? decayed : k);
        }

        StepCount = t;
        return new AdamWStepResult(t, lr, norm, clip);
    }

    /// <summary>Writes the state to <paramref name="directory"/>/<see cref="FileName"/> (F32, exact).</summary>
    /// <param name="directory">The checkpoint directory (created if missing).</param>
    /// <remarks>
    /// Tensors <c>exp_avg.{name}</c> and <c>exp_avg_sq.{name}</c> for each trainable parameter; <c>__metadata__</c>
    /// holds the format, the step and the <see cref="Metadata"/> strings (prefixed <c>user.</c>). The learning rate is
    /// not stored: it is a function of the step.
    /// </remarks>
    public void Save(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        var tensors = new List<(string, long[], ReadOnlyMemory<float>)>();
        for (var i = 0; i < Specs.Count; i++)
        {
            var spec = Specs[i];
            if (!spec.Trainable)
            {
                continue;
            }

            var shape = Array.ConvertAll(spec.Shape, d => (long)d);
            tensors.Add(("exp_avg." + spec.Name, shape, FirstMoment.AsMemory((int)_offsets[i], (int)spec.Count)));
            tensors.Add(("exp_avg_sq." + spec.Name, shape, SecondMoment.AsMemory((int)_offsets[i], (int)spec.Count)));
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [FormatKey] = Format,
            [StepKey] = StepCount.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in Metadata)
        {
            metadata[UserPrefix + key] = value;
        }

        Safetensors.Write(Path.Combine(directory, FileName), tensors, SafetensorsDtype.F32, metadata);
    }

    /// <summary>Loads the state saved by <see cref="Save"/> for the layout <paramref name="specs"/>.</summary>
    /// <param name="directory">The checkpoint directory.</param>
    /// <param name="specs">The parameter layout (must match the saved tensors).</param>
    /// <param name="options">The options to continue with (the same as before for an exact resume).</param>
    /// <returns>The optimizer at the saved step with the saved moments and metadata.</returns>
    /// <exception cref="SafetensorsException">The file is missing a tensor, has a wrong shape or a bad step.</exception>
    public static AdamW Load(string directory, IReadOnlyList<ParameterSpec> specs, AdamWOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var path = Path.Combine(directory, FileName);
        var optimizer = new AdamW(specs, options);
        var (entries, _) = Safetensors.ReadHeader(path, out var metadata);
        if (!metadata.TryGetValue(FormatKey, out var format) || format != Format)
        {
            throw new SafetensorsException($"{path}: __metadata__.format is '{format}', expected '{Format}'");
        }

        if (!metadata.TryGetValue(StepKey, out var stepText) || !long.TryParse(stepText, NumberStyles.None, CultureInfo.InvariantCulture, out var step))
        {
            throw new SafetensorsException($"{path}: __metadata__.step is '{stepText}', expected a non-negative integer");
        }

        var tensors = Safetensors.ReadAll(path);
        var expected = 0;
        for (var i = 0; i < specs.Count; i++)
        {
            var spec = specs[i];
            if (!spec.Trainable)
            {
                continue;
            }

            foreach (var (prefix, target) in new[] { ("exp_avg.", optimizer.FirstMoment), ("exp_avg_sq.", optimizer.SecondMoment) })
            {
                var name = prefix + spec.Name;
                if (!tensors.TryGetValue(name, out var tensor) || entries[name].Dtype != SafetensorsDtype.F32)
                {
                    throw new SafetensorsException($"{path}: tensor '{name}' is missing or not F32");
                }

                if (!tensor.Shape.SequenceEqual(Array.ConvertAll(spec.Shape, d => (long)d)))
                {
                    throw new SafetensorsException($"{path}: tensor '{name}' has shape [{string.Join(',', tensor.Shape)}], the layout expects [{string.Join(',', spec.Shape)}]");
                }

                tensor.Data.CopyTo(target.AsSpan((int)optimizer._offsets[i]));
                expected++;
            }
        }

        if (tensors.Count != expected)
        {
            var extra = tensors.Keys.First(k => !IsKnown(k, specs));
            throw new SafetensorsException($"{path}: tensor '{extra}' does not belong to this layout");
        }

        optimizer.StepCount = step;
        foreach (var (key, value) in metadata)
        {
            if (key.StartsWith(UserPrefix, StringComparison.Ordinal))
            {
                optimizer.Metadata[key[UserPrefix.Length..]] = value;
            }
        }

        return optimizer;
    }

    private static bool IsKnown(string tensor, IReadOnlyList<ParameterSpec> specs)
    {
        foreach (var spec in specs)
        {
            if (spec.Trainable && (tensor == "exp_avg." + spec.Name || tensor == "exp_avg_sq." + spec.Name))
            {
                return true;
            }
        }

        return false;
    }

    // The fused update of one slice. Vector<float> lanes and the scalar tail perform the same float operations in the
    // same order (no FMA), so the result does not depend on where the tail starts.
    private static void Update(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, in Constants k)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && p.Length >= Vector<float>.Count)
        {
            var clip = new Vector<float>(k.Clip);
            var b1 = new Vector<float>(k.Beta1);
            var c1 = new Vector<float>(k.OneMinusBeta1);
            var b2 = new Vector<float>(k.Beta2);
            var c2 = new Vector<float>(k.OneMinusBeta2);
            var stepSize = new Vector<float>(k.StepSize);
            var bc2 = new Vector<float>(k.SqrtBiasCorrection2);
            var eps = new Vector<float>(k.Epsilon);
            var decay = new Vector<float>(k.Decay);
            for (; i <= p.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var gi = new Vector<float>(g[i..]) * clip;
                var mi = (b1 * new Vector<float>(m[i..])) + (c1 * gi);
                var vi = (b2 * new Vector<float>(v[i..])) + (c2 * (gi * gi));
                var denom = (Vector.SquareRoot(vi) / bc2) + eps;
                var pi = (new Vector<float>(p[i..]) * decay) - (stepSize * (mi / denom));
                mi.CopyTo(m[i..]);
                vi.CopyTo(v[i..]);
                pi.CopyTo(p[i..]);
            }
        }

        for (; i < p.Length; i++)
        {
            var gi = g[i] * k.Clip;
            var mi = (k.Beta1 * m[i]) + (k.OneMinusBeta1 * gi);
            var vi = (k.Beta2 * v[i]) + (k.OneMinusBeta2 * (gi * gi));
            var denom = (MathF.Sqrt(vi) / k.SqrtBiasCorrection2) + k.Epsilon;
            m[i] = mi;
            v[i] = vi;
            p[i] = (p[i] * k.Decay) - (k.StepSize * (mi / denom));
        }
    }

    private readonly record struct Constants(
        float Clip, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float StepSize,
        float SqrtBiasCorrection2, float Epsilon, float Decay);
}
