using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Demo;
using DeepSeekRL.Grains;
using DeepSeekRL.Grains.Hosting;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Silo.Diagnostics;
using DeepSeekRL.Silo.Model;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Tokenizers;
using Npgsql;
using SftExample = DeepSeekRL.Model.Training.SftExample;

namespace DeepSeekRL.Silo.Demo;

/// <summary>
/// One run of <c>deepseekrl demo</c> in a working directory: the stages in order, each recorded in
/// <c>state.json</c> when it ends, so <c>--resume</c> skips what is done and continues a stopped stage (training
/// stages from their saved optimizer state, campaigns from the database).
/// </summary>
internal sealed class DemoRun
{
    /// <summary>The stages, in order.</summary>
    public static readonly string[] Stages =
        ["data", "tokenizer", "pretrain", "sft", "eval_base", "eval_sft", "rl", "rejection_sampling", "distill", "eval_distilled"];

    /// <summary>
    /// The harder family: small Countdown puzzles (three numbers 2–9 in the order given, <c>+ - *</c>), whose cold-start
    /// traces guess and check (<see cref="DemoTraces.GuessAndCheck"/>): every completion writes an attempt, few check
    /// it, fewer repair a failed check, so what RL can change here is how often the model verifies.
    /// </summary>
    public static readonly TaskMix CountdownTasks = TaskMix.CountdownOnly with { SmallCountdown = true };

    /// <summary>Distinct small Countdown puzzles the training side draws from (of about 2,000 there are).</summary>
    public const int CountdownTrainPuzzles = 1500;

    /// <summary>
    /// Rollout items the demo's single silo generates together in rejection sampling (a whole round shares each
    /// forward pass: 86 s against 100 s for 12,288 samples). GRPO rolls out item by item: its steps are learner-bound,
    /// and a batched rollout's BLAS threads slowed the learner that follows (96 s against 76 s for 60 steps).
    /// </summary>
    public const int RolloutBatch = 64;

    private const string StateFile = "state.json";
    private readonly string _dir;
    private readonly DemoPreset _preset;
    private readonly int _seed;
    private readonly NpgsqlDataSource _dataSource;
    private readonly SiloServices _services;
    private readonly JsonObject _state;
    private readonly string _backend;
    private readonly string _device;
    private readonly bool _interactive = !Console.IsOutputRedirected;

    private DemoRun(string dir, DemoPreset preset, int seed, NpgsqlDataSource dataSource, SiloServices services, JsonObject state)
    {
        _backend = state["backend"]?.GetValue<string>() ?? ModelBackends.Native;
        _device = state["device"]?.GetValue<string>() ?? "cpu";
        _dir = dir;
        _preset = preset;
        _seed = seed;
        _dataSource = dataSource;
        _services = services;
        _state = state;
    }

    /// <summary>The run's directory.</summary>
    public string Directory => _dir;

    /// <summary>Opens a new run (clearing <paramref name="dir"/>) or, with <paramref name="resume"/>, the run saved there.</summary>
    /// <param name="dir">The working directory.</param>
    /// <param name="preset">The preset (a resumed run keeps its own; a different one is an error).</param>
    /// <param name="seed">The seed.</param>
    /// <param name="resume">Continue the saved run.</param>
    /// <param name="dataSource">The database.</param>
    /// <param name="services">The silo services the campaigns run on.</param>
    /// <param name="backend">The model engine of every stage (<c>native</c> or <c>torch</c>; a resumed run keeps its own).</param>
    /// <param name="device">The engine's device.</param>
    /// <returns>The run.</returns>
    public static DemoRun Open(string dir, DemoPreset preset, int seed, bool resume, NpgsqlDataSource dataSource, SiloServices services, string backend = ModelBackends.Native, string device = "cpu")
    {
        var statePath = Path.Combine(dir, StateFile);
        if (resume)
        {
            if (!File.Exists(statePath))
            {
                throw new CliException($"--resume: {statePath} does not exist; start a run with ./deepseekrl demo");
            }

            JsonObject state;
            try
            {
                state = JsonNode.Parse(File.ReadAllText(statePath))?.AsObject() ?? throw new JsonException("not an object");
            }
            catch (JsonException ex)
            {
                throw new CliException($"--resume: {statePath}: {ex.Message}; remove {dir} and start again");
            }

            var savedPreset = state["preset"]?.GetValue<string>();
            var savedSeed = state["seed"]?.GetValue<int>();
            if (savedPreset != preset.Name || savedSeed != seed)
            {
                throw new CliException($"--resume: the run in {dir} is preset '{savedPreset}' seed {savedSeed}, not '{preset.Name}' seed {seed}; pass the same --quick/--seed");
            }

            var savedBackend = state["backend"]?.GetValue<string>() ?? ModelBackends.Native;
            if (savedBackend != backend)
            {
                throw new CliException($"--resume: the run in {dir} ran on backend '{savedBackend}', not '{backend}'; pass the same --backend");
            }

            return new DemoRun(dir, preset, seed, dataSource, services, state);
        }

        if (System.IO.Directory.Exists(dir) && System.IO.Directory.EnumerateFileSystemEntries(dir).Any())
        {
            // Only a previous demo run is cleared: any other directory is the user's and is left alone.
            if (!File.Exists(statePath))
            {
                throw new CliException($"--dir: {dir} is not empty and holds no demo run ({StateFile}); pass an empty or new directory");
            }

            System.IO.Directory.Delete(dir, recursive: true);
        }

        System.IO.Directory.CreateDirectory(dir);
        var fresh = new JsonObject
        {
            ["preset"] = preset.Name,
            ["seed"] = seed,
            ["backend"] = backend,
            ["device"] = device,
            ["started"] = TimeProvider.System.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
            ["stages"] = new JsonObject(),
            ["campaigns"] = new JsonObject(),
        };
        var run = new DemoRun(dir, preset, seed, dataSource, services, fresh);
        run.Save();
        return run;
    }

