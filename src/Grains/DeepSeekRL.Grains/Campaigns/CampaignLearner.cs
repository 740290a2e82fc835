using System.Diagnostics;
using System.Text.Json.Nodes;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.PolicyLosses;
using DeepSeekRL.Model.Reinforcement;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Rewards.Reflection;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Singletons;
using DeepSeekRL.Storage.Stores;
using AdvantageNormalization = DeepSeekRL.Campaigns.Specs.AdvantageNormalization;
using KlEstimator = DeepSeekRL.Campaigns.Specs.KlEstimator;
using LossAggregation = DeepSeekRL.Campaigns.Specs.LossAggregation;
using ModelAdvantageNormalization = DeepSeekRL.Model.PolicyLosses.AdvantageNormalization;
using ModelKlEstimator = DeepSeekRL.Model.PolicyLosses.KlEstimator;
using ModelLossAggregation = DeepSeekRL.Model.PolicyLosses.LossAggregation;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>
/// A campaign's learner, a fenced singleton: it holds the lease <c>learner/{id}</c>, and every write it makes (policy
/// versions, step metrics, checkpoints, progress) commits only while that lease's epoch is current. It closes a
/// step from what is stored in PostgreSQL alone, so a learner that restarts from its last checkpoint recomputes the
/// steps after it bit for bit (and checks that against the versions it had published).
/// </summary>
public sealed partial class CampaignLearner : IDisposable
{
    private readonly CampaignDefinition _definition;
    private readonly LearnerStore _store;
    private readonly SingletonLease _lease;
    private readonly PolicyRegistry _registry;
    private readonly ModelEngines _engines;
    private readonly int _threads;
    private IPolicyTrainer? _policy;
    private IGrpoEngine? _reference;
    private GrpoUpdater? _updater;
    private int _version;
    private Task _checkpoint = Task.CompletedTask;
    private (int Step, List<StepSample> Samples)? _complete;

    /// <summary>Creates the learner of a campaign under a lease it already holds.</summary>
    /// <param name="definition">The campaign.</param>
    /// <param name="store">The learner's rows.</param>
    /// <param name="lease">The learner's lease.</param>
    /// <param name="registry">The policy registry.</param>
    /// <param name="engines">The model engines (the spec names the backend and device).</param>
    /// <param name="threads">Kernel threads.</param>
    public CampaignLearner(CampaignDefinition definition, LearnerStore store, SingletonLease lease, PolicyRegistry registry, ModelEngines engines, int threads = 2)
    {
        _definition = definition;
        _store = store;
        _lease = lease;
        _registry = registry;
        _engines = engines;
        _threads = threads;
    }

    /// <summary>The lease name of a campaign's learner.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <returns>The name.</returns>
    public static string LeaseName(long campaignId) => $"learner/{campaignId}";

    /// <inheritdoc/>
    public long CampaignId => _definition.Id;

    /// <summary>The newest policy version this learner published or loaded.</summary>
    public int PolicyVersion => _version;

    /// <summary>Called after each publication with the version and its weights (for in-process rollout workers).</summary>
    public Action<int, float[]>? Published { get; init; }

    /// <summary>Steps whose recomputation after a restart gave other weights than those published before (0 when deterministic).</summary>
    public int ReplayMismatches { get; private set; }

    /// <inheritdoc/>
    public async Task<int> ActivateAsync(CancellationToken cancellationToken)
    {
        // The newest checkpoint: the optimizer state at a step, whose weights are that step's policy version.
        var checkpoint = await _store.LatestCheckpointAsync(_definition.Id, cancellationToken);

        if (!_definition.Trains)
        {
            _version = 0;
            return checkpoint is null ? 0 : checkpoint.Step + 1;
        }

        var config = _definition.Config!;
        _version = checkpoint?.PolicyVersion ?? 0;
        var weights = await LoadVersionAsync(_version, cancellationToken);
        var specs = ParameterLayout.Parameters(config);
        AdamW? state = null;
        if (checkpoint is not null)
        {
            var directory = Directory.CreateTempSubdirectory("deepseekrl-optimizer-").FullName;
            try
            {
                await File.WriteAllBytesAsync(Path.Combine(directory, AdamW.FileName), checkpoint.Optimizer, cancellationToken);
                state = AdamW.Load(directory, specs, OptimizerOptions());
            }
            finally
            {
                Directory.Delete(directory, recursive: true);
            }
        }

        var spec = (NativePolicySpec)_definition.Spec.Policy;
        var engine = _engines.Get(spec.Backend);
        var options = new ModelEngineOptions { Device = spec.Device, Threads = _threads };
        Dispose();
        _policy = engine.CreateTrainer(weights, OptimizerOptions(), state, options);
        _reference = _definition.Spec.Algorithm.Beta > 0 ? engine.CreateReference(await LoadVersionAsync(0, cancellationToken), options) : null;
        _updater = new GrpoUpdater(_policy.Grpo, _reference, UpdaterOptions());
        return checkpoint is null ? 0 : checkpoint.Step + 1;
    }

