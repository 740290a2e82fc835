using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Reinforcement;
using static TorchSharp.torch;

namespace DeepSeekRL.Model.TorchSharp;

// Training on the libtorch engine: the GRPO engine (log-probs of completion tokens on the device, the host's
// PolicyLoss weights them, autograd backpropagates) and the SFT step (cross-entropy + MTP + balance loss, autograd,
// AdamW, the aux-loss-free bias update), with the native engine's semantics so the two can be compared step for step.

/// <summary>The libtorch side of a GRPO update (see <see cref="IGrpoEngine"/>).</summary>
public sealed class TorchGrpoEngine : IGrpoEngine, IDisposable
{
    private readonly TorchDeepSeekV3 _model;
    private readonly TorchAdamW? _optimizer;
    private readonly bool _ownsModel;
    private Tensor? _logProbs;

    /// <summary>Creates the engine.</summary>
    /// <param name="model">The model (its weights are updated in place).</param>
    /// <param name="optimizer">The optimizer, or null for a frozen reference.</param>
    /// <param name="ownsModel">Whether <see cref="Dispose"/> also disposes the model (a reference made for the engine alone).</param>
    public TorchGrpoEngine(TorchDeepSeekV3 model, TorchAdamW? optimizer, bool ownsModel = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _optimizer = optimizer;
        _ownsModel = ownsModel;
        _model.RecordRouting = true;
    }

    /// <inheritdoc/>
    public DeepSeekV3Config Config => _model.Config;

    /// <inheritdoc/>
    public long StepCount => _optimizer?.StepCount ?? 0;

    /// <inheritdoc/>
    public void ForwardCompletions(GrpoMicroBatch micro, float temperature, Span<double> logProbs, Span<double> entropies)
    {
        ArgumentNullException.ThrowIfNull(micro);
        Release();
        using var scope = NewDisposeScope();
        int b = micro.Count, tc = micro.Tc, t = micro.T;
        var rows = new long[b * tc];
        var targets = new long[b * tc];
        var mask = new float[b * tc];
        for (var i = 0; i < b; i++)
        {
            var s = micro.Batch[micro.Start + i];
            for (var k = 0; k < tc; k++)
            {
                var real = k < s.Completion.Length;
                rows[(i * tc) + k] = (i * t) + (real ? s.Prompt.Length - 1 + k : 0);
                targets[(i * tc) + k] = real ? s.Completion[k] : 0;
                mask[(i * tc) + k] = real ? 1 : 0;
            }
        }

        var device = _model.Device;
        var tokens = tensor(micro.Tokens.Select(x => (long)x).ToArray(), [b, t], ScalarType.Int64, device);
        var grad = _optimizer is not null;
        Tensor logits;
        using (grad ? null : no_grad())
        {
            logits = _model.Forward(tokens).Logits;
        }

        var z = logits.view(b * t, -1).index_select(0, tensor(rows, [rows.Length], ScalarType.Int64, device)) / temperature;
        var all = z.log_softmax(-1);
        var m = tensor(mask, [mask.Length], ScalarType.Float32, device);
        var lp = all.gather(1, tensor(targets, [targets.Length, 1], ScalarType.Int64, device)).squeeze(1) * m;
        CopyDoubles(lp, logProbs[..(b * tc)]);
        if (!entropies.IsEmpty)
        {
            using var noGrad = no_grad();
            CopyDoubles(-(all.exp() * all).sum(-1) * m, entropies[..(b * tc)]);
        }

        // The graph behind lp keeps what the backward needs; only lp itself outlives this scope.
        _logProbs = lp.DetachFromDisposeScope();
    }

    /// <inheritdoc/>
    public int[] Selection(int layer) =>
        _model.Routing.TryGetValue(layer, out var ids) ? Array.ConvertAll(ids, x => (int)x) : [];

    /// <inheritdoc/>
    public void BackwardCompletions(ReadOnlySpan<double> dLogProbs)
    {
        var lp = _logProbs ?? throw new InvalidOperationException("no forward to go back through");
        var weights = new float[lp.shape[0]];
        for (var i = 0; i < weights.Length; i++)
        {
            weights[i] = (float)dLogProbs[i];
        }

        using (var w = tensor(weights, [weights.Length], ScalarType.Float32, _model.Device))
        {
            lp.backward([w]);
        }

        Release();
    }

    /// <inheritdoc/>
    public void ZeroGradients()
    {
        using var scope = NewDisposeScope(); // .grad hands out a new handle each time
        using var noGrad = no_grad();
        _model.Flat.grad?.zero_();
    }