    /// <summary>Runs every stage not done yet, then writes the report.</summary>
    /// <param name="reportPath">Where to write the report JSON (also written to the run directory).</param>
    /// <param name="cancellationToken">Ctrl-C: the current stage saves what it has and the run can be resumed.</param>
    /// <returns>The report.</returns>
    public async Task<DemoReport> RunAsync(string? reportPath, CancellationToken cancellationToken)
    {
        for (var i = 0; i < Stages.Length; i++)
        {
            var stage = Stages[i];
            if (Done(stage))
            {
                Console.WriteLine($"[{i + 1}/{Stages.Length}] {stage}: done earlier ({Seconds(stage):0.0} s)");
                continue;
            }

            Console.WriteLine($"[{i + 1}/{Stages.Length}] {stage}: {Describe(stage)}");
            var stopwatch = Stopwatch.StartNew();
            JsonObject results;
            try
            {
                results = await RunStageAsync(stage, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Stopped: the stage's time so far counts when it is resumed.
                RecordPartial(stage, stopwatch.Elapsed.TotalSeconds);
                throw;
            }

            var seconds = stopwatch.Elapsed.TotalSeconds + (StageNode(stage)?["partial_seconds"]?.GetValue<double>() ?? 0);
            results["seconds"] = seconds;
            results["peak_rss_mb"] = StagePeakRssMb(StageNode(stage));
            StagesNode[stage] = results;
            Save();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"      {stage} done in {seconds:0.0} s"));
        }

        var report = await BuildReportAsync(cancellationToken);
        var json = report.ToJson();
        File.WriteAllText(Path.Combine(_dir, "report.json"), json);
        if (reportPath is not null)
        {
            File.WriteAllText(reportPath, json);
        }

