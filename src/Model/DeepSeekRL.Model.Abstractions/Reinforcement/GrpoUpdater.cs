using DeepSeekRL.Model.PolicyLosses;

namespace DeepSeekRL.Model.Reinforcement;

// One GRPO policy update (reference rl-and-rewards.md §2, μ = 1): an engine (IGrpoEngine: the native engine's or
// the libtorch one's) forwards prompt ++ completion and returns the completion tokens' log-probs; PolicyLoss (host
// arithmetic shared by every engine) gives the loss and dLoss/dlogp; the engine backpropagates that into its gradient,
// accumulated over micro-batches, then takes one AdamW step. It is not a rollout engine, a reward scorer or an
// advantage estimator: those produce the GrpoSequence inputs.

/// <summary>Takes GRPO policy-gradient steps on a policy's weights from scored rollouts.</summary>
/// <remarks>
/// <para>
/// The ratio's "old" policy is the current policy itself, detached (ρ = 1: the standard single-update GRPO); the
/// rollout's <see cref="GrpoSequence.SamplingLogProbs"/> feed <see cref="PolicyLoss"/>'s off-policy correction, which
/// weights each sequence by exp(Σ_t (logp_θ − logp_sampling)) and masks it outside
/// [<see cref="PolicyLossOptions.OffPolicyMinRatio"/>, <see cref="PolicyLossOptions.OffPolicyMaxRatio"/>].
/// </para>
/// <para>
/// Micro-batching is exact: each micro-batch's loss is rescaled so that the sum over micro-batches equals the
/// aggregation over the whole batch (per-sequence means for <c>grpo</c>, the batch's active tokens for <c>bnpo</c>
/// and <c>dapo</c>, B · max completion length for <c>dr_grpo</c>). Routing is a constant of the forward, as in
/// the native <c>TrainingModel</c>; the MTP module and the balance loss are not used. Deterministic (per engine); not thread-safe.
/// </para>
/// </remarks>
public sealed class GrpoUpdater
{
    private readonly IGrpoEngine _policy;
    private readonly IGrpoEngine? _reference;
    private readonly GrpoUpdaterOptions _options;