    /// <inheritdoc/>
    public double GradientNorm()
    {
        using var scope = NewDisposeScope();
        return _model.Flat.grad is { } g ? Math.Sqrt(g.to(ScalarType.Float64).square().sum().item<double>()) : 0;
    }

    /// <inheritdoc/>
    public AdamWStepResult OptimizerStep() => (_optimizer ?? throw new InvalidOperationException("a reference engine has no optimizer")).Step();

    /// <inheritdoc/>
    public void UpdateRoutingBias(int layer, ReadOnlySpan<float> load, float speed) =>
        TorchTrainer.UpdateBias(_model, layer, load, speed);

    /// <inheritdoc/>
    public void Dispose()
    {
        Release();
        if (_ownsModel)
        {
            _model.Dispose();
        }
    }

    private void Release()
    {
        _logProbs?.Dispose();
        _logProbs = null;
    }

    private static void CopyDoubles(Tensor source, Span<double> destination)
    {
        using var cpu = source.detach().to(ScalarType.Float64).cpu().contiguous();
        cpu.data<double>().CopyTo(destination);
    }
}

/// <summary>SFT steps on the libtorch engine with the native <c>SftRun</c>'s semantics.</summary>
/// <param name="model">The model.</param>
/// <param name="optimizer">Its optimizer.</param>
public sealed class TorchTrainer(TorchDeepSeekV3 model, TorchAdamW optimizer)
{
    /// <summary>The model.</summary>
    public TorchDeepSeekV3 Model => model;

    /// <summary>The optimizer.</summary>
    public TorchAdamW Optimizer => optimizer;

    /// <summary>
    /// One step: forward and loss over (B, T) tokens, backward, AdamW, then (γ &gt; 0) the bias update of every MoE
    /// layer that ran, the MTP block's included.
    /// </summary>
    /// <param name="tokens">(B, T) token ids.</param>
    /// <param name="batch">B.</param>
    /// <param name="mask">(B, T) target weights, or empty for ones.</param>
    /// <param name="mtpWeight">W.</param>
    /// <param name="balanceAlpha">α.</param>
    /// <param name="biasSpeed">γ.</param>
    /// <returns>The losses and the optimizer step.</returns>
    public SftStepResult Step(ReadOnlySpan<int> tokens, int batch, ReadOnlySpan<float> mask, float mtpWeight, float balanceAlpha, float biasSpeed)
    {
        if (batch < 1 || tokens.Length % batch != 0 || tokens.Length / batch < 2)
        {
            throw new ArgumentException($"{tokens.Length} tokens do not split into {batch} sequences of at least 2", nameof(tokens));
        }

        var t = tokens.Length / batch;
        using (var scope = NewDisposeScope())
        {
            var ids = new long[tokens.Length];
            for (var i = 0; i < ids.Length; i++)
            {
                ids[i] = tokens[i];
            }

            var device = model.Device;
            var weights = mask.IsEmpty ? null : tensor(mask.ToArray(), [batch, t], ScalarType.Float32, device);
            using (no_grad())
            {
                model.Flat.grad?.zero_();
            }

            var (loss, main, mtp, balance) = model.TrainingLoss(tensor(ids, [batch, t], ScalarType.Int64, device), weights, mtpWeight, balanceAlpha);
            var total = loss.item<float>();
            loss.backward();
            var step = optimizer.Step();
            if (biasSpeed > 0)
            {
                foreach (var (layer, load) in model.ExpertLoad)
                {
                    UpdateBias(model, layer, load, biasSpeed);
                }
            }

            return new SftStepResult(total, main, mtp, balance, step);
        }
    }

    /// <summary>b_e += γ·sign(mean − load_e) on one layer's routing bias (reference §9.1), through the native arithmetic.</summary>
    /// <param name="model">The model.</param>
    /// <param name="layer">The layer.</param>
    /// <param name="load">Tokens per expert.</param>
    /// <param name="speed">γ.</param>
    internal static void UpdateBias(TorchDeepSeekV3 model, int layer, ReadOnlySpan<float> load, float speed)
    {
        var name = $"model.layers.{layer}.mlp.gate.e_score_correction_bias";
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var view = model.P(name);
        var bias = new float[view.shape[0]];
        TorchDeepSeekV3.Copy(view, bias);
        ExpertLoadBalancing.UpdateBias(load.ToArray(), bias, speed);
        using var updated = tensor(bias, [bias.Length], ScalarType.Float32, model.Device);
        view.copy_(updated);
    }
}