    /// <inheritdoc/>
    public async Task<int?> StepGroupsAsync(int step, CancellationToken cancellationToken)
    {
        var items = await _store.StepItemsAsync(_definition.Id, step, cancellationToken);
        return items.Finished ? await UsableGroupsAsync(step, cancellationToken) : null;
    }

    private async Task<int> UsableGroupsAsync(int step, CancellationToken cancellationToken)
    {
        // Once every item of the step has finished its rows are final: the close that follows uses this read.
        var samples = await ReadSamplesAsync(step, cancellationToken);
        _complete = (step, samples);
        var groups = Groups(samples, step);
        return _definition.Spec.Algorithm.DynamicSampling && _definition.Trains ? groups.Count(HasSignal) : groups.Count;
    }

    /// <inheritdoc/>
    public async Task<LearnerStepResult> CloseStepAsync(int step, CancellationToken cancellationToken)
    {
        await _checkpoint;
        var stopwatch = Stopwatch.StartNew();
        var algorithm = _definition.Spec.Algorithm;
        var samples = _complete is { } complete && complete.Step == step ? complete.Samples : await ReadSamplesAsync(step, cancellationToken);
        _complete = null;
        var allGroups = Groups(samples, step);
        var groups = _definition.Spec.Algorithm.DynamicSampling && _definition.Trains
            ? allGroups.Where(HasSignal).Take(algorithm.PromptsPerStep).ToList()
            : allGroups;
        var metrics = new JsonObject
        {
            ["step"] = step,
            ["groups"] = groups.Count,
            ["groups_sampled"] = allGroups.Count,
            ["samples"] = samples.Count,
        };
        AddRewardMetrics(metrics, samples, allGroups);
        await AddTimingMetricsAsync(metrics, step, cancellationToken);
        var published = _version;
        var replayed = false;
        var readSeconds = stopwatch.Elapsed.TotalSeconds;
        if (_definition.Trains)
        {
            var advantages = StepAdvantages(groups, algorithm.GroupSize, algorithm.AdvantageNormalization);
            var sequences = new List<GrpoSequence>(advantages.Length);
            var useSampling = algorithm.AllowedStaleness > 0;
            var k = 0;
            foreach (var group in groups)
            {
                var prompt = _definition.EncodePrompt(_definition.Train[group[0].PromptIndex].Prompt);
                foreach (var sample in group)
                {
                    sequences.Add(new GrpoSequence(prompt, sample.Tokens, useSampling ? sample.LogProbs : [], advantages[k++]));
                }
            }

            var update = Stopwatch.StartNew();
            if (sequences.Count > 0 && sequences.Any(s => s.Advantage != 0))
            {
                var result = _updater!.Step(sequences, cancellationToken);
                metrics["loss"] = result.Loss;
                metrics["kl"] = double.IsNaN(result.KlMean) ? null : result.KlMean;
                metrics["entropy"] = result.EntropyMean;
                metrics["ratio_mean"] = result.RatioMean;
                metrics["clip_low_fraction"] = result.ClipLowFraction;
                metrics["clip_high_fraction"] = result.ClipHighFraction;
                metrics["clip_fraction"] = result.ClipRegionFraction;
                metrics["off_policy_masked_fraction"] = result.OffPolicyMaskedFraction;
                metrics["grad_norm"] = result.GradNorm;
                metrics["learning_rate"] = result.LearningRate;
                metrics["train_tokens"] = result.CompletionTokens;
                var load = new JsonArray();
                foreach (var layer in result.ExpertLoad)
                {
                    load.Add(new JsonArray(layer.Select(x => (JsonNode?)x).ToArray()));
                }

                metrics["expert_load"] = load;
            }
            else
            {
                metrics["update_skipped"] = "no group with a reward signal";
            }

            metrics["update_seconds"] = update.Elapsed.TotalSeconds;
            var publish = Stopwatch.StartNew();
            (published, replayed) = await PublishAsync(step + 1, cancellationToken);
            metrics["publish_seconds"] = publish.Elapsed.TotalSeconds;
        }

        metrics["policy_version"] = published;
        metrics["learner_read_seconds"] = readSeconds;
        var checkpoint = _definition.Trains && (step + 1 == algorithm.Steps
            || (_definition.Spec.CheckpointEverySteps > 0 && (step + 1) % _definition.Spec.CheckpointEverySteps == 0));
        byte[]? optimizerBytes = null;
        if (checkpoint)
        {
            var directory = Directory.CreateTempSubdirectory("deepseekrl-optimizer-").FullName;
            try
            {
                _policy!.OptimizerState().Save(directory);
                optimizerBytes = await File.ReadAllBytesAsync(Path.Combine(directory, AdamW.FileName), cancellationToken);
            }
            finally
            {
                Directory.Delete(directory, recursive: true);
            }
        }

        metrics["learner_seconds"] = stopwatch.Elapsed.TotalSeconds;
        var json = metrics.ToJsonString(CampaignJson.Options);
        var (committed, existed) = await _store.RecordStepAsync(_lease, _definition.Id, step, json, published, ReplayMismatches, cancellationToken);
        replayed |= existed;
        if (committed)
        {
            ReplayMismatches = 0;
        }

        if (!committed)
        {
            throw new LeaseLostException($"campaign {_definition.Id}: the learner's lease (epoch {_lease.Epoch}) was taken over; step {step} was not recorded by this learner");
        }

        if (optimizerBytes is not null)
        {
            // Off the step's critical path: the next step's rollouts start while the checkpoint is written. A learner
            // that dies first resumes from the checkpoint before (and recomputes one more interval).
            _checkpoint = WriteCheckpointAsync(step, published, optimizerBytes, cancellationToken);
        }

        return new LearnerStepResult(step, published, json, replayed);
    }

