using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSeekRL.Text;

namespace DeepSeekRL.Campaigns.Specs;

/// <summary>The outcome of validating a campaign spec: the spec when there are no errors, else every error.</summary>
/// <param name="Spec">The validated spec, or null when <paramref name="Errors"/> is not empty.</param>
/// <param name="Errors">One line per problem, each naming the JSON path, the value and what was expected.</param>
public sealed record CampaignSpecValidation(CampaignSpec? Spec, IReadOnlyList<string> Errors);

/// <summary>
/// Validates a campaign spec completely before anything runs (docs/campaign-spec.md): unknown keys, wrong JSON types,
/// out-of-range values, missing paths and inconsistent combinations are all reported, never thrown.
/// </summary>
public static partial class CampaignSpecValidator
{
    /// <summary>The largest spec file <see cref="Load"/> reads: 1 MiB.</summary>
    public const long MaxFileBytes = 1 << 20;

    private static readonly string[] RootKeys =
        ["name", "mode", "policy", "dataset", "rewards", "algorithm", "rejection_sampling", "evaluation", "checkpoint_every_steps", "seed"];

    private static readonly string[] AlgorithmKeys =
    [
        "variant", "group_size", "prompts_per_step", "learning_rate", "beta", "kl_estimator", "epsilon_low", "epsilon_high",
        "dual_clip", "loss_aggregation", "advantage_normalization", "max_new_tokens", "temperature", "top_p", "steps",
        "dynamic_sampling", "allowed_staleness",
    ];

    private static readonly string[] FilterOps = ["==", ">=", "<=", ">", "<"];

    private const long MaxSeed = 1L << 53;

    private static readonly JsonDocumentOptions SpecDocumentOptions = new() { MaxDepth = 64 };

    [ThreadStatic]
    private static bool t_skipFileChecks;