        File.WriteAllText(Path.Combine(_dir, "rl.svg"), DemoChart.Svg(await RlStepsAsync(cancellationToken), report.RlEvaluations));
        return report;
    }

    // Adds the seconds of a stopped stage so that the resumed stage reports its whole time.
    private void RecordPartial(string stage, double seconds)
    {
        var node = StageNode(stage) ?? new JsonObject();
        node["partial_seconds"] = (node["partial_seconds"]?.GetValue<double>() ?? 0) + seconds;
        node["peak_rss_mb"] = StagePeakRssMb(node);
        node["done"] = false;
        StagesNode[stage] = node;
        Save();
    }

    // The process's peak resident memory by the end of the stage (VmHWM is never reset: /usr/bin/time reads the same
    // high-water mark), or an earlier (stopped) process's when that was higher.
    private static double? StagePeakRssMb(JsonObject? node)
    {
        var now = ProcessMemory.PeakRssMb();
        var earlier = node?["peak_rss_mb"]?.GetValue<double>() ?? 0;
        return double.IsFinite(now) ? Math.Round(Math.Max(now, earlier), 1) : earlier > 0 ? earlier : null;
    }

    /// <summary>The first stage not done, or null.</summary>
    public string? CurrentStage => Stages.FirstOrDefault(s => !Done(s));

    private JsonObject StagesNode => _state["stages"]!.AsObject();

    private JsonObject CampaignsNode => _state["campaigns"]!.AsObject();

    private string PathOf(string name) => Path.Combine(_dir, name);

    private JsonObject? StageNode(string stage) => StagesNode[stage] as JsonObject;

    private bool Done(string stage) => StageNode(stage)?["done"]?.GetValue<bool>() == true;

    private double Seconds(string stage) => StageNode(stage)?["seconds"]?.GetValue<double>() ?? double.NaN;

    private double Value(string stage, string key) => StageNode(stage) is { } node ? Number(node, key) : double.NaN;

    private double Countdown(string stage, string key) => StageNode(stage)?["countdown"] is JsonObject node ? Number(node, key) : double.NaN;

    private void Save()
    {
        var path = PathOf(StateFile);
        var temp = path + ".tmp";
        File.WriteAllText(temp, _state.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.Move(temp, path, overwrite: true);
    }

    private string AdditionsColdStart() => _preset.WorkedColdStart is { } worked
        ? $"worked columns, {Percent(worked.Full)} full, {Percent(worked.EmptyThink)} empty think, {Percent(worked.OneDigitWrong)} one digit wrong"
        : $"guess and check, {Percent(_preset.ColdStartMix.Direct)} unchecked, {Percent(_preset.ColdStartMix.Checked)} checked, {Percent(_preset.ColdStartMix.Repaired)} repaired";

    private static string Percent(double fraction) => string.Create(CultureInfo.InvariantCulture, $"{fraction * 100:0.#}%");

    private string Describe(string stage) => stage switch
    {
        "data" => $"seeded tasks (seed {_seed}): addition with carries of {_preset.Additions.MinOperandDigits}-{_preset.Additions.MaxOperandDigits} digit operands ({_preset.EvalPrompts} held out, {_preset.SftExamples} cold-start traces, {_preset.RlPrompts} RL prompts) and small Countdown puzzles ({_preset.CountdownEvalPrompts} held out, {_preset.CountdownSftExamples} guess-and-check traces, {_preset.CountdownRlPrompts} RL prompts); {_preset.PretrainDocuments} corpus documents",
        "tokenizer" => "train the BPE tokenizer on the corpus (character vocabulary, R1 special tokens)",
        "pretrain" => $"initialise a tiny DeepSeek-V3 (MoE + MLA + MTP) and pretrain it from scratch on the corpus ({_preset.PretrainEpochs} epoch)",
        "sft" => $"cold-start SFT on {_preset.SftExamples + _preset.CountdownSftExamples} R1-format traces (addition: {AdditionsColdStart()}; Countdown: guess and check, {Percent(_preset.CountdownColdStart.Direct)} unchecked, {Percent(_preset.CountdownColdStart.Checked)} checked, {Percent(_preset.CountdownColdStart.Repaired)} repaired)",
        "eval_base" => $"greedy evaluation of the pretrained base on the {_preset.EvalPrompts} held-out additions and {_preset.CountdownEvalPrompts} held-out Countdown puzzles",
        "eval_sft" => "greedy evaluation of the SFT model on the same prompts",
        "rl" => $"GRPO campaign: {_preset.RlSteps} steps x {_preset.RlPromptsPerStep} prompts x G = {_preset.GroupSize}, accuracy (addition) / countdown (Countdown) + format_r1 + language_consistency + check_consistency, advantages normalised over the batch, held-out additions evaluated every {_preset.EvalEvery} steps, Countdown after the last",
        "rejection_sampling" => $"rejection sampling from the RL checkpoint: {_preset.RejectionRounds} rounds x {_preset.RejectionPrompts} prompts x {_preset.RejectionSamples} at temperature {_preset.RejectionTemperature}, keep accuracy = 1 (addition) or countdown = 1 (Countdown), format_r1 = 1 and check_consistency = 1, export to JSONL",
        "distill" => "SFT of the fresh pretrained base on the accepted samples (distillation)",
        "eval_distilled" => "greedy evaluation of the distilled model",
        _ => stage,
    };

    private async Task<JsonObject> RunStageAsync(string stage, CancellationToken cancellationToken)
    {
        switch (stage)
        {
            case "data":
                return WriteData();
            case "tokenizer":
                return TrainTokenizer(cancellationToken);
            case "pretrain":
                return Pretrain(cancellationToken);
            case "sft":
                return Train("sft", "pretrained", PathOf("sft.jsonl"), new SftRunOptions
                {
                    Epochs = _preset.SftEpochs, BatchSize = 32, LearningRate = 3e-3, Warmup = 20, Seed = _seed,
                }, cancellationToken);
            case "eval_base":
                return await EvaluateAsync(stage, PathOf("pretrained"), cancellationToken);
            case "eval_sft":
                return await EvaluateAsync(stage, PathOf("sft"), cancellationToken);
            case "rl":
                return await ReinforceAsync(cancellationToken);
            case "rejection_sampling":
                return await RejectionSampleAsync(cancellationToken);
            case "distill" when Value("rejection_sampling", "exported") is not > 0:
                return new JsonObject { ["done"] = true, ["skipped"] = "no accepted samples" };
            case "eval_distilled" when Value("rejection_sampling", "exported") is not > 0:
                return new JsonObject { ["done"] = true, ["skipped"] = "no distilled model" };
            case "distill":
                return Train("distilled", "pretrained", PathOf("accepted.jsonl"), new SftRunOptions
                {
                    Epochs = _preset.DistillEpochs, BatchSize = 16, LearningRate = 2e-3, Warmup = 10, Seed = _seed,
                }, cancellationToken);
            case "eval_distilled":
                return await EvaluateAsync(stage, PathOf("distilled"), cancellationToken);
            default:
                throw new InvalidOperationException(stage);
        }
    }

    private JsonObject WriteData()
    {
        var needed = _preset.EvalPrompts + _preset.SftExamples + _preset.RlPrompts;
        var tasks = DemoTaskGenerator.Generate(_seed, needed + (needed / 10) + 100, _preset.Additions);
        var split = DemoTaskGenerator.Split(tasks, _preset.EvalPrompts, _seed);
        var held = split.Eval.Select(t => t.Prompt).ToHashSet(StringComparer.Ordinal);
        var sftTasks = split.Train.Take(_preset.SftExamples).ToList();
        var rlTasks = split.Train.Skip(_preset.SftExamples).Take(_preset.RlPrompts).ToList();
        DemoDataset.WriteJsonl(PathOf("eval.jsonl"), split.Eval);

        // Countdown: its own seed, its own held-out set. The small puzzles have only about 2,000 distinct prompts, so
        // the training puzzles repeat (the same search each time) in the cold start, and the RL
        // prompts are drawn from the same training puzzles; no held-out prompt is ever trained on.
        var countdownSplit = DemoTaskGenerator.Split(
            DemoTaskGenerator.Generate(_seed + 500_009, _preset.CountdownEvalPrompts + CountdownTrainPuzzles, CountdownTasks), _preset.CountdownEvalPrompts, _seed);
        var countdownTrain = countdownSplit.Train;
        var countdownSft = Enumerable.Range(0, _preset.CountdownSftExamples).Select(i => countdownTrain[i % countdownTrain.Count]).ToList();
        var countdownRl = Enumerable.Range(0, _preset.CountdownRlPrompts).Select(i => countdownTrain[((i * 7919) + 13) % countdownTrain.Count]).ToList();
        held.UnionWith(countdownSplit.Eval.Select(t => t.Prompt));
        DemoDataset.WriteJsonl(PathOf("eval-countdown.jsonl"), countdownSplit.Eval);
        var rlRows = rlTasks.Concat(countdownRl).ToArray();
        new Random(_seed + 17).Shuffle(rlRows);
        DemoDataset.WriteJsonl(PathOf("rl.jsonl"), rlRows);

        var additions = _preset.WorkedColdStart is { } worked
            ? DemoTraces.SftMix(sftTasks, _seed, worked)
            : DemoTraces.ArithmeticMix(sftTasks, _seed, _preset.ColdStartMix);
        var mix = additions.Concat(DemoTraces.CountdownMix(countdownSft, _seed + 1, _preset.CountdownColdStart)).ToArray();
        new Random(_seed + 29).Shuffle(mix);
        using (var writer = new StreamWriter(PathOf("sft.jsonl"), false, new UTF8Encoding(false)))
        {
            foreach (var example in mix)
            {
                writer.Write(JsonSerializer.Serialize(new
                {
                    messages = new object[]
                    {
                        new { role = "user", content = example.Prompt },
                        new { role = "assistant", content = example.Completion },
                    },
                }));
                writer.Write('\n');
            }
        }

        // The pretraining corpus: worked problems in plain text, never a held-out prompt.
        var countdownDocuments = _preset.PretrainDocuments / 5;
        var corpus = DemoCorpus.Documents(_seed + 1_000_003, _preset.PretrainDocuments + (_preset.PretrainDocuments / 10), _preset.Additions)
            .Where(d => !held.Any(p => d.Contains(p, StringComparison.Ordinal)))
            .Take(_preset.PretrainDocuments - countdownDocuments)
            .Concat(DemoCorpus.Documents(_seed + 2_000_003, countdownDocuments * 2, CountdownTasks)
                .Where(d => !held.Any(p => d.Contains(p, StringComparison.Ordinal)))
                .Take(countdownDocuments))
            .ToArray();
        new Random(_seed + 31).Shuffle(corpus);
        File.WriteAllLines(PathOf("corpus.txt"), corpus.Select(d => d.Replace('\n', '\u2028')));
        return new JsonObject
        {
            ["done"] = true,
            ["eval"] = split.Eval.Count,
            ["eval_countdown"] = countdownSplit.Eval.Count,
            ["sft"] = mix.Length,
            ["sft_countdown"] = countdownSft.Count,
            ["rl"] = rlRows.Length,
            ["rl_countdown"] = countdownRl.Count,
            ["corpus"] = corpus.Length,
        };
    }

    private IEnumerable<string> CorpusDocuments() => File.ReadLines(PathOf("corpus.txt")).Select(l => l.Replace('\u2028', '\n'));

    private JsonObject TrainTokenizer(CancellationToken cancellationToken)
    {
        var texts = CorpusDocuments().Concat(File.ReadLines(PathOf("sft.jsonl")).Take(2000)).ToList();
        var options = new BpeTrainerOptions
        {
            // A character vocabulary (no merges): the digits stay single tokens, as in the anchor.
            VocabSize = 256 + 4 + 2,
            MinFrequency = int.MaxValue,
            SpecialTokens = [ChatTemplate.Bos, ChatTemplate.Eos, ChatTemplate.User, ChatTemplate.Assistant],
            AddedTokens = ["<think>", "</think>"],
        };
        using (var stream = new FileStream(PathOf("tokenizer.json"), FileMode.Create, FileAccess.Write))
        {
            BpeTrainer.Train(texts, options, stream, cancellationToken);
        }

        var tokenizer = TokenizerJson.Load(PathOf("tokenizer.json"));
        return new JsonObject { ["done"] = true, ["vocab_size"] = tokenizer.VocabSize };
    }

    private DeepSeekV3Config Config()
    {
        var tokenizer = TokenizerJson.Load(PathOf("tokenizer.json"));
        var vocab = (tokenizer.VocabSize + 7) / 8 * 8;
        var json = DemoModel.ConfigJson(vocab);
        using var document = JsonDocument.Parse(json);
        var (config, error) = DeepSeekV3Config.Parse(document.RootElement);
        return config ?? throw new InvalidOperationException(error);
    }

    private JsonObject Pretrain(CancellationToken cancellationToken)
    {
        var baseDir = PathOf("base");
        if (!File.Exists(Path.Combine(baseDir, ModelCheckpoint.WeightsFileName)))
        {
            var config = Config();
            var store = ModelInit.Create(config, _seed);
            System.IO.Directory.CreateDirectory(baseDir);
            ModelCheckpoint.Save(store, baseDir);
            File.WriteAllText(Path.Combine(baseDir, "config.json"), DemoModel.ConfigJson(config.VocabSize));
            File.Copy(PathOf("tokenizer.json"), Path.Combine(baseDir, "tokenizer.json"), overwrite: true);
        }

        var tokenizer = TokenizerJson.Load(PathOf("tokenizer.json"));
        var bos = tokenizer.TokenToId(ChatTemplate.Bos)!.Value;
        var eos = tokenizer.TokenToId(ChatTemplate.Eos)!.Value;
        var examples = CorpusDocuments().Select((d, i) =>
        {
            int[] ids = [bos, .. tokenizer.Encode(d), eos];
            var mask = new byte[ids.Length];
            Array.Fill(mask, (byte)1);
            mask[0] = 0;
            return new SftExample(ids, mask, i + 1);
        }).ToList();
        // Countdown documents are batched apart from the (shorter) arithmetic ones, as in the cold start.
        var groups = CorpusDocuments().Select(d => d.Contains("Using the numbers ", StringComparison.Ordinal) ? 1 : 0).ToArray();
        return TrainOn("pretrained", "base", examples, eos, new SftRunOptions
        {
            Epochs = _preset.PretrainEpochs, BatchSize = 16, LearningRate = 3e-3, Warmup = 20, Seed = _seed, Groups = groups,
        }, cancellationToken);
    }

    private JsonObject Train(string name, string from, string data, SftRunOptions options, CancellationToken cancellationToken)
    {
        var tokenizer = TokenizerJson.Load(PathOf("tokenizer.json"));
        var limit = Config().MaxPositionEmbeddings;
        var examples = SftDataset.Load(data, tokenizer, limit, out var skipped);
        if (examples.Count == 0)
        {
            throw new CliException($"{data}: no usable rows ({skipped.Count} skipped){(skipped.Count > 0 ? $": line {skipped[0].Line}: {skipped[0].Reason}" : string.Empty)}");
        }

        // Additions and Countdown puzzles are batched apart, so a short addition is not padded to a search's length.
        // (Batching the additions by length as well, so that a guess answered at once is not padded to a repaired
        // trace, cut the quick cold start from 325 to 221 s but the SFT model then never checked and its column work
        // was garbage: its batches of short traces, whose guess digits cannot be learnt, weighed as much as the long ones.)
        var countdownLines = CountdownLines(data);
        options = options with { Groups = [.. examples.Select(e => countdownLines.Contains(e.Line) ? 1 : 0)] };
        return TrainOn(name, from, examples, tokenizer.TokenToId(ChatTemplate.Eos)!.Value, options, cancellationToken);
    }

    // The 1-based lines of an SFT file whose user message is a Countdown puzzle.
    private static HashSet<int> CountdownLines(string path)
    {
        var lines = new HashSet<int>();
        var n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (line.Contains("\"Using the numbers ", StringComparison.Ordinal))
            {
                lines.Add(n);
            }
        }

        return lines;
    }

    private JsonObject TrainOn(string name, string from, IReadOnlyList<SftExample> examples, int eos, SftRunOptions options, CancellationToken cancellationToken)
    {
        var outDir = PathOf(name);
        var resumable = File.Exists(Path.Combine(outDir, "optimizer.safetensors"));
        var (weights, error) = ModelWeights.LoadDirectory(resumable ? outDir : PathOf(from));
        if (weights is null)
        {
            throw new CliException(error!);
        }

        if (!resumable)
        {
            System.IO.Directory.CreateDirectory(outDir);
        }

        File.Copy(Path.Combine(PathOf("base"), "config.json"), Path.Combine(outDir, "config.json"), overwrite: true);
        File.Copy(PathOf("tokenizer.json"), Path.Combine(outDir, "tokenizer.json"), overwrite: true);
        var state = resumable ? SftRun.LoadState(outDir, weights.Config, options, examples.Count) : null;
        if (state is not null)
        {
            Console.WriteLine($"      resuming {name} at step {state.StepCount}");
        }

        var bar = new ProgressBar(_interactive);
        options = options with { Backend = _backend, Device = _device };
        var result = SftRun.Run(weights, examples, eos, options, outDir, state, (step, total, loss, rate) =>
            bar.Report(step, total, string.Create(CultureInfo.InvariantCulture, $"loss {loss:0.000}  {rate:0} tok/s")), cancellationToken);
        bar.Finish();
        var tokens = examples.Sum(e => (long)e.Tokens.Length) * options.Epochs;
        return new JsonObject
        {
            ["done"] = true,
            ["steps"] = result.Steps,
            ["examples"] = examples.Count,
            ["final_loss"] = double.IsFinite(result.LastLoss) ? result.LastLoss : null,
            ["tokens_per_second"] = result.Seconds > 0 ? result.Tokens / result.Seconds : null,
            ["sequence_tokens"] = tokens,
        };
    }

    private JsonObject Rules() => new()
    {
        ["rules"] = new JsonArray
        {
            new JsonObject { ["rule"] = "accuracy", ["weight"] = 1.0 },
            new JsonObject { ["rule"] = "countdown", ["weight"] = 1.0 },
            new JsonObject { ["rule"] = "format_r1", ["weight"] = 0.2 },
            new JsonObject { ["rule"] = "language_consistency", ["weight"] = 0.1 },

            // A check's verdict must state its comparison; 1 without a check, so only accuracy pays for checking. Without
            // it GRPO taught the checks to say yes to a mismatch and box the worked result (docs/demo.md, issue 22). The
            // tiny model cannot copy its guess five lines up, so the check is not held to quote it (quote_attempt: GRPO
            // kept writing other numbers there and stopped checking). The weight counts only with advantages normalised
            // over the batch (Spec): per group, a group with no right answer turned its consistency alone into full-size
            // advantages.
            new JsonObject { ["rule"] = "check_consistency", ["weight"] = 0.2, ["options"] = new JsonObject { ["quote_attempt"] = false } },
        },
    };

    private async Task<long> CampaignAsync(string stage, JsonObject spec, CancellationToken cancellationToken)
    {
        if (CampaignsNode[stage] is JsonValue existing)
        {
            return existing.GetValue<long>();
        }

        var specPath = PathOf($"{stage}.campaign.json");
        await File.WriteAllTextAsync(specPath, spec.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        var validation = CampaignSpecValidator.Load(specPath);
        if (validation.Spec is null)
        {
            throw new CliException($"{specPath}: {string.Join("; ", validation.Errors)}");
        }

        var created = (await _services.Creator.CreateAsync(validation.Spec, await File.ReadAllTextAsync(specPath, cancellationToken), _dir,
            new PolicyRegistry(_dataSource), cancellationToken)).OrExit();
        CampaignsNode[stage] = created.Id;
        Save();
        return created.Id;
    }

    private JsonObject Spec(string name, string mode, string model, string dataset, int steps, int promptsPerStep, int groupSize, int evalEvery) => new()
    {
        ["name"] = name,
        ["mode"] = mode,
        ["policy"] = new JsonObject { ["native"] = new JsonObject { ["model"] = model, ["backend"] = _backend, ["device"] = _device } },
        ["dataset"] = new JsonObject { ["path"] = dataset, ["template"] = "r1", ["eval_fraction"] = 0.0 },
        ["rewards"] = Rules(),
        ["algorithm"] = new JsonObject
        {
            ["variant"] = "grpo",
            ["group_size"] = groupSize,
            ["prompts_per_step"] = promptsPerStep,
            ["learning_rate"] = _preset.RlLearningRate,
            ["beta"] = 0.0,
            ["loss_aggregation"] = "dapo",
            ["advantage_normalization"] = "batch",
            ["max_new_tokens"] = DemoModel.MaxNewTokens,
            ["temperature"] = 1.0,
            ["steps"] = steps,
        },
        ["evaluation"] = new JsonObject { ["every_steps"] = evalEvery, ["mode"] = "greedy", ["k"] = 1, ["set"] = "eval.jsonl" },
        ["checkpoint_every_steps"] = 5,
        ["seed"] = _seed,
    };

    private async Task<JsonObject> EvaluateAsync(string stage, string modelDir, CancellationToken cancellationToken)
    {
        var evaluation = await EvaluateSetAsync(stage, modelDir, "eval.jsonl", "addition", cancellationToken);
        var result = evaluation.DeepClone().AsObject();
        result["done"] = true;
        result["countdown"] = await EvaluateSetAsync(stage + "_countdown", modelDir, "eval-countdown.jsonl", "Countdown", cancellationToken);
        return result;
    }

    // One greedy evaluation of a model on a held-out file, as a collect campaign with 0 steps.
    private async Task<JsonObject> EvaluateSetAsync(string name, string modelDir, string set, string label, CancellationToken cancellationToken)
    {
        var spec = Spec($"demo-{name.Replace('_', '-')}", "collect", modelDir, set, 0, 1, 2, 1);
        spec["evaluation"]!["set"] = set;
        var id = await CampaignAsync(name, spec, cancellationToken);
        await RunCampaignAsync(id, name, cancellationToken);
        var evaluation = (await Evaluations(id, cancellationToken)).LastOrDefault()
            ?? throw new CliException($"campaign {id} ({name}) finished without an evaluation");
        evaluation["campaign"] = id;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"      {label}: held-out accuracy {Number(evaluation, "accuracy"):0.000}, writes reasoning {Number(evaluation, "reasoning_fraction"):0.000}, accuracy when reasoning {Number(evaluation, "accuracy_when_reasoning"):0.000}, checks {Number(evaluation, "verify_fraction"):0.000} (accuracy {Number(evaluation, "accuracy_when_verifying"):0.000} checking, {Number(evaluation, "accuracy_without_verifying"):0.000} not), repairs {Number(evaluation, "repair_fraction"):0.000}, first attempts right {Number(evaluation, "accuracy_first_attempt"):0.000}, mean length {Number(evaluation, "response_length_mean"):0.0} tokens"));
        return evaluation;
    }

    private async Task<JsonObject> ReinforceAsync(CancellationToken cancellationToken)
    {
        var spec = Spec("demo-grpo", "train", PathOf("sft"), "rl.jsonl", _preset.RlSteps, _preset.RlPromptsPerStep, _preset.GroupSize, _preset.EvalEvery);
        var id = await CampaignAsync("rl", spec, cancellationToken);
        await RunCampaignAsync(id, "rl", cancellationToken);

        // The final policy as a model directory: the rejection-sampling campaign samples from it.
        var registry = new PolicyRegistry(_dataSource);
        var latest = await registry.LatestAsync(id, cancellationToken) ?? throw new CliException($"campaign {id} published no policy");
        var rlDir = PathOf("rl-final");
        System.IO.Directory.CreateDirectory(rlDir);
        (await registry.DownloadAsync(latest, Path.Combine(rlDir, ModelCheckpoint.WeightsFileName), cancellationToken)).OrExit();
        File.Copy(Path.Combine(PathOf("base"), "config.json"), Path.Combine(rlDir, "config.json"), overwrite: true);
        File.Copy(PathOf("tokenizer.json"), Path.Combine(rlDir, "tokenizer.json"), overwrite: true);
        var evaluations = await Evaluations(id, cancellationToken);
        var last = evaluations.LastOrDefault() ?? throw new CliException($"campaign {id} (rl) finished without an evaluation");
        var result = last.DeepClone().AsObject();
        result["done"] = true;
        result["campaign"] = id;
        result["policy_version"] = latest.Version;
        result["countdown"] = await EvaluateSetAsync("rl_countdown", rlDir, "eval-countdown.jsonl", "Countdown", cancellationToken);
        return result;
    }

    private async Task<JsonObject> RejectionSampleAsync(CancellationToken cancellationToken)
    {
        var spec = Spec("demo-rejection-sampling", "collect", PathOf("rl-final"), "rl.jsonl", _preset.RejectionRounds, _preset.RejectionPrompts, _preset.RejectionSamples, 0);
        spec["algorithm"]!["temperature"] = _preset.RejectionTemperature;
        // An addition has no countdown score and a Countdown puzzle no accuracy score: each is judged by its own rule.
        spec["rejection_sampling"] = new JsonArray
        {
            new JsonObject { ["rule"] = "accuracy", ["op"] = "==", ["value"] = 1, ["when_missing"] = "pass" },
            new JsonObject { ["rule"] = "countdown", ["op"] = "==", ["value"] = 1, ["when_missing"] = "pass" },
            new JsonObject { ["rule"] = "format_r1", ["op"] = "==", ["value"] = 1 },
            new JsonObject { ["rule"] = "check_consistency", ["op"] = "==", ["value"] = 1 },
        };
        var id = await CampaignAsync("rejection_sampling", spec, cancellationToken);
        var status = await RunCampaignAsync(id, "rejection_sampling", cancellationToken);
        var output = PathOf("accepted.jsonl");
        long exported;
        await using (var stream = new FileStream(output + ".tmp", FileMode.Create, FileAccess.Write))
        {
            (exported, _) = await DeepSeekRL.Storage.Stores.SftExporter.ExportAsync(_dataSource, new DeepSeekRL.Storage.Stores.SftExportFilter(id, null, null, null), stream, cancellationToken);
        }

        File.Move(output + ".tmp", output, overwrite: true);
        if (exported == 0)
        {
            await Console.Error.WriteLineAsync($"deepseekrl: warning: rejection sampling (campaign {id}) accepted no sample (the RL model solved none of the prompts it was given); distillation is skipped");
        }

        var generated = status.Counters.GetValueOrDefault("samples_scored");
        var accepted = status.Counters.GetValueOrDefault("samples_accepted");
        Console.WriteLine($"      {accepted} of {generated} samples accepted; {exported} exported to {output}");
        return new JsonObject { ["done"] = true, ["campaign"] = id, ["generated"] = generated, ["accepted"] = accepted, ["exported"] = exported };
    }

    private async Task<CampaignStatus> RunCampaignAsync(long id, string stage, CancellationToken cancellationToken)
    {
        var repository = _services.Campaigns;
        var bar = new ProgressBar(_interactive);
        var lastStep = -1;
        CampaignStatus status;
        var settings = new SiloSettings
        {
            Engines = HostEngines.All,
            CampaignId = id,
            Name = $"{Environment.MachineName}-demo-{Environment.ProcessId}",
            RolloutBatch = stage == "rejection_sampling" ? RolloutBatch : 1,
            Private = true,
        };
        using (var silo = await SiloHost.StartAsync(_dataSource, settings, _services.Threads, null, cancellationToken))
        {
            while (true)
            {
                await Task.Delay(250, cancellationToken);
                status = (await repository.GetStatusAsync(id, cancellationToken))!;
                if (status.StepsCompleted != lastStep && status.TotalSteps > 0)
                {
                    lastStep = status.StepsCompleted;
                    var metrics = await LastStepMetrics(id, cancellationToken);
                    bar.Report(status.StepsCompleted, status.TotalSteps, metrics is null ? $"campaign {id}" : string.Create(CultureInfo.InvariantCulture,
                        $"reward {Number(metrics, "reward_mean"):0.000}  len {Number(metrics, "response_length_mean"):0.0}  campaign {id}"));
                }

                if (status.State is CampaignState.Completed or CampaignState.Cancelled or CampaignState.Failed)
                {
                    break;
                }
            }

            using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(25));
            await silo.StopAsync(stopping.Token);
        }

        bar.Finish();
        if (status.State != CampaignState.Completed)
        {
            throw new CliException($"campaign {id} ({stage}) {CampaignStore.StateName(status.State)}{(status.Error is null ? string.Empty : ": " + status.Error)}");
        }

        return status;
    }

    private async Task<List<JsonObject>> Evaluations(long id, CancellationToken cancellationToken)
    {
        var list = new List<JsonObject>();
        foreach (var row in await new MetricsStore(_dataSource).EvaluationsAsync(id, -2, cancellationToken))
        {
            var o = JsonNode.Parse(row.Json)!.AsObject();
            o["step"] = row.Step + 1;
            list.Add(o);
        }

        return list;
    }

    private async Task<JsonObject?> LastStepMetrics(long id, CancellationToken cancellationToken)
    {
        return await new MetricsStore(_dataSource).LastStepAsync(id, cancellationToken) is { } last ? JsonNode.Parse(last.Json)!.AsObject() : null;
    }

    // A number whether it was parsed or created from a long or a double; NaN when missing or null.
    private static double Number(JsonObject o, string key) =>
        o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Number
            ? double.Parse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture)
            : double.NaN;

    private async Task<List<DemoRlStep>> RlStepsAsync(CancellationToken cancellationToken)
    {
        var list = new List<DemoRlStep>();
        if (CampaignsNode["rl"] is not JsonValue id)
        {
            return list;
        }

        foreach (var row in await new MetricsStore(_dataSource).StepsAsync(id.GetValue<long>(), -1, cancellationToken))
        {
            var m = JsonNode.Parse(row.Json)!.AsObject();
            list.Add(new DemoRlStep(row.Step + 1, Number(m, "reward_mean"), Number(m, "response_length_mean"), Number(m, "verify_fraction"), Number(m, "repair_fraction")));
        }

        return list;
    }

    private async Task<DemoReport> BuildReportAsync(CancellationToken cancellationToken)
    {
        var evaluations = new List<DemoRlEvaluation>();
        if (CampaignsNode["rl"] is JsonValue id)
        {
            foreach (var e in await Evaluations(id.GetValue<long>(), cancellationToken))
            {
                evaluations.Add(new DemoRlEvaluation(e["step"]!.GetValue<int>(), Number(e, "accuracy"), Number(e, "reward_mean"), Number(e, "response_length_mean")));
            }
        }

        var generated = Value("rejection_sampling", "generated");
        var accepted = Value("rejection_sampling", "accepted");
        return new DemoReport
        {
            AccuracyBase = Value("eval_base", "accuracy"),
            AccuracySft = Value("eval_sft", "accuracy"),
            AccuracyRlFinal = Value("rl", "accuracy"),
            AccuracyDistilled = Value("eval_distilled", "accuracy"),
            ReasoningFractionSft = Value("eval_sft", "reasoning_fraction"),
            ReasoningFractionRl = Value("rl", "reasoning_fraction"),
            AccuracyWhenReasoningSft = Value("eval_sft", "accuracy_when_reasoning"),
            AccuracyWhenReasoningRl = Value("rl", "accuracy_when_reasoning"),
            ResponseLengthSft = Value("eval_sft", "response_length_mean"),
            ResponseLengthRl = Value("rl", "response_length_mean"),
            RlEvaluations = evaluations,
            SamplesGenerated = double.IsFinite(generated) ? (long)generated : 0,
            SamplesAccepted = double.IsFinite(accepted) ? (long)accepted : 0,
            SecondsTotal = Stages.Sum(s => double.IsFinite(Seconds(s)) ? Seconds(s) : 0),
            SecondsPerStage = [.. Stages.Select(s => new KeyValuePair<string, double>(s, Seconds(s)))],
            PeakRssMbThroughStage = [.. Stages.Select(s => new KeyValuePair<string, double>(s, Value(s, "peak_rss_mb")))],
            Countdown = StageNode("eval_sft")?["countdown"] is JsonObject ? new DemoCountdownFigures
            {
                AccuracyBase = Countdown("eval_base", "accuracy"),
                AccuracySft = Countdown("eval_sft", "accuracy"),
                AccuracyRlFinal = Countdown("rl", "accuracy"),
                AccuracyDistilled = Countdown("eval_distilled", "accuracy"),
                ReasoningFractionSft = Countdown("eval_sft", "reasoning_fraction"),
                ReasoningFractionRl = Countdown("rl", "reasoning_fraction"),
                AccuracyWhenReasoningSft = Countdown("eval_sft", "accuracy_when_reasoning"),
                AccuracyWhenReasoningRl = Countdown("rl", "accuracy_when_reasoning"),
                ResponseLengthSft = Countdown("eval_sft", "response_length_mean"),
                ResponseLengthRl = Countdown("rl", "response_length_mean"),
                Reflection = Reflection(Countdown),
            } : null,
            Reflection = Reflection((stage, key) => Value(stage, key)),
            Preset = _preset.Name,
            Seed = _seed,
        };
    }

    // A family's self-verification figures, read from its evaluations after the cold start and after RL.
    private static DemoReflectionFigures Reflection(Func<string, string, double> value) => new()
    {
        VerifyFractionSft = value("eval_sft", "verify_fraction"),
        VerifyFractionRl = value("rl", "verify_fraction"),
        RepairFractionSft = value("eval_sft", "repair_fraction"),
        RepairFractionRl = value("rl", "repair_fraction"),
        AccuracyWhenVerifyingSft = value("eval_sft", "accuracy_when_verifying"),
        AccuracyWhenVerifyingRl = value("rl", "accuracy_when_verifying"),
        AccuracyWithoutVerifyingSft = value("eval_sft", "accuracy_without_verifying"),
        AccuracyWithoutVerifyingRl = value("rl", "accuracy_without_verifying"),
        AccuracyFirstAttemptSft = value("eval_sft", "accuracy_first_attempt"),
        AccuracyFirstAttemptRl = value("rl", "accuracy_first_attempt"),
    };
}