    /// <summary>Lets go of the policy's engine resources (weights, gradient, optimizer state; device memory with libtorch).</summary>
    public void Dispose()
    {
        _updater = null;
        (_reference as IDisposable)?.Dispose();
        _reference = null;
        _policy?.Dispose();
        _policy = null;
    }

    /// <summary>Waits for the checkpoint being written, if any.</summary>
    /// <returns>A task.</returns>
    public Task FlushAsync() => _checkpoint;

    /// <summary>Writes the last checkpoint and records the campaign as completed (fenced).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    /// <exception cref="LeaseLostException">Another learner took the lease over before completion was recorded.</exception>
    public async Task CompleteCampaignAsync(CancellationToken cancellationToken)
    {
        await FlushAsync();
        var committed = await _store.CompleteCampaignAsync(_lease, _definition.Id, cancellationToken);
        if (!committed)
        {
            throw new LeaseLostException($"campaign {_definition.Id}: the learner's lease was taken over before completion was recorded");
        }
    }

    private async Task WriteCheckpointAsync(int step, int published, byte[] optimizerBytes, CancellationToken cancellationToken)
    {
        var committed = await _store.WriteCheckpointAsync(_lease, _definition.Id, new LearnerCheckpoint(step, published, optimizerBytes), cancellationToken);
        if (!committed)
        {
            throw new LeaseLostException($"campaign {_definition.Id}: the learner's lease was taken over; the checkpoint of step {step} was not written");
        }
    }