    /// <summary>Creates an updater over any engine.</summary>
    /// <param name="policy">The policy's engine (weights, gradient and optimizer).</param>
    /// <param name="reference">The frozen reference's engine for the KL term; required when β &gt; 0.</param>
    /// <param name="options">The options (validated).</param>
    /// <exception cref="ArgumentException">Invalid options, β &gt; 0 without a reference, or mismatched configs.</exception>
    public GrpoUpdater(IGrpoEngine policy, IGrpoEngine? reference, GrpoUpdaterOptions options)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } error)
        {
            throw new ArgumentException(error, nameof(options));
        }

        if (options.Loss.Beta > 0 && reference is null)
        {
            throw new ArgumentException($"beta = {options.Loss.Beta} needs a reference model", nameof(reference));
        }

        if (options.PadToken >= policy.Config.VocabSize)
        {
            throw new ArgumentException($"pad_token = {options.PadToken}: outside vocab_size = {policy.Config.VocabSize}", nameof(options));
        }

        _policy = policy;
        _reference = reference;
        _options = options;
    }

    /// <summary>The policy's engine.</summary>
    public IGrpoEngine Engine => _policy;

    /// <summary>One optimizer step on the whole batch: gradient of the GRPO loss, AdamW, then the optional routing-bias update.</summary>
    /// <param name="batch">The rollouts (typically G completions for each of several prompts), non-empty.</param>
    /// <param name="cancellationToken">Checked between micro-batches; a cancelled step leaves the weights untouched.</param>
    /// <returns>The step's metrics.</returns>
    /// <exception cref="ArgumentException">A malformed sequence (a bug in the caller).</exception>
    /// <exception cref="OperationCanceledException">Cancelled before the optimizer step.</exception>
    public GrpoStepMetrics Step(IReadOnlyList<GrpoSequence> batch, CancellationToken cancellationToken = default)
    {
        var m = Accumulate(batch, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        var result = _policy.OptimizerStep();
        if (_options.RoutingBiasSpeed > 0)
        {
            for (var l = 0; l < m.ExpertLoad.Count; l++)
            {
                var load = m.ExpertLoad[l];
                if (load.Length > 0)
                {
                    _policy.UpdateRoutingBias(l, Array.ConvertAll(load, x => (float)x), _options.RoutingBiasSpeed);
                }
            }
        }

        return m with { Step = result.Step, GradNorm = result.GradNorm, ClipFactor = result.ClipFactor, LearningRate = result.LearningRate };
    }

    /// <summary>Computes the full-batch gradient into the engine without stepping (diagnostics, tests, external optimizers).</summary>
    /// <param name="batch">The rollouts.</param>
    /// <param name="cancellationToken">Checked between micro-batches.</param>
    /// <returns>The metrics; <see cref="GrpoStepMetrics.LearningRate"/> is NaN and <see cref="GrpoStepMetrics.Step"/> the steps taken so far.</returns>
    public GrpoStepMetrics ComputeGradients(IReadOnlyList<GrpoSequence> batch, CancellationToken cancellationToken = default) =>
        Accumulate(batch, cancellationToken);

    /// <summary>logp_θ of every completion token under the current policy (at the temperature), per sequence.</summary>
    /// <param name="batch">The sequences (advantages and sampling log-probs are ignored).</param>
    /// <returns>One array per sequence, one log-prob per completion token.</returns>
    public double[][] CompletionLogProbs(IReadOnlyList<GrpoSequence> batch)
    {
        Check(batch);
        var result = new double[batch.Count][];
        for (var start = 0; start < batch.Count; start += _options.MicroBatchSequences)
        {
            var b = Math.Min(_options.MicroBatchSequences, batch.Count - start);
            var micro = Pack(batch, start, b);
            var lp = new double[b * micro.Tc];
            _policy.ForwardCompletions(micro, _options.Temperature, lp, []);
            for (var i = 0; i < b; i++)
            {
                result[start + i] = lp.AsSpan(i * micro.Tc, batch[start + i].Completion.Length).ToArray();
            }
        }

        return result;
    }

    /// <summary>Clears the engine's gradient and accumulates the whole batch's gradient, micro-batch by micro-batch.</summary>
    private GrpoStepMetrics Accumulate(IReadOnlyList<GrpoSequence> batch, CancellationToken cancellationToken)
    {
        Check(batch);
        var c = _policy.Config;
        var loss = _options.Loss;
        int bTotal = batch.Count, maxCompletion = 0;
        long active = 0;
        foreach (var s in batch)
        {
            active += s.Completion.Length;
            maxCompletion = Math.Max(maxCompletion, s.Completion.Length);
        }

        var expertLoad = new int[c.NumHiddenLayers][];
        for (var l = 0; l < expertLoad.Length; l++)
        {
            expertLoad[l] = l >= c.FirstKDenseReplace && c.NRoutedExperts > 0 ? new int[c.NRoutedExperts] : [];
        }

        _policy.ZeroGradients();
        double lossSum = 0, klSum = 0, entropySum = 0, ratioSum = 0, low = 0, high = 0, region = 0, dual = 0, masked = 0;
        for (var start = 0; start < bTotal; start += _options.MicroBatchSequences)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var b = Math.Min(_options.MicroBatchSequences, bTotal - start);
            var micro = Pack(batch, start, b);
            int tc = micro.Tc, n = b * tc;
            double microActive = 0;
            for (var i = 0; i < b; i++)
            {
                microActive += batch[start + i].Completion.Length;
            }

            // Per-completion-token buffers [b, Tc], zero on padding.
            double[] lp = new double[n], entropy = new double[n], mask = new double[n], sampling = new double[n], advantages = new double[b];
            _policy.ForwardCompletions(micro, _options.Temperature, lp, entropy);
            CountLoad(micro, expertLoad);
            for (var i = 0; i < b; i++)
            {
                var s = batch[start + i];
                advantages[i] = s.Advantage;
                for (var k = 0; k < s.Completion.Length; k++)
                {
                    var j = (i * tc) + k;
                    mask[j] = 1;

                    // No sampling log-probs: the sequence is its own sampler (off-policy weight exactly 1).
                    sampling[j] = s.SamplingLogProbs.Length > 0 ? s.SamplingLogProbs[k] : lp[j];
                }
            }

            double[] referenceLp = [];
            if (_reference is not null)
            {
                referenceLp = new double[n];
                _reference.ForwardCompletions(micro, _options.Temperature, referenceLp, []);
            }

            var inputs = new PolicyLossInputs(b, tc, lp, mask, advantages)
            {
                ReferenceLogProbs = referenceLp,
                SamplingLogProbs = sampling,
                Entropies = entropy,
            };
            var dlp = new double[n];
            var r = PolicyLoss.Compute(inputs, loss, dlp);

            // Rescale this micro-batch's aggregation to the whole batch's (the sum over micro-batches is the full loss).
            var scale = loss.Aggregation switch
            {
                LossAggregation.Grpo => (double)b / bTotal,
                LossAggregation.Bnpo => microActive / active,
                LossAggregation.Dapo => loss.StepActiveTokens is null ? microActive / active : 1,
                _ => loss.MaxCompletionLength is null ? (double)b * tc / ((double)bTotal * maxCompletion) : (double)b / bTotal,
            };
            lossSum += scale * r.Loss;
            klSum += r.MeanKl * microActive;
            entropySum += r.MeanEntropy * microActive;
            ratioSum += r.MeanRatio * microActive;
            low += r.ClipFractionLow * microActive;
            high += r.ClipFractionHigh * microActive;
            region += r.ClipFractionRegion * microActive;
            dual += r.DualClipFraction * microActive;
            masked += r.OffPolicyMaskedFraction * b;

            for (var j = 0; j < n; j++)
            {
                dlp[j] *= scale;
            }

            _policy.BackwardCompletions(dlp);
        }

        var perToken = 1.0 / active;
        return new GrpoStepMetrics(
            Step: _policy.StepCount,
            Loss: lossSum,
            KlMean: _reference is null ? double.NaN : klSum * perToken,
            EntropyMean: entropySum * perToken,
            RatioMean: ratioSum * perToken,
            ClipLowFraction: low * perToken,
            ClipHighFraction: high * perToken,
            ClipRegionFraction: region * perToken,
            DualClipFraction: dual * perToken,
            OffPolicyMaskedFraction: masked / bTotal,
            GradNorm: _policy.GradientNorm(),
            ClipFactor: 1,
            LearningRate: double.NaN,
            Sequences: bTotal,
            CompletionTokens: active,
            ExpertLoad: expertLoad);
    }

    /// <summary>
    /// Lays sequences [start, start + b) out as (b, T) tokens, left-aligned and right-padded with the pad token, with
    /// the target mask 1 on completion positions (causal attention: padding never reaches a real token).
    /// </summary>
    private GrpoMicroBatch Pack(IReadOnlyList<GrpoSequence> batch, int start, int b)
    {
        int t = 0, tc = 0;
        for (var i = 0; i < b; i++)
        {
            var s = batch[start + i];
            t = Math.Max(t, s.Prompt.Length + s.Completion.Length);
            tc = Math.Max(tc, s.Completion.Length);
        }

        var tokens = new int[b * t];                  // (b, T)
        var mask = new float[b * t];                  // (b, T), weight of the target at each position
        Array.Fill(tokens, _options.PadToken);
        for (var i = 0; i < b; i++)
        {
            var s = batch[start + i];
            s.Prompt.CopyTo(tokens, i * t);
            s.Completion.CopyTo(tokens, (i * t) + s.Prompt.Length);
            mask.AsSpan((i * t) + s.Prompt.Length, s.Completion.Length).Fill(1);
        }

        return new GrpoMicroBatch(batch, start, b, tokens, mask, t, tc);
    }

    /// <summary>Adds the experts chosen for every real token of the last policy forward to the per-layer loads.</summary>
    private void CountLoad(GrpoMicroBatch micro, int[][] expertLoad)
    {
        var k = _policy.Config.NumExpertsPerTok;
        for (var l = 0; l < expertLoad.Length; l++)
        {
            var load = expertLoad[l];
            var selection = load.Length > 0 ? _policy.Selection(l) : [];
            if (selection.Length == 0)
            {
                continue;
            }

            for (var i = 0; i < micro.Count; i++)
            {
                var s = micro.Batch[micro.Start + i];
                var rows = selection.AsSpan(i * micro.T * k, (s.Prompt.Length + s.Completion.Length) * k);
                foreach (var e in rows)
                {
                    load[e]++;
                }
            }
        }
    }

    private static void Check(IReadOnlyList<GrpoSequence> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            throw new ArgumentException("the batch is empty", nameof(batch));
        }

        for (var i = 0; i < batch.Count; i++)
        {
            var s = batch[i] ?? throw new ArgumentException($"sequence {i} is null", nameof(batch));
            if (s.Prompt is null || s.Completion is null || s.SamplingLogProbs is null)
            {
                throw new ArgumentException($"sequence {i}: prompt, completion and sampling log-probs must not be null", nameof(batch));
            }

            if (s.Prompt.Length < 1 || s.Completion.Length < 1)
            {
                throw new ArgumentException($"sequence {i}: needs at least one prompt and one completion token (got {s.Prompt.Length} and {s.Completion.Length})", nameof(batch));
            }

            if (s.SamplingLogProbs.Length != 0 && s.SamplingLogProbs.Length != s.Completion.Length)
            {
                throw new ArgumentException($"sequence {i}: {s.SamplingLogProbs.Length} sampling log-probs for {s.Completion.Length} completion tokens", nameof(batch));
            }

            if (!double.IsFinite(s.Advantage))
            {
                throw new ArgumentException($"sequence {i}: advantage {s.Advantage} is not finite", nameof(batch));
            }
        }
    }
}
