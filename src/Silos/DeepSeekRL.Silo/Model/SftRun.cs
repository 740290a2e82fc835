using System.Diagnostics;
using System.Globalization;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;

namespace DeepSeekRL.Silo.Model;

/// <summary>The settings of one <see cref="SftRun"/>.</summary>
public sealed record SftRunOptions
{
    /// <summary>Passes over the data.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Sequences per step, padded to the longest with EOS (no loss on padding).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Peak learning rate (warm-up, then cosine to a tenth of it).</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Warm-up steps (at most half the run).</summary>
    public int Warmup { get; init; } = 10;

    /// <summary>λ, the MTP loss weight (ignored without an MTP module).</summary>
    public float MtpWeight { get; init; } = 0.3f;

    /// <summary>γ of the auxiliary-loss-free routing-bias update (0 = off).</summary>
    public float BiasSpeed { get; init; } = 1e-3f;

    /// <summary>α of the sequence-wise balance loss (0 = off).</summary>
    public float BalanceAlpha { get; init; }

    /// <summary>Shuffle seed.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Kernel threads.</summary>
    public int Threads { get; init; } = 2;

    /// <summary>The engine: <c>native</c> (default) or <c>torch</c>.</summary>
    public string Backend { get; init; } = ModelBackends.Native;

    /// <summary>The device (<c>cpu</c>, or <c>cuda[:N]</c> with the torch engine).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Stop after this many steps in total (0 = the whole run).</summary>
    public int MaxSteps { get; init; }

    /// <summary>
    /// The group of each example (by index), or null. With groups a batch holds examples of one group only (the
    /// shuffled order is cut into batches per group, then the batches are shuffled together), so short examples are
    /// not padded to the length of long ones of another kind.
    /// </summary>
    public IReadOnlyList<int>? Groups { get; init; }
}

/// <summary>What a finished (or stopped) <see cref="SftRun"/> did.</summary>
/// <param name="Steps">Steps done in total (a resumed run counts the earlier ones).</param>
/// <param name="TotalSteps">Steps of the whole run.</param>
/// <param name="Tokens">Tokens (padding included) trained on by this process.</param>
/// <param name="Seconds">Wall-clock seconds of this process's part.</param>
/// <param name="LastLoss">The last step's total loss (NaN when no step ran here).</param>
public sealed record SftRunResult(int Steps, int TotalSteps, long Tokens, double Seconds, double LastLoss);

/// <summary>
/// The training loop of <c>model train-sft</c> and of the demo's pretraining and SFT stages: AdamW with warm-up +
/// cosine, MTP loss, routing-bias update, loss curve in <c>loss.csv</c>. Resumable: a stopped run (Ctrl-C) saves the
/// weights and the optimizer state (which holds the step and the run's identity) so that the same call with
/// <c>resume</c> continues and ends bit-for-bit where an uninterrupted run ends.
/// </summary>
public static class SftRun
{
    /// <summary>The optimizer metadata key holding the run's identity.</summary>
    public const string RunKeyName = "sft.run";