    /// <summary>Reads, parses and validates the spec file at <paramref name="path"/>; relative paths in it resolve against its directory.</summary>
    /// <param name="path">The spec file.</param>
    /// <returns>The spec, or one-line errors (missing file, over 1 MiB, invalid JSON, or the spec's own errors).</returns>
    public static CampaignSpecValidation Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            return Fail($"{path}: file not found");
        }

        byte[] bytes;
        try
        {
            var length = new FileInfo(full).Length;
            if (length > MaxFileBytes)
            {
                return Fail($"{path}: file is {length} bytes; expected at most 1 MiB ({MaxFileBytes} bytes)");
            }

            bytes = File.ReadAllBytes(full);
        }
        catch (IOException e)
        {
            return Fail($"{path}: cannot read: {e.Message}");
        }
        catch (UnauthorizedAccessException e)
        {
            return Fail($"{path}: cannot read: {e.Message}");
        }

        try
        {
            using var document = JsonText.Parse(bytes, SpecDocumentOptions);
            return Validate(document.RootElement, System.IO.Path.GetDirectoryName(full)!);
        }
        catch (JsonException e)
        {
            return Fail($"{path}: invalid JSON at line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {FirstSentence(e.Message)}");
        }
    }

    /// <summary>
    /// Parses spec text exactly as <see cref="Load"/> parses a file (depth 64; a lone surrogate in a string decodes to
    /// U+FFFD, docs/campaign-spec.md): for specs that arrive as text, such as the API's <c>POST /api/campaigns</c> body.
    /// </summary>
    /// <param name="json">The spec's JSON text.</param>
    /// <returns>The document.</returns>
    /// <exception cref="JsonException">The text is not JSON.</exception>
    public static JsonDocument ParseJson(string json) => JsonText.Parse(json, SpecDocumentOptions);

    /// <summary>Validates a parsed spec; relative paths resolve against <paramref name="baseDirectory"/> (the spec file's directory).</summary>
    /// <param name="root">The spec's root JSON value.</param>
    /// <param name="baseDirectory">The directory relative paths resolve against.</param>
    /// <returns>The spec, or every error found.</returns>
    public static CampaignSpecValidation Validate(JsonElement root, string baseDirectory) => Validate(root, baseDirectory, checkFiles: true);

    /// <summary>
    /// Validates a parsed spec; with <paramref name="checkFiles"/> false, paths are resolved but not checked (a silo
    /// re-reading a stored spec on another machine: the files were read into the database when the campaign was created).
    /// </summary>
    /// <param name="root">The spec's root JSON value.</param>
    /// <param name="baseDirectory">The directory relative paths resolve against.</param>
    /// <param name="checkFiles">Whether paths must exist.</param>
    /// <returns>The spec, or every error found.</returns>
    public static CampaignSpecValidation Validate(JsonElement root, string baseDirectory, bool checkFiles)
    {
        ArgumentNullException.ThrowIfNull(baseDirectory);
        t_skipFileChecks = !checkFiles;
        try
        {
            return ValidateCore(root, baseDirectory);
        }
        finally
        {
            t_skipFileChecks = false;
        }
    }

    private static CampaignSpecValidation ValidateCore(JsonElement root, string baseDirectory)
    {
        var errors = new List<string>();
        if (root.ValueKind != JsonValueKind.Object)
        {
            errors.Add(JsonObjectReader.Describe(string.Empty, root, "a JSON object"));
            return new CampaignSpecValidation(null, errors);
        }

        CheckStorable(root, string.Empty, errors);
        var r = new JsonObjectReader(root, string.Empty, errors, RootKeys);
        var name = r.String("name", required: true, "a name of 1..64 letters, digits, '.', '_' or '-'", s => NamePattern().IsMatch(s));
        var mode = r.Choice("mode", CampaignMode.Train, ["train", "collect"], [CampaignMode.Train, CampaignMode.Collect]);
        var policy = ReadPolicy(r, baseDirectory);
        var dataset = ReadDataset(r, baseDirectory);
        var rewards = ReadRewards(r, baseDirectory);
        var algorithm = ReadAlgorithm(r);
        var filters = ReadFilters(r, rewards, errors);
        var evaluation = ReadEvaluation(r, baseDirectory);
        var checkpointEvery = (int)r.Integer("checkpoint_every_steps", 10, 0, 1_000_000, "an integer in 0..1000000 (0 = only at the end)");
        var seed = r.Integer("seed", 0, 0, MaxSeed, "an integer in 0..2^53");

        if (policy is EndpointPolicySpec && mode == CampaignMode.Train && algorithm.Steps > 0)
        {
            errors.Add($"mode = \"train\" with an endpoint policy and algorithm.steps = {algorithm.Steps}: an endpoint policy can roll out, "
                + "score and collect samples but cannot be updated; expected \"mode\": \"collect\" (or a native policy)");
        }

        if (evaluation is { SetPath: null, EverySteps: > 0 } && dataset is { EvalPath: null, EvalFraction: 0 })
        {
            errors.Add("evaluation.set = \"eval_split\" with dataset.eval_fraction = 0 and no dataset.eval_path: expected an eval split "
                + "(eval_fraction > 0 or eval_path), a set path, or evaluation.every_steps = 0");
        }

        if (errors.Count > 0 || name is null || policy is null || dataset is null || rewards is null)
        {
            return new CampaignSpecValidation(null, errors);
        }

        var spec = new CampaignSpec
        {
            Name = name,
            Mode = mode,
            Policy = policy,
            Dataset = dataset,
            Rewards = rewards,
            Algorithm = algorithm,
            RejectionSampling = filters,
            Evaluation = evaluation,
            CheckpointEverySteps = checkpointEvery,
            Seed = seed,
        };
        return new CampaignSpecValidation(spec, []);
    }

    private static PolicySpec? ReadPolicy(JsonObjectReader root, string baseDirectory)
    {
        const string Expected = "an object with exactly one of \"native\" or \"endpoint\"";
        var p = root.Object("policy", required: true, Expected, "native", "endpoint");
        if (p is null)
        {
            return null;
        }

        if (p.Has("native") == p.Has("endpoint"))
        {
            root.TryGet("policy", out var value);
            root.Error("policy", value, Expected);
            return null;
        }

        if (p.Has("native"))
        {
            var n = p.Object("native", required: true, "an object {\"model\": DIR} or {\"config\": FILE, \"seed\": N, \"tokenizer\": FILE}", "model", "config", "seed", "tokenizer", "backend", "device");
            if (n is null)
            {
                return null;
            }

            var backend = n.String("backend", required: false, "\"native\" or \"torch\"", b => b is "native" or "torch") ?? "native";
            var device = n.String("device", required: false, "\"cpu\", \"cuda\" or \"cuda:N\"", IsDevice) ?? "cpu";
            if (backend == "native" && device != "cpu")
            {
                n.TryGet("device", out var d);
                n.Error("device", d, "\"cpu\" with the native engine (use \"backend\": \"torch\" for CUDA)");
            }

            if (n.Has("model") == n.Has("config"))
            {
                p.TryGet("native", out var value);
                p.Error("native", value, "exactly one of \"model\" (a model directory) or \"config\" (a model config file to initialise from)");
                return null;
            }

            if (n.Has("model"))
            {
                if (n.Has("seed"))
                {
                    n.TryGet("seed", out var s);
                    n.Error("seed", s, "no seed with \"model\" (seed only initialises from \"config\")");
                }

                var dir = ExistingPath(n, "model", baseDirectory, directory: true, required: true, "config.json");
                string? modelTokenizer;
                if (n.Has("tokenizer"))
                {
                    modelTokenizer = ExistingPath(n, "tokenizer", baseDirectory, directory: false, required: true);
                }
                else
                {
                    modelTokenizer = dir is null ? null : System.IO.Path.Combine(dir, "tokenizer.json");
                    if (modelTokenizer is not null && !t_skipFileChecks && !File.Exists(modelTokenizer))
                    {
                        n.TryGet("model", out var value);
                        n.Error("model", value, $"a model directory with tokenizer.json (not found: {modelTokenizer}), or \"tokenizer\": FILE beside \"model\"");
                        modelTokenizer = null;
                    }
                }

                return dir is null || modelTokenizer is null ? null : new NativePolicySpec { ModelDirectory = dir, TokenizerPath = modelTokenizer, Backend = backend, Device = device };
            }

            var config = ExistingPath(n, "config", baseDirectory, directory: false, required: true);
            var initSeed = n.Integer("seed", 0, 0, MaxSeed, "an integer in 0..2^53");
            var tokenizer = ExistingPath(n, "tokenizer", baseDirectory, directory: false, required: true);
            return config is null || tokenizer is null ? null : new NativePolicySpec { ConfigPath = config, InitSeed = initSeed, TokenizerPath = tokenizer, Backend = backend, Device = device };
        }

        var e = p.Object("endpoint", required: true, "an object {\"url\": ..., \"model\": ..., \"api_key_env\": ...}", "url", "model", "api_key_env");
        if (e is null)
        {
            return null;
        }

        Uri? uri = null;
        var url = e.String("url", required: true, "an absolute http or https URL", s =>
            Uri.TryCreate(s, UriKind.Absolute, out uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps));
        var model = e.String("model", required: true, "a non-empty model name", s => s.Length > 0);
        var keyEnv = e.String("api_key_env", required: false, "an environment variable name (letters, digits, '_', not starting with a digit)",
            s => EnvNamePattern().IsMatch(s));
        return url is null || model is null || uri is null
            ? null
            : new EndpointPolicySpec { Url = uri, Model = model, ApiKeyEnvironmentVariable = keyEnv };
    }

    private static DatasetSpec? ReadDataset(JsonObjectReader root, string baseDirectory)
    {
        var d = root.Object("dataset", required: true, "an object with at least \"path\"",
            "path", "prompt_field", "answer_field", "template", "eval_fraction", "eval_path", "max_rows");
        if (d is null)
        {
            return null;
        }

        var path = ExistingPath(d, "path", baseDirectory, directory: false, required: true);
        var prompt = d.String("prompt_field", required: false, "a non-empty field name", s => s.Length > 0) ?? "prompt";
        var answer = d.String("answer_field", required: false, "a non-empty field name", s => s.Length > 0) ?? "answer";
        var template = d.Choice("template", PromptTemplate.R1Zero, ["r1", "r1_zero"], [PromptTemplate.R1, PromptTemplate.R1Zero]);
        var evalPath = ExistingPath(d, "eval_path", baseDirectory, directory: false, required: false);
        var fraction = d.Number("eval_fraction", d.Has("eval_path") ? 0 : 0.1, f => f is >= 0 and < 1, "a number in [0, 1)");
        if (d.Has("eval_path") && d.TryGet("eval_fraction", out var f) && fraction != 0)
        {
            d.Error("eval_fraction", f, "no eval_fraction (or 0) when eval_path is set");
        }

        int? maxRows = null;
        if (d.TryGet("max_rows", out var m) && m.ValueKind != JsonValueKind.Null)
        {
            maxRows = (int)d.Integer("max_rows", 1, 1, int.MaxValue, "null or an integer in 1..2147483647");
        }

        return path is null
            ? null
            : new DatasetSpec
            {
                Path = path,
                PromptField = prompt,
                AnswerField = answer,
                Template = template,
                EvalFraction = fraction,
                EvalPath = evalPath,
                MaxRows = maxRows,
            };
    }

    private static RewardsSpec? ReadRewards(JsonObjectReader root, string baseDirectory)
    {
        var w = root.Object("rewards", required: true, "a rules object {\"rules\": [...], \"plugins\": DIR}", "rules", "plugins");
        if (w is null)
        {
            return null;
        }

        var names = new List<string>();
        var ok = true;
        if (!w.TryGet("rules", out var rules))
        {
            w.Missing("rules", "a non-empty array of rule objects");
            ok = false;
        }
        else if (rules.ValueKind != JsonValueKind.Array || rules.GetArrayLength() == 0)
        {
            w.Error("rules", rules, "a non-empty array of rule objects");
            ok = false;
        }
        else
        {
            var i = 0;
            foreach (var rule in rules.EnumerateArray())
            {
                var path = $"{w.Child("rules")}[{i++}]";
                if (rule.ValueKind != JsonValueKind.Object)
                {
                    w.Raw(JsonObjectReader.Describe(path, rule, "a rule object {\"rule\": ..., \"weight\": ..., \"options\": ...}"));
                    ok = false;
                    continue;
                }

                // Keys and options are the rewards pipeline's to validate; the names are needed here for the filters.
                if (!rule.TryGetProperty("rule", out var kind) || kind.ValueKind != JsonValueKind.String || kind.GetString()!.Length == 0)
                {
                    w.Raw(JsonObjectReader.Describe(path, rule, "a rule object with a non-empty string \"rule\""));
                    ok = false;
                    continue;
                }

                names.Add(rule.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : kind.GetString()!);
            }
        }

        var plugins = ExistingPath(w, "plugins", baseDirectory, directory: true, required: false);
        if (w.Has("plugins") && plugins is null)
        {
            ok = false;
        }

        root.TryGet("rewards", out var json);
        return ok ? new RewardsSpec { Json = json.Clone(), RuleNames = names, PluginsDirectory = plugins } : null;
    }

    private static AlgorithmSpec ReadAlgorithm(JsonObjectReader root)
    {
        var a = root.Object("algorithm", required: false, "an object", AlgorithmKeys);
        if (a is null)
        {
            return new AlgorithmSpec();
        }

        var variant = a.Choice("variant", AlgorithmVariant.Grpo, ["grpo", "dapo", "dr_grpo", "gspo", "bnpo"],
            [AlgorithmVariant.Grpo, AlgorithmVariant.Dapo, AlgorithmVariant.DrGrpo, AlgorithmVariant.Gspo, AlgorithmVariant.Bnpo]);

        // The variant's defaults (rl-and-rewards.md §2) for the fields the spec leaves unset.
        var (beta, epsHigh, loss, adv, dynamic) = variant switch
        {
            AlgorithmVariant.Dapo => (0.0, 0.28, LossAggregation.Dapo, AdvantageNormalization.Group, true),
            AlgorithmVariant.DrGrpo => (0.0, 0.2, LossAggregation.DrGrpo, AdvantageNormalization.None, false),
            AlgorithmVariant.Gspo => (0.0, 0.2, LossAggregation.Grpo, AdvantageNormalization.Group, false),
            AlgorithmVariant.Bnpo => (0.04, 0.2, LossAggregation.Bnpo, AdvantageNormalization.Group, false),
            _ => (0.04, 0.2, LossAggregation.Grpo, AdvantageNormalization.Group, false),
        };

        double? dualClip = null;
        if (a.TryGet("dual_clip", out var dc) && dc.ValueKind != JsonValueKind.Null)
        {
            var v = a.Number("dual_clip", double.NaN, x => x is > 1 and <= 100, "null or a number in (1, 100]");
            dualClip = double.IsNaN(v) ? null : v;
        }

        return new AlgorithmSpec
        {
            Variant = variant,
            GroupSize = (int)a.Integer("group_size", 8, 2, 1024, "an integer ≥ 2 (at most 1024)"),
            PromptsPerStep = (int)a.Integer("prompts_per_step", 4, 1, 65536, "an integer in 1..65536"),
            LearningRate = a.Number("learning_rate", 1e-6, x => x is > 0 and <= 1, "a number in (0, 1]"),
            Beta = a.Number("beta", beta, x => x is >= 0 and <= 10, "a number in [0, 10]"),
            KlEstimator = a.Choice("kl_estimator", KlEstimator.K3, ["k1", "k2", "k3"], [KlEstimator.K1, KlEstimator.K2, KlEstimator.K3]),
            EpsilonLow = a.Number("epsilon_low", 0.2, x => x is >= 0 and < 1, "a number in [0, 1)"),
            EpsilonHigh = a.Number("epsilon_high", epsHigh, x => x is >= 0 and <= 10, "a number in [0, 10]"),
            DualClip = dualClip,
            LossAggregation = a.Choice("loss_aggregation", loss, ["grpo", "bnpo", "dapo", "dr_grpo"],
                [LossAggregation.Grpo, LossAggregation.Bnpo, LossAggregation.Dapo, LossAggregation.DrGrpo]),
            AdvantageNormalization = a.Choice("advantage_normalization", adv, ["group", "batch", "none"],
                [AdvantageNormalization.Group, AdvantageNormalization.Batch, AdvantageNormalization.None]),
            MaxNewTokens = (int)a.Integer("max_new_tokens", 256, 1, 131072, "an integer in 1..131072"),
            Temperature = a.Number("temperature", 1.0, x => x is > 0 and <= 10, "a number in (0, 10]"),
            TopP = a.Number("top_p", 1.0, x => x is > 0 and <= 1, "a number in (0, 1]"),
            Steps = (int)a.Integer("steps", 100, 0, 10_000_000, "an integer in 0..10000000"),
            DynamicSampling = a.Boolean("dynamic_sampling", dynamic),
            AllowedStaleness = (int)a.Integer("allowed_staleness", 0, 0, 64, "an integer in 0..64"),
        };
    }

    private static List<RejectionFilter> ReadFilters(JsonObjectReader root, RewardsSpec? rewards, List<string> errors)
    {
        var filters = new List<RejectionFilter>();
        if (!root.TryGet("rejection_sampling", out var list))
        {
            return filters;
        }

        if (list.ValueKind != JsonValueKind.Array)
        {
            root.Error("rejection_sampling", list, "an array of filters");
            return filters;
        }

        var i = 0;
        foreach (var item in list.EnumerateArray())
        {
            var path = $"rejection_sampling[{i++}]";
            if (item.ValueKind == JsonValueKind.String)
            {
                if (item.GetString() == "no_code_in_reasoning")
                {
                    filters.Add(new RejectionFilter { NoCodeInReasoning = true });
                }
                else
                {
                    errors.Add(JsonObjectReader.Describe(path, item, "a filter object or the shortcut \"no_code_in_reasoning\""));
                }

                continue;
            }

            if (item.ValueKind != JsonValueKind.Object)
            {
                errors.Add(JsonObjectReader.Describe(path, item, "a filter object {\"rule\": ..., \"op\": ..., \"value\": ...} or \"no_code_in_reasoning\""));
                continue;
            }

            var f = new JsonObjectReader(item, path, errors, "rule", "op", "value", "when_missing");
            var rule = f.String("rule", required: true, "the name of a rule in rewards.rules", s => s.Length > 0);
            if (rule is not null && rewards is not null && !rewards.RuleNames.Contains(rule, StringComparer.Ordinal))
            {
                f.TryGet("rule", out var value);
                f.Error("rule", value, $"the name of a rule in rewards.rules ({string.Join(", ", rewards.RuleNames)})");
            }

            var opIndex = -1;
            if (!f.TryGet("op", out var op))
            {
                f.Missing("op", "one of \"==\", \">=\", \"<=\", \">\", \"<\"");
            }
            else
            {
                opIndex = f.Choice("op", -1, FilterOps, [0, 1, 2, 3, 4]);
            }

            if (!f.Has("value"))
            {
                f.Missing("value", "a number");
            }

            var threshold = f.Number("value", 0, _ => true, "a number");
            var whenMissing = f.Choice("when_missing", MissingScorePolicy.Fail, ["fail", "pass"], [MissingScorePolicy.Fail, MissingScorePolicy.Pass]);
            if (opIndex >= 0)
            {
                filters.Add(new RejectionFilter { Rule = rule, Operator = (FilterOperator)opIndex, Value = threshold, WhenMissing = whenMissing });
            }
        }

        return filters;
    }

    private static EvaluationSpec ReadEvaluation(JsonObjectReader root, string baseDirectory)
    {
        var e = root.Object("evaluation", required: false, "an object", "every_steps", "mode", "k", "set");
        if (e is null)
        {
            return new EvaluationSpec();
        }

        var every = (int)e.Integer("every_steps", 10, 0, 1_000_000, "an integer in 0..1000000 (0 = never)");
        var mode = e.Choice("mode", EvaluationMode.Greedy, ["greedy", "sampled"], [EvaluationMode.Greedy, EvaluationMode.Sampled]);
        var k = (int)e.Integer("k", 1, 1, 1024, "an integer in 1..1024");
        if (mode == EvaluationMode.Greedy && k != 1 && e.TryGet("k", out var kv))
        {
            e.Error("k", kv, "1 with mode \"greedy\" (pass@k needs mode \"sampled\")");
        }

        string? set = null;
        if (e.TryGet("set", out var s) && !(s.ValueKind == JsonValueKind.String && s.GetString() == "eval_split"))
        {
            set = ExistingPath(e, "set", baseDirectory, directory: false, required: false);
        }

        return new EvaluationSpec { EverySteps = every, Mode = mode, K = k, SetPath = set };
    }

    /// <summary>Resolves a path field against the spec's directory and checks that it exists (and holds <paramref name="mustContain"/>).</summary>
    private static string? ExistingPath(JsonObjectReader r, string key, string baseDirectory, bool directory, bool required, string? mustContain = null)
    {
        var what = directory ? "an existing directory" : "an existing file";
        if (mustContain is not null)
        {
            what += $" containing {mustContain}";
        }

        var raw = r.String(key, required, $"a path to {what} (relative to the spec's directory)", s => s.Length > 0);
        if (raw is null)
        {
            return null;
        }

        var full = System.IO.Path.GetFullPath(raw, baseDirectory);
        if (t_skipFileChecks)
        {
            return full;
        }

        var exists = directory ? Directory.Exists(full) : File.Exists(full);
        if (!exists || (mustContain is not null && !File.Exists(System.IO.Path.Combine(full, mustContain))))
        {
            r.TryGet(key, out var value);
            r.Error(key, value, $"{what} (resolved to {full})");
            return null;
        }

        return full;
    }

    private static CampaignSpecValidation Fail(string error) => new(null, [error]);

    private static string FirstSentence(string message)
    {
        var line = message.Replace('\n', ' ').Replace('\r', ' ');
        var cut = line.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? line[..cut].TrimEnd() : line;
    }

    // The spec is stored as jsonb and its strings in text columns, neither of which can hold U+0000: every string and
    // key holding one is an error naming its path, reported before anything else reads it.
    private static void CheckStorable(JsonElement element, string path, List<string> errors)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String when element.GetString()!.Contains('\0', StringComparison.Ordinal):
                errors.Add($"{(path.Length == 0 ? "(root)" : path)}: contains U+0000, which PostgreSQL text cannot store");
                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    var child = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
                    if (property.Name.Contains('\0', StringComparison.Ordinal))
                    {
                        errors.Add($"{child.Replace("\0", "\\u0000", StringComparison.Ordinal)}: key contains U+0000, which PostgreSQL text cannot store");
                    }
                    else
                    {
                        CheckStorable(property.Value, child, errors);
                    }
                }

                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    CheckStorable(item, $"{path}[{i++}]", errors);
                }

                break;
        }
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvNamePattern();

    private static bool IsDevice(string device) =>
        device is "cpu" or "cuda" || (device.Length is > 5 and < 9 && device.StartsWith("cuda:", StringComparison.Ordinal) && device[5..].All(char.IsAsciiDigit));
}