    private async Task<(int Version, bool Replayed)> PublishAsync(int version, CancellationToken cancellationToken)
    {
        var directory = Directory.CreateTempSubdirectory("deepseekrl-publish-").FullName;
        try
        {
            // The same writer as version 0's, so equal weights give equal bytes (and equal checksums).
            var store = ParameterStore.Allocate(_definition.Config!);
            _policy!.GetWeights(store.Data);
            ModelCheckpoint.Save(store, directory);
            var file = Path.Combine(directory, ModelCheckpoint.WeightsFileName);
            var existing = await _registry.GetAsync(_definition.Id, version, cancellationToken);
            var outcome = await _registry.PublishAsync(_definition.Id, version, file, SingletonLeases.Fence(_lease), cancellationToken);
            if (!outcome.Succeeded)
            {
                if (existing is null)
                {
                    throw new LeaseLostException(outcome.Error!);
                }

                // Recomputed after a restart, the step gave other weights than those it published before: keep what the
                // cluster already rolled out with, and count the mismatch (reported on the campaign).
                ReplayMismatches++;
                var adopted = await LoadVersionAsync(version, cancellationToken);
                _policy.SetWeights(adopted.Data);
                adopted.Data.CopyTo(store.Data, 0);
            }

            _version = version;
            Published?.Invoke(version, store.Data);
            return (version, existing is not null);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private async Task<ModelWeights> LoadVersionAsync(int version, CancellationToken cancellationToken)
    {
        var published = await _registry.GetAsync(_definition.Id, version, cancellationToken)
            ?? throw new InvalidDataException($"campaign {_definition.Id}: policy version {version} is not published");
        var directory = Directory.CreateTempSubdirectory("deepseekrl-learner-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(directory, ModelCheckpoint.ConfigFileName), _definition.ConfigJson, cancellationToken);
            var downloaded = await _registry.DownloadAsync(published, Path.Combine(directory, ModelCheckpoint.WeightsFileName), cancellationToken);
            if (!downloaded.Succeeded)
            {
                throw new InvalidDataException(downloaded.Error);
            }

            var (weights, error) = ModelWeights.LoadDirectory(directory);
            return weights ?? throw new InvalidDataException($"campaign {_definition.Id} policy version {version}: {error}");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private Task<List<StepSample>> ReadSamplesAsync(int step, CancellationToken cancellationToken) =>
        _store.StepSamplesAsync(_definition.Id, step, cancellationToken);

    private List<List<StepSample>> Groups(List<StepSample> samples, int step)
    {
        var oldest = step - _definition.Spec.Algorithm.AllowedStaleness;
        return samples
            .Where(s => !_definition.Trains || s.PolicyVersion >= oldest)
            .GroupBy(s => (s.Round, s.Slot))
            .Select(g => g.ToList())
            .Where(g => !_definition.Trains || g.Count == _definition.Spec.Algorithm.GroupSize)
            .ToList();
    }

    /// <summary>
    /// The advantages of a step's groups, in group order: one call over the whole step, so that <c>batch</c>
    /// normalisation divides by the standard deviation of every reward the update uses (TRL's
    /// <c>scale_rewards="batch"</c>), not each group's own. Every group holds <paramref name="groupSize"/> samples.
    /// </summary>
    internal static double[] StepAdvantages(IReadOnlyList<List<StepSample>> groups, int groupSize, AdvantageNormalization mode)
    {
        var rewards = new double[groups.Count * groupSize];
        var k = 0;
        foreach (var group in groups)
        {
            if (group.Count != groupSize)
            {
                throw new InvalidOperationException($"a group of {group.Count} samples in a campaign of group size {groupSize}");
            }

            foreach (var sample in group)
            {
                rewards[k++] = sample.Reward;
            }
        }

        var advantages = new double[rewards.Length];
        Advantages.Compute(rewards, groupSize, Map(mode), advantages);
        return advantages;
    }

    private static bool HasSignal(List<StepSample> group)
    {
        var first = group[0].Reward;
        return group.Any(s => Math.Abs(s.Reward - first) > 1e-8);
    }

    private void AddRewardMetrics(JsonObject metrics, List<StepSample> samples, List<List<StepSample>> groups)
    {
        var n = samples.Count;
        if (n == 0)
        {
            return;
        }

        var mean = samples.Average(s => s.Reward);
        var variance = n > 1 ? samples.Sum(s => (s.Reward - mean) * (s.Reward - mean)) / (n - 1) : 0;
        metrics["reward_mean"] = mean;
        metrics["reward_std"] = Math.Sqrt(variance);
        metrics["zero_std_group_fraction"] = groups.Count == 0 ? 0 : groups.Count(g => !HasSignal(g)) / (double)groups.Count;
        var lengths = samples.Select(s => s.Tokens.Length > 0 ? s.Tokens.Length : s.LogProbs.Length).ToArray();
        metrics["response_length_mean"] = lengths.Average();
        metrics["response_length_max"] = lengths.Max();
        metrics["clipped_length_ratio"] = samples.Count(s => s.FinishReason == "length") / (double)n;
        metrics["completion_tokens"] = lengths.Sum(x => (long)x);
        metrics["stale_samples_dropped"] = _definition.Trains ? samples.Count(s => s.PolicyVersion < metrics["step"]!.GetValue<int>() - _definition.Spec.Algorithm.AllowedStaleness) : 0;
        metrics["policy_lag_mean"] = samples.Average(s => metrics["step"]!.GetValue<int>() - (double)s.PolicyVersion);
    }

    private async Task AddTimingMetricsAsync(JsonObject metrics, int step, CancellationToken cancellationToken)
    {
        var timings = await _store.StepTimingsAsync(_definition.Id, step, cancellationToken);
        if (timings.SamplingSeconds is { } sampling)
        {
            metrics["sampling_seconds"] = sampling;
            metrics["policy_load_seconds"] = timings.PolicyLoadSeconds;
            metrics["cut_at"] = timings.CutAt;
        }

        if (timings.ScoringSeconds is { } scoring)
        {
            metrics["scoring_seconds"] = scoring;
            metrics["scored_at"] = timings.ScoredAt;
        }

        var means = new JsonObject();
        var missing = new JsonObject();
        foreach (var rule in timings.Rules)
        {
            means[rule.Rule] = rule.Mean;
            missing[rule.Rule] = rule.Missing;
        }

        metrics["rewards"] = means;
        metrics["missing_scores"] = missing;
        AddReflectionMetrics(metrics, timings.Reflection);
    }

    /// <summary>Adds the self-verification shares (null where nothing could be measured).</summary>
    /// <param name="metrics">The metrics.</param>
    /// <param name="stored">The summed counts, or null.</param>
    internal static void AddReflectionMetrics(JsonObject metrics, ReflectionTotals? stored)
    {
        var counts = stored is null ? new ReflectionCounts() : Evaluation.Counts(stored);
        foreach (var (name, value) in counts.Metrics())
        {
            metrics[name] = value;
        }
    }

    private AdamWOptions OptimizerOptions()
    {
        var lr = _definition.Spec.Algorithm.LearningRate;
        return new AdamWOptions
        {
            Beta1 = 0.9,
            Beta2 = 0.99,
            WeightDecay = 0.0,
            MaxGradNorm = 1.0,
            Schedule = new LearningRateScheduleOptions { PeakLearningRate = lr, MinLearningRate = lr, WarmupSteps = 0, TotalSteps = Math.Max(1, _definition.Spec.Algorithm.Steps) },
        };
    }

    private GrpoUpdaterOptions UpdaterOptions()
    {
        var a = _definition.Spec.Algorithm;
        return new GrpoUpdaterOptions
        {
            Loss = new PolicyLossOptions
            {
                EpsilonLow = a.EpsilonLow,
                EpsilonHigh = a.EpsilonHigh,
                DualClip = a.DualClip,
                Beta = a.Beta,
                KlEstimator = a.KlEstimator switch { KlEstimator.K1 => ModelKlEstimator.K1, KlEstimator.K2 => ModelKlEstimator.K2, _ => ModelKlEstimator.K3 },
                Aggregation = a.LossAggregation switch
                {
                    LossAggregation.Grpo => ModelLossAggregation.Grpo,
                    LossAggregation.Bnpo => ModelLossAggregation.Bnpo,
                    LossAggregation.DrGrpo => ModelLossAggregation.DrGrpo,
                    _ => ModelLossAggregation.Dapo,
                },
                RatioLevel = a.Variant == AlgorithmVariant.Gspo ? RatioLevel.Sequence : RatioLevel.Token,
                MaxCompletionLength = a.MaxNewTokens,
            },
            Temperature = 1,
            MicroBatchSequences = 8,
            PadToken = _definition.Eos ?? 0,
            Threads = _threads,
        };
    }

    private static ModelAdvantageNormalization Map(AdvantageNormalization mode) => mode switch
    {
        AdvantageNormalization.Batch => ModelAdvantageNormalization.Batch,
        AdvantageNormalization.None => ModelAdvantageNormalization.None,
        _ => ModelAdvantageNormalization.Group,
    };
}

/// <summary>A singleton's lease was taken over: the holder must stop.</summary>
/// <param name="message">What was refused.</param>
public sealed class LeaseLostException(string message) : Exception(message);