    /// <summary>Trains <paramref name="weights"/> on <paramref name="examples"/> and saves the model to <paramref name="outDir"/>.</summary>
    /// <param name="weights">The weights to train (changed in place).</param>
    /// <param name="examples">The examples (tokens and loss masks).</param>
    /// <param name="eos">The EOS id (padding).</param>
    /// <param name="options">The settings.</param>
    /// <param name="outDir">Where the model, optimizer state and loss curve go.</param>
    /// <param name="resume">The optimizer state of an interrupted run of the same settings to continue, or null.</param>
    /// <param name="progress">Called after each step with (step, total steps, loss, tokens per second).</param>
    /// <param name="cancellationToken">Stops the run after the current step; the state is saved before the exception.</param>
    /// <returns>The result.</returns>
    /// <exception cref="CliException">The resumed state belongs to another run.</exception>
    /// <exception cref="OperationCanceledException">Stopped; <paramref name="outDir"/> holds the resumable state.</exception>
    public static SftRunResult Run(
        ModelWeights weights,
        IReadOnlyList<SftExample> examples,
        int eos,
        SftRunOptions options,
        string outDir,
        AdamW? resume,
        Action<int, int, double, double>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(options);
        var config = weights.Config;
        var b = options.BatchSize;
        if (options.Groups is { } groupList && groupList.Count != examples.Count)
        {
            throw new ArgumentException($"options.Groups has {groupList.Count} entries for {examples.Count} examples", nameof(options));
        }

        var stepsPerEpoch = StepsPerEpoch(options, examples.Count);
        var totalSteps = stepsPerEpoch * options.Epochs;
        var optimizerOptions = OptimizerOptions(options, totalSteps);
        var runKey = RunKey(options, examples.Count, optimizerOptions.Schedule.WarmupSteps);
        var optimizer = resume ?? new AdamW(ParameterLayout.Parameters(config), optimizerOptions);
        if (resume is not null && (!resume.Metadata.TryGetValue(RunKeyName, out var savedKey) || savedKey != runKey))
        {
            throw new CliException($"--resume: the optimizer state was saved by a run with other data or settings (saved '{savedKey}', now '{runKey}')");
        }

        optimizer.Metadata[RunKeyName] = runKey;
        var firstStep = (int)optimizer.StepCount;
        var stopAt = options.MaxSteps > 0 ? Math.Min(options.MaxSteps, totalSteps) : totalSteps;
        using var trainer = HostEngines.All.Get(options.Backend).CreateTrainer(
            weights, optimizerOptions, optimizer, new ModelEngineOptions { Device = options.Device, Threads = options.Threads });
        var lambda = config.NumNextnPredictLayers > 0 ? options.MtpWeight : 0f;

        // The largest batch any step can have (B sequences of the longest example): its buffers first, so that the
        // steps reuse them instead of allocating each new largest batch beside the last (bounded memory).
        var longest = 2;
        foreach (var example in examples)
        {
            longest = Math.Max(longest, example.Tokens.Length);
        }

        trainer.Reserve(Math.Min(b, examples.Count), longest, lambda, options.BalanceAlpha);
        var order = new int[examples.Count];
        Directory.CreateDirectory(outDir);
        var curvePath = Path.Combine(outDir, "loss.csv");
        var append = firstStep > 0 && File.Exists(curvePath);
        using var curve = new StreamWriter(curvePath, append);
        if (!append)
        {
            curve.WriteLine("step,epoch,loss,main_loss,mtp_loss,lr,grad_norm,tokens_per_s,expert_max_vio");
        }

        var total = Stopwatch.StartNew();
        long trainedTokens = 0;
        var step = 0;
        var lastLoss = double.NaN;
        try
        {
            for (var epoch = 1; epoch <= options.Epochs && step < stopAt; epoch++)
            {
                if ((epoch * stepsPerEpoch) <= firstStep)
                {
                    step += stepsPerEpoch;
                    continue;
                }

                foreach (var batch in Batches(options, order, epoch))
                {
                    if (step >= stopAt)
                    {
                        break;
                    }

                    if (step < firstStep)
                    {
                        step++;
                        continue;
                    }

                    cancellationToken.ThrowIfCancellationRequested();
                    var rows = batch.Span;
                    var length = 0;
                    foreach (var i in rows)
                    {
                        length = Math.Max(length, examples[i].Tokens.Length);
                    }

                    // (B, T) padded with EOS; padding positions carry no loss.
                    var tokens = new int[rows.Length * length];
                    var mask = new float[rows.Length * length];
                    Array.Fill(tokens, eos);
                    for (var r = 0; r < rows.Length; r++)
                    {
                        var e = examples[rows[r]];
                        e.Tokens.CopyTo(tokens, r * length);
                        for (var t = 0; t < e.LossMask.Length; t++)
                        {
                            mask[(r * length) + t] = e.LossMask[t];
                        }
                    }

                    var t0 = Stopwatch.GetTimestamp();
                    var stepped = trainer.SftStep(tokens, rows.Length, mask, lambda, options.BalanceAlpha, options.BiasSpeed);
                    var (loss, result) = (stepped.Loss, stepped.Optimizer);
                    var maxVio = MeanMaxViolation(trainer, config);
                    var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                    trainedTokens += tokens.Length;
                    step++;
                    lastLoss = loss;
                    var rate = tokens.Length / seconds;
                    curve.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{step},{epoch},{loss:0.######},{stepped.MainLoss:0.######},{stepped.MtpLoss:0.######},{result.LearningRate:0.########},{result.GradNorm:0.######},{rate:0},{maxVio:0.####}"));
                    progress?.Invoke(step, totalSteps, loss, rate);
                }
            }
        }
        finally
        {
            // Stopped or finished: the weights and the optimizer state (with the step) are saved either way, and the
            // caller's weights end as the trained ones.
            trainer.GetWeights(weights.Data);
            var store = ParameterStore.Allocate(config);
            weights.Data.CopyTo(store.Data, 0);
            ModelCheckpoint.Save(store, outDir);
            trainer.OptimizerState().Save(outDir);
        }

        // Finished (a stopped run's process is on its way out and skips this): the next run's buffers must not come on
        // top of this one's.
        trainer.ReleaseBuffers();

        return new SftRunResult(step, totalSteps, trainedTokens, total.Elapsed.TotalSeconds, lastLoss);
    }

    // Each epoch's batches depend only on (seed, epoch, groups), so a resumed run sees the same batches.
    private static List<ReadOnlyMemory<int>> Batches(SftRunOptions options, int[] order, int epoch)
    {
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        var rng = new Random((options.Seed * 7919) + epoch);
        rng.Shuffle(order);
        var b = options.BatchSize;
        var batches = new List<ReadOnlyMemory<int>>();
        if (options.Groups is not { } groups)
        {
            for (var start = 0; start < order.Length; start += b)
            {
                batches.Add(order.AsMemory(start, Math.Min(b, order.Length - start)));
            }

            return batches;
        }

        foreach (var members in order.GroupBy(i => groups[i]).OrderBy(g => g.Key))
        {
            var list = members.ToArray();
            for (var start = 0; start < list.Length; start += b)
            {
                batches.Add(list.AsMemory(start, Math.Min(b, list.Length - start)));
            }
        }

        var shuffled = batches.ToArray();
        rng.Shuffle(shuffled);
        return [.. shuffled];
    }

    private static int StepsPerEpoch(SftRunOptions options, int exampleCount) => options.Groups is { } groups
        ? groups.GroupBy(g => g).Sum(g => (g.Count() + options.BatchSize - 1) / options.BatchSize)
        : (exampleCount + options.BatchSize - 1) / options.BatchSize;

    /// <summary>Loads the optimizer state saved by a stopped run in <paramref name="directory"/>.</summary>
    /// <param name="directory">The run's output directory.</param>
    /// <param name="config">The model config.</param>
    /// <param name="options">The run's settings.</param>
    /// <param name="exampleCount">How many examples the run trains on.</param>
    /// <returns>The state.</returns>
    /// <exception cref="CliException">It cannot be read.</exception>
    public static AdamW LoadState(string directory, DeepSeekV3Config config, SftRunOptions options, int exampleCount)
    {
        ArgumentNullException.ThrowIfNull(options);
        var totalSteps = StepsPerEpoch(options, exampleCount) * options.Epochs;
        try
        {
            return AdamW.Load(directory, ParameterLayout.Parameters(config), OptimizerOptions(options, totalSteps));
        }
        catch (Exception ex) when (ex is SafetensorsException or IOException or InvalidDataException)
        {
            throw new CliException($"--resume: {ex.Message}");
        }
    }

    private static AdamWOptions OptimizerOptions(SftRunOptions options, int totalSteps) => new()
    {
        WeightDecay = 0.0,
        Schedule = new LearningRateScheduleOptions
        {
            PeakLearningRate = options.LearningRate,
            MinLearningRate = options.LearningRate * 0.1,
            WarmupSteps = Math.Min(options.Warmup, Math.Max(1, totalSteps / 2)),
            TotalSteps = Math.Max(totalSteps, 2),
        },
    };

    // The run's identity: a resumed run must have the same data, batching and schedule to end where an uninterrupted
    // run ends.
    private static string RunKey(SftRunOptions o, int examples, long warmup) => string.Create(CultureInfo.InvariantCulture,
        $"{examples}|{o.Epochs}|{o.BatchSize}|{o.LearningRate:R}|{warmup}|{o.Seed}|{o.MtpWeight:R}|{o.BiasSpeed:R}|{o.BalanceAlpha:R}{GroupsKey(o)}");

    // Empty without groups, so runs saved before groups existed keep their identity.
    private static string GroupsKey(SftRunOptions o) => o.Groups is { } groups
        ? string.Create(CultureInfo.InvariantCulture, $"|groups:{string.Join(',', groups.GroupBy(g => g).OrderBy(g => g.Key).Select(g => $"{g.Key}x{g.Count()}"))}")
        : string.Empty;

    /// <summary>Mean over the main model's MoE layers of MaxVio = (max load − mean load) / mean load in the last forward (DeepSeek-V3's balance metric).</summary>
    private static double MeanMaxViolation(IPolicyTrainer trainer, DeepSeekV3Config config)
    {
        double sum = 0;
        var layers = 0;
        for (var layer = config.FirstKDenseReplace; layer < config.NumHiddenLayers; layer++)
        {
            var load = trainer.ExpertLoad(layer);
            if (load.Length > 0)
            {
                sum += ExpertLoadBalancing.Statistics(Array.ConvertAll(load, x => (float)x)).MaxViolation;
                layers++;
            }
        }

        return layers == 0 ? 0 : sum / layers;
    }
}
