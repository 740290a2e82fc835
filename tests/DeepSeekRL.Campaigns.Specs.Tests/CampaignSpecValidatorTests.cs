using System.Text.Json;

namespace DeepSeekRL.Campaigns.Specs.Tests;

public sealed class CampaignSpecValidatorTests : IDisposable
{
    private const string Rewards = """{"rules": [{"rule": "accuracy"}, {"rule": "format_r1", "name": "format"}]}""";

    private readonly string _dir = Directory.CreateTempSubdirectory("campaign-spec-").FullName;

    public CampaignSpecValidatorTests()
    {
        File.WriteAllText(Path.Combine(_dir, "data.jsonl"), "{\"prompt\": \"1+1\", \"answer\": \"2\"}\n");
        Directory.CreateDirectory(Path.Combine(_dir, "model"));
        File.WriteAllText(Path.Combine(_dir, "model", "config.json"), "{}");
        File.WriteAllText(Path.Combine(_dir, "model", "tokenizer.json"), "{}");
        Directory.CreateDirectory(Path.Combine(_dir, "bare"));
        File.WriteAllText(Path.Combine(_dir, "bare", "config.json"), "{}");
        Directory.CreateDirectory(Path.Combine(_dir, "empty"));
        Directory.CreateDirectory(Path.Combine(_dir, "plugins"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Minimal(string extra = "") =>
        $$$"""{"name": "t", "policy": {"native": {"model": "model"}}, "dataset": {"path": "data.jsonl"}, "rewards": {{{Rewards}}}{{{extra}}}}""";

    private CampaignSpecValidation Run(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return CampaignSpecValidator.Validate(doc.RootElement, _dir);
    }

    private IReadOnlyList<string> Errors(string json)
    {
        var (spec, errors) = Run(json);
        Assert.Null(spec);
        Assert.NotEmpty(errors);
        return errors;
    }

    private string Single(string json) => Assert.Single(Errors(json));

    [Theory]
    [InlineData("quick-native.json")]
    [InlineData("random-native.json")]
    [InlineData("quick-endpoint.json")]
    public void Load_Examples_Validate(string file)
    {
        var (spec, errors) = CampaignSpecValidator.Load(Path.Combine(AppContext.BaseDirectory, "examples", file));
        Assert.Empty(errors);
        Assert.NotNull(spec);
    }

    [Fact]
    public void Load_RandomNative_ReadsEveryField()
    {
        var (spec, _) = CampaignSpecValidator.Load(Path.Combine(AppContext.BaseDirectory, "examples", "random-native.json"));
        Assert.NotNull(spec);
        var native = Assert.IsType<NativePolicySpec>(spec.Policy);
        Assert.EndsWith(Path.Combine("examples", "models", "quick.json"), native.ConfigPath, StringComparison.Ordinal);
        Assert.Equal(1, native.InitSeed);
        Assert.Null(native.ModelDirectory);
        Assert.Equal(PromptTemplate.R1Zero, spec.Dataset.Template);
        Assert.Equal(0.2, spec.Dataset.EvalFraction);
        Assert.Equal(4, spec.Algorithm.GroupSize);
        Assert.Equal(2, spec.Algorithm.PromptsPerStep);
        Assert.Equal(1e-4, spec.Algorithm.LearningRate);
        Assert.Equal(0.28, spec.Algorithm.EpsilonHigh);
        Assert.Equal(LossAggregation.Dapo, spec.Algorithm.LossAggregation);
        Assert.Equal(4, spec.Algorithm.Steps);
        Assert.EndsWith(Path.Combine("examples", "models", "tiny-tokenizer.json"), native.TokenizerPath, StringComparison.Ordinal);
        Assert.True(Assert.Single(spec.RejectionSampling).NoCodeInReasoning);
        Assert.Equal(2, spec.Evaluation.EverySteps);
        Assert.Null(spec.Evaluation.SetPath);
        Assert.Equal(2, spec.CheckpointEverySteps);
        Assert.Equal(1, spec.Seed);
        Assert.Equal(["accuracy", "format_r1_zero"], spec.Rewards.RuleNames);
    }

    [Fact]
    public void Load_QuickEndpoint_IsCollectMode()
    {
        var (spec, _) = CampaignSpecValidator.Load(Path.Combine(AppContext.BaseDirectory, "examples", "quick-endpoint.json"));
        Assert.NotNull(spec);
        Assert.Equal(CampaignMode.Collect, spec.Mode);
        var endpoint = Assert.IsType<EndpointPolicySpec>(spec.Policy);
        Assert.Equal(new Uri("http://127.0.0.1:8000/v1"), endpoint.Url);
        Assert.Equal("DEEPSEEKRL_API_KEY", endpoint.ApiKeyEnvironmentVariable);
        Assert.Equal(20, spec.Dataset.MaxRows);
    }

    [Fact]
    public void Validate_Minimal_TakesDocumentedDefaults()
    {
        var (spec, errors) = Run(Minimal());
        Assert.Empty(errors);
        Assert.NotNull(spec);
        Assert.Equal(Path.Combine(_dir, "model"), Assert.IsType<NativePolicySpec>(spec.Policy).ModelDirectory);
        Assert.Equal(Path.Combine(_dir, "data.jsonl"), spec.Dataset.Path);
        Assert.Equal(new AlgorithmSpec(), spec.Algorithm);
        Assert.Equal(new EvaluationSpec(), spec.Evaluation);
        Assert.Equal(CampaignMode.Train, spec.Mode);
        Assert.Equal("prompt", spec.Dataset.PromptField);
        Assert.Equal(0.1, spec.Dataset.EvalFraction);
        Assert.Equal(10, spec.CheckpointEverySteps);
        Assert.Empty(spec.RejectionSampling);
    }

    [Theory]
    [InlineData("dapo", 0.0, 0.28, LossAggregation.Dapo, AdvantageNormalization.Group, true)]
    [InlineData("dr_grpo", 0.0, 0.2, LossAggregation.DrGrpo, AdvantageNormalization.None, false)]
    [InlineData("gspo", 0.0, 0.2, LossAggregation.Grpo, AdvantageNormalization.Group, false)]
    [InlineData("bnpo", 0.04, 0.2, LossAggregation.Bnpo, AdvantageNormalization.Group, false)]
    public void Validate_Variant_SetsDefaultsOfUnsetFields(string variant, double beta, double epsHigh, LossAggregation loss, AdvantageNormalization adv, bool dynamic)
    {
        var (spec, errors) = Run(Minimal($$""", "algorithm": {"variant": "{{variant}}"}"""));
        Assert.Empty(errors);
        var a = spec!.Algorithm;
        Assert.Equal((beta, epsHigh, loss, adv, dynamic), (a.Beta, a.EpsilonHigh, a.LossAggregation, a.AdvantageNormalization, a.DynamicSampling));
    }

    [Fact]
    public void Validate_ExplicitFieldOverridesVariantDefault()
    {
        var (spec, _) = Run(Minimal(""", "algorithm": {"variant": "dapo", "dynamic_sampling": false, "beta": 0.01, "dual_clip": 3}"""));
        Assert.False(spec!.Algorithm.DynamicSampling);
        Assert.Equal(0.01, spec.Algorithm.Beta);
        Assert.Equal(3.0, spec.Algorithm.DualClip);
    }

    [Fact]
    public void Validate_ManyProblems_ReportsEveryOneExactly()
    {
        var json = """
            {
              "name": "bad name!",
              "colour": "red",
              "policy": {"native": {"model": "empty"}},
              "dataset": {"path": "nope.jsonl", "template": "chatml", "eval_fraction": 1.5},
              "rewards": {"rules": [{"rule": "accuracy"}, 3]},
              "algorithm": {"group_size": 1, "learning_rate": "fast", "kl_estimator": "k4", "dual_clip": 0.5, "top_p": 0, "stepz": 3},
              "rejection_sampling": [{"rule": "speed", "op": "!=", "value": "1"}],
              "evaluation": {"mode": "greedy", "k": 4},
              "checkpoint_every_steps": -1,
              "seed": 1.5
            }
            """;
        var expected = new[]
        {
            "colour: unknown key; known keys: name, mode, policy, dataset, rewards, algorithm, rejection_sampling, evaluation, checkpoint_every_steps, seed",
            "name = \"bad name!\": expected a name of 1..64 letters, digits, '.', '_' or '-'",
            $"policy.native.model = \"empty\": expected an existing directory containing config.json (resolved to {Path.Combine(_dir, "empty")})",
            $"dataset.path = \"nope.jsonl\": expected an existing file (resolved to {Path.Combine(_dir, "nope.jsonl")})",
            "dataset.template = \"chatml\": expected one of \"r1\", \"r1_zero\"",
            "dataset.eval_fraction = 1.5: expected a number in [0, 1)",
            "rewards.rules[1] = 3: expected a rule object {\"rule\": ..., \"weight\": ..., \"options\": ...}",
            "algorithm.stepz: unknown key; known keys: variant, group_size, prompts_per_step, learning_rate, beta, kl_estimator, epsilon_low, epsilon_high, dual_clip, loss_aggregation, advantage_normalization, max_new_tokens, temperature, top_p, steps, dynamic_sampling, allowed_staleness",
            "algorithm.dual_clip = 0.5: expected null or a number in (1, 100]",
            "algorithm.group_size = 1: expected an integer ≥ 2 (at most 1024)",
            "algorithm.learning_rate = \"fast\": expected a number in (0, 1]",
            "algorithm.kl_estimator = \"k4\": expected one of \"k1\", \"k2\", \"k3\"",
            "algorithm.top_p = 0: expected a number in (0, 1]",
            "rejection_sampling[0].op = \"!=\": expected one of \"==\", \">=\", \"<=\", \">\", \"<\"",
            "rejection_sampling[0].value = \"1\": expected a number",
            "evaluation.k = 4: expected 1 with mode \"greedy\" (pass@k needs mode \"sampled\")",
            "checkpoint_every_steps = -1: expected an integer in 0..1000000 (0 = only at the end)",
            "seed = 1.5: expected an integer in 0..2^53",
        };
        var errors = Errors(json);
        Assert.Equal(expected, errors);
    }

    [Fact]
    public void Validate_FilterOnUnknownRule_ListsTheRules()
    {
        var error = Single(Minimal(""", "rejection_sampling": [{"rule": "speed", "op": ">", "value": 0}]"""));
        Assert.Equal("rejection_sampling[0].rule = \"speed\": expected the name of a rule in rewards.rules (accuracy, format)", error);
    }

    [Fact]
    public void Validate_FilterWhenMissing_DefaultsToFailAndReadsPass()
    {
        var (spec, errors) = Run(Minimal("""
            , "rejection_sampling": [{"rule": "accuracy", "op": "==", "value": 1},
                                     {"rule": "format", "op": ">=", "value": 1, "when_missing": "pass"},
                                     {"rule": "accuracy", "op": ">", "value": 0, "when_missing": "fail"}]
            """));
        Assert.Empty(errors);
        Assert.Equal([MissingScorePolicy.Fail, MissingScorePolicy.Pass, MissingScorePolicy.Fail], spec!.RejectionSampling.Select(f => f.WhenMissing));
        Assert.Equal("format", spec.RejectionSampling[1].Rule);
        Assert.Equal(FilterOperator.GreaterOrEqual, spec.RejectionSampling[1].Operator);
    }

    [Theory]
    [InlineData("\"skip\"", "rejection_sampling[0].when_missing = \"skip\": expected one of \"fail\", \"pass\"")]
    [InlineData("true", "rejection_sampling[0].when_missing = true: expected one of \"fail\", \"pass\"")]
    [InlineData("null", "rejection_sampling[0].when_missing = null: expected one of \"fail\", \"pass\"")]
    [InlineData("\"PASS\"", "rejection_sampling[0].when_missing = \"PASS\": expected one of \"fail\", \"pass\"")]
    public void Validate_FilterBadWhenMissing_ReportsIt(string value, string expected) =>
        Assert.Equal(expected, Single(Minimal($$"""
            , "rejection_sampling": [{"rule": "accuracy", "op": "==", "value": 1, "when_missing": {{value}}}]
            """)));

    [Theory]
    [InlineData("\"mode\": 3", "mode = 3: expected one of \"train\", \"collect\"")]
    [InlineData("\"mode\": \"fast\"", "mode = \"fast\": expected one of \"train\", \"collect\"")]
    [InlineData("\"algorithm\": []", "algorithm = []: expected an object")]
    [InlineData("\"algorithm\": {\"variant\": \"ppo\"}", "algorithm.variant = \"ppo\": expected one of \"grpo\", \"dapo\", \"dr_grpo\", \"gspo\", \"bnpo\"")]
    [InlineData("\"algorithm\": {\"group_size\": \"8\"}", "algorithm.group_size = \"8\": expected an integer ≥ 2 (at most 1024)")]
    [InlineData("\"algorithm\": {\"group_size\": 2.5}", "algorithm.group_size = 2.5: expected an integer ≥ 2 (at most 1024)")]
    [InlineData("\"algorithm\": {\"prompts_per_step\": 0}", "algorithm.prompts_per_step = 0: expected an integer in 1..65536")]
    [InlineData("\"algorithm\": {\"learning_rate\": 0}", "algorithm.learning_rate = 0: expected a number in (0, 1]")]
    [InlineData("\"algorithm\": {\"beta\": -0.1}", "algorithm.beta = -0.1: expected a number in [0, 10]")]
    [InlineData("\"algorithm\": {\"beta\": null}", "algorithm.beta = null: expected a number in [0, 10]")]
    [InlineData("\"algorithm\": {\"epsilon_low\": 1}", "algorithm.epsilon_low = 1: expected a number in [0, 1)")]
    [InlineData("\"algorithm\": {\"epsilon_high\": -1}", "algorithm.epsilon_high = -1: expected a number in [0, 10]")]
    [InlineData("\"algorithm\": {\"dual_clip\": 1}", "algorithm.dual_clip = 1: expected null or a number in (1, 100]")]
    [InlineData("\"algorithm\": {\"dual_clip\": \"3\"}", "algorithm.dual_clip = \"3\": expected null or a number in (1, 100]")]
    [InlineData("\"algorithm\": {\"loss_aggregation\": \"sum\"}", "algorithm.loss_aggregation = \"sum\": expected one of \"grpo\", \"bnpo\", \"dapo\", \"dr_grpo\"")]
    [InlineData("\"algorithm\": {\"advantage_normalization\": true}", "algorithm.advantage_normalization = true: expected one of \"group\", \"batch\", \"none\"")]
    [InlineData("\"algorithm\": {\"max_new_tokens\": 0}", "algorithm.max_new_tokens = 0: expected an integer in 1..131072")]
    [InlineData("\"algorithm\": {\"temperature\": 0}", "algorithm.temperature = 0: expected a number in (0, 10]")]
    [InlineData("\"algorithm\": {\"top_p\": 1.01}", "algorithm.top_p = 1.01: expected a number in (0, 1]")]
    [InlineData("\"algorithm\": {\"steps\": -1}", "algorithm.steps = -1: expected an integer in 0..10000000")]
    [InlineData("\"algorithm\": {\"dynamic_sampling\": \"yes\"}", "algorithm.dynamic_sampling = \"yes\": expected true or false")]
    [InlineData("\"algorithm\": {\"allowed_staleness\": -1}", "algorithm.allowed_staleness = -1: expected an integer in 0..64")]
    [InlineData("\"rejection_sampling\": {}", "rejection_sampling = {}: expected an array of filters")]
    [InlineData("\"rejection_sampling\": [\"no_code\"]", "rejection_sampling[0] = \"no_code\": expected a filter object or the shortcut \"no_code_in_reasoning\"")]
    [InlineData("\"rejection_sampling\": [1]", "rejection_sampling[0] = 1: expected a filter object {\"rule\": ..., \"op\": ..., \"value\": ...} or \"no_code_in_reasoning\"")]
    [InlineData("\"rejection_sampling\": [{\"rule\": \"accuracy\", \"op\": \"==\", \"value\": 1, \"x\": 0}]", "rejection_sampling[0].x: unknown key; known keys: rule, op, value, when_missing")]
    [InlineData("\"evaluation\": 5", "evaluation = 5: expected an object")]
    [InlineData("\"evaluation\": {\"every_steps\": -2}", "evaluation.every_steps = -2: expected an integer in 0..1000000 (0 = never)")]
    [InlineData("\"evaluation\": {\"mode\": \"beam\"}", "evaluation.mode = \"beam\": expected one of \"greedy\", \"sampled\"")]
    [InlineData("\"evaluation\": {\"mode\": \"sampled\", \"k\": 0}", "evaluation.k = 0: expected an integer in 1..1024")]
    [InlineData("\"evaluation\": {\"when\": 1}", "evaluation.when: unknown key; known keys: every_steps, mode, k, set")]
    [InlineData("\"seed\": \"1\"", "seed = \"1\": expected an integer in 0..2^53")]
    [InlineData("\"checkpoint_every_steps\": true", "checkpoint_every_steps = true: expected an integer in 0..1000000 (0 = only at the end)")]
    public void Validate_BadTopLevelField_ReportsIt(string field, string expected) =>
        Assert.Equal(expected, Single(Minimal(", " + field)));

    [Fact]
    public void Validate_SampledPassAtK_Accepted()
    {
        var (spec, errors) = Run(Minimal(""", "evaluation": {"mode": "sampled", "k": 8, "set": "data.jsonl"}"""));
        Assert.Empty(errors);
        Assert.Equal(8, spec!.Evaluation.K);
        Assert.Equal(Path.Combine(_dir, "data.jsonl"), spec.Evaluation.SetPath);
    }

    [Fact]
    public void Validate_EvalSetMissingFile_ReportsResolvedPath() =>
        Assert.Equal($"evaluation.set = \"gone.jsonl\": expected an existing file (resolved to {Path.Combine(_dir, "gone.jsonl")})",
            Single(Minimal(""", "evaluation": {"set": "gone.jsonl"}""")));

    [Fact]
    public void Validate_EvalSplitWithoutSplit_Rejected() =>
        Assert.StartsWith("evaluation.set = \"eval_split\" with dataset.eval_fraction = 0",
            Single("""{"name": "t", "policy": {"native": {"model": "model"}}, "dataset": {"path": "data.jsonl", "eval_fraction": 0}, "rewards": {"rules": [{"rule": "accuracy"}]}}"""),
            StringComparison.Ordinal);

    private string WithDataset(string dataset) =>
        $$$"""{"name": "t", "policy": {"native": {"model": "model"}}, "dataset": {{{dataset}}}, "rewards": {{{Rewards}}}}""";

    [Theory]
    [InlineData("[]", "dataset = []: expected an object with at least \"path\"")]
    [InlineData("{}", "dataset.path: missing; expected a path to an existing file (relative to the spec's directory)")]
    [InlineData("{\"path\": 1}", "dataset.path = 1: expected a path to an existing file (relative to the spec's directory)")]
    [InlineData("{\"path\": \"data.jsonl\", \"prompt_field\": \"\"}", "dataset.prompt_field = \"\": expected a non-empty field name")]
    [InlineData("{\"path\": \"data.jsonl\", \"answer_field\": 2}", "dataset.answer_field = 2: expected a non-empty field name")]
    [InlineData("{\"path\": \"data.jsonl\", \"max_rows\": 0}", "dataset.max_rows = 0: expected null or an integer in 1..2147483647")]
    [InlineData("{\"path\": \"data.jsonl\", \"eval_path\": \"data.jsonl\", \"eval_fraction\": 0.1}", "dataset.eval_fraction = 0.1: expected no eval_fraction (or 0) when eval_path is set")]
    [InlineData("{\"path\": \"data.jsonl\", \"split\": 0.1}", "dataset.split: unknown key; known keys: path, prompt_field, answer_field, template, eval_fraction, eval_path, max_rows")]
    public void Validate_BadDataset_ReportsIt(string dataset, string expected) => Assert.Equal(expected, Single(WithDataset(dataset)));

    [Fact]
    public void Validate_DatasetDirectoryAsFile_Rejected() =>
        Assert.Equal($"dataset.path = \"model\": expected an existing file (resolved to {Path.Combine(_dir, "model")})",
            Single(WithDataset("""{"path": "model"}""")));

    private string WithPolicy(string policy) =>
        $$"""{"name": "t", "policy": {{policy}}, "dataset": {"path": "data.jsonl"}, "rewards": {{Rewards}}}""";

    [Theory]
    [InlineData("\"model\"", "policy = \"model\": expected an object with exactly one of \"native\" or \"endpoint\"")]
    [InlineData("{}", "policy = {}: expected an object with exactly one of \"native\" or \"endpoint\"")]
    [InlineData("{\"native\": {\"model\": \"model\"}, \"remote\": 1}", "policy.remote: unknown key; known keys: native, endpoint")]
    [InlineData("{\"native\": \"model\"}", "policy.native = \"model\": expected an object {\"model\": DIR} or {\"config\": FILE, \"seed\": N, \"tokenizer\": FILE}")]
    [InlineData("{\"native\": {}}", "policy.native = {}: expected exactly one of \"model\" (a model directory) or \"config\" (a model config file to initialise from)")]
    [InlineData("{\"native\": {\"model\": \"model\", \"seed\": 1}}", "policy.native.seed = 1: expected no seed with \"model\" (seed only initialises from \"config\")")]
    [InlineData("{\"native\": {\"config\": \"model/config.json\", \"seed\": -1, \"tokenizer\": \"model/tokenizer.json\"}}", "policy.native.seed = -1: expected an integer in 0..2^53")]
    [InlineData("{\"native\": {\"config\": \"model/config.json\", \"seed\": 1}}", "policy.native.tokenizer: missing; expected a path to an existing file (relative to the spec's directory)")]
    [InlineData("{\"native\": {\"model\": \"model\", \"backend\": \"jax\"}}", "policy.native.backend = \"jax\": expected \"native\" or \"torch\"")]
    [InlineData("{\"native\": {\"model\": \"model\", \"backend\": 1}}", "policy.native.backend = 1: expected \"native\" or \"torch\"")]
    [InlineData("{\"native\": {\"model\": \"model\", \"backend\": \"torch\", \"device\": \"gpu\"}}", "policy.native.device = \"gpu\": expected \"cpu\", \"cuda\" or \"cuda:N\"")]
    [InlineData("{\"native\": {\"model\": \"model\", \"backend\": \"torch\", \"device\": \"cuda:\"}}", "policy.native.device = \"cuda:\": expected \"cpu\", \"cuda\" or \"cuda:N\"")]
    [InlineData("{\"native\": {\"model\": \"model\", \"device\": \"cuda:0\"}}", "policy.native.device = \"cuda:0\": expected \"cpu\" with the native engine (use \"backend\": \"torch\" for CUDA)")]
    [InlineData("{\"endpoint\": {\"url\": \"ftp://x\", \"model\": \"m\"}}", "policy.endpoint.url = \"ftp://x\": expected an absolute http or https URL")]
    [InlineData("{\"endpoint\": {\"url\": \"http://x\", \"model\": \"\"}}", "policy.endpoint.model = \"\": expected a non-empty model name")]
    [InlineData("{\"endpoint\": {\"url\": \"http://x\"}}", "policy.endpoint.model: missing; expected a non-empty model name")]
    [InlineData("{\"endpoint\": {\"url\": \"http://x\", \"model\": \"m\", \"api_key\": \"sk-1\"}}", "policy.endpoint.api_key: unknown key; known keys: url, model, api_key_env")]
    [InlineData("{\"endpoint\": {\"url\": \"http://x\", \"model\": \"m\", \"api_key_env\": \"1KEY\"}}", "policy.endpoint.api_key_env = \"1KEY\": expected an environment variable name (letters, digits, '_', not starting with a digit)")]
    public void Validate_BadPolicy_ReportsIt(string policy, string expected)
    {
        var json = WithPolicy(policy);
        if (policy.Contains("endpoint", StringComparison.Ordinal))
        {
            json = json.Replace("{\"name\": \"t\",", "{\"name\": \"t\", \"mode\": \"collect\",", StringComparison.Ordinal);
        }

        Assert.Equal(expected, Single(json));
    }

    [Fact]
    public void Validate_NativeModelWithoutConfigJson_Rejected() =>
        Assert.Equal($"policy.native.model = \"plugins\": expected an existing directory containing config.json (resolved to {Path.Combine(_dir, "plugins")})",
            Single(WithPolicy("""{"native": {"model": "plugins"}}""")));

    [Fact]
    public void Validate_NativeModelWithoutTokenizer_Rejected() =>
        Assert.Equal($"policy.native.model = \"bare\": expected a model directory with tokenizer.json (not found: {Path.Combine(_dir, "bare", "tokenizer.json")}), or \"tokenizer\": FILE beside \"model\"",
            Single(WithPolicy("""{"native": {"model": "bare"}}""")));

    [Theory]
    [InlineData("", "native", "cpu")]
    [InlineData(", \"backend\": \"torch\"", "torch", "cpu")]
    [InlineData(", \"backend\": \"torch\", \"device\": \"cuda:1\"", "torch", "cuda:1")]
    [InlineData(", \"backend\": \"native\", \"device\": \"cpu\"", "native", "cpu")]
    public void Validate_BackendAndDevice_ReadWithDefaults(string fields, string backend, string device)
    {
        using var document = System.Text.Json.JsonDocument.Parse(WithPolicy($$$"""{"native": {"model": "model"{{{fields}}}}}"""));
        var native = Assert.IsType<NativePolicySpec>(CampaignSpecValidator.Validate(document.RootElement, _dir).Spec!.Policy);
        Assert.Equal(backend, native.Backend);
        Assert.Equal(device, native.Device);
    }

    [Fact]
    public void Validate_NativeModelWithTokenizerBeside_Accepted()
    {
        using var document = System.Text.Json.JsonDocument.Parse(WithPolicy("""{"native": {"model": "bare", "tokenizer": "model/tokenizer.json"}}"""));
        var native = Assert.IsType<NativePolicySpec>(CampaignSpecValidator.Validate(document.RootElement, _dir).Spec!.Policy);
        Assert.Equal(Path.Combine(_dir, "model", "tokenizer.json"), native.TokenizerPath);
    }

    [Fact]
    public void Validate_WithoutFileChecks_ResolvesMissingPaths()
    {
        using var document = System.Text.Json.JsonDocument.Parse(
            """{"name": "t", "policy": {"native": {"model": "gone"}}, "dataset": {"path": "gone.jsonl"}, "rewards": {"rules": [{"rule": "accuracy"}]}}""");
        Assert.NotEmpty(CampaignSpecValidator.Validate(document.RootElement, _dir).Errors);
        var spec = CampaignSpecValidator.Validate(document.RootElement, _dir, checkFiles: false).Spec!;
        Assert.Equal(Path.Combine(_dir, "gone.jsonl"), spec.Dataset.Path);
        Assert.NotEmpty(CampaignSpecValidator.Validate(document.RootElement, _dir).Errors);
    }

    [Fact]
    public void Validate_EndpointWithUpdates_Rejected() =>
        Assert.Equal("mode = \"train\" with an endpoint policy and algorithm.steps = 100: an endpoint policy can roll out, score and collect "
            + "samples but cannot be updated; expected \"mode\": \"collect\" (or a native policy)",
            Single(WithPolicy("""{"endpoint": {"url": "http://127.0.0.1:8000/v1", "model": "m"}}""")));

    [Fact]
    public void Validate_EndpointCollect_Accepted()
    {
        var (spec, errors) = Run(WithPolicy("""{"endpoint": {"url": "http://127.0.0.1:8000/v1", "model": "m"}}""")
            .Replace("{\"name\": \"t\",", "{\"name\": \"t\", \"mode\": \"collect\",", StringComparison.Ordinal));
        Assert.Empty(errors);
        Assert.Equal(CampaignMode.Collect, spec!.Mode);
    }

    private string WithRewards(string rewards) =>
        $$$"""{"name": "t", "policy": {"native": {"model": "model"}}, "dataset": {"path": "data.jsonl"}, "rewards": {{{rewards}}}}""";

    [Theory]
    [InlineData("[]", "rewards = []: expected a rules object {\"rules\": [...], \"plugins\": DIR}")]
    [InlineData("{}", "rewards.rules: missing; expected a non-empty array of rule objects")]
    [InlineData("{\"rules\": []}", "rewards.rules = []: expected a non-empty array of rule objects")]
    [InlineData("{\"rules\": [{\"weight\": 1}]}", "rewards.rules[0] = {\"weight\": 1}: expected a rule object with a non-empty string \"rule\"")]
    [InlineData("{\"rules\": [{\"rule\": \"accuracy\"}], \"plugin\": \"plugins\"}", "rewards.plugin: unknown key; known keys: rules, plugins")]
    public void Validate_BadRewards_ReportsIt(string rewards, string expected) => Assert.Equal(expected, Single(WithRewards(rewards)));

    [Fact]
    public void Validate_PluginsDirectory_ResolvedOrRejected()
    {
        var (spec, _) = Run(WithRewards("""{"rules": [{"rule": "accuracy"}], "plugins": "plugins"}"""));
        Assert.Equal(Path.Combine(_dir, "plugins"), spec!.Rewards.PluginsDirectory);
        Assert.Equal(JsonValueKind.Object, spec.Rewards.Json.ValueKind);
        Assert.Equal($"rewards.plugins = \"none\": expected an existing directory (resolved to {Path.Combine(_dir, "none")})",
            Single(WithRewards("""{"rules": [{"rule": "accuracy"}], "plugins": "none"}""")));
    }

    [Theory]
    [InlineData("[]", "(root) = []: expected a JSON object")]
    [InlineData("\"spec\"", "(root) = \"spec\": expected a JSON object")]
    [InlineData("null", "(root) = null: expected a JSON object")]
    public void Validate_RootNotObject_Rejected(string json, string expected) => Assert.Equal(expected, Single(json));

    [Fact]
    public void Validate_Empty_ReportsEveryRequiredField() =>
        Assert.Equal(
        [
            "name: missing; expected a name of 1..64 letters, digits, '.', '_' or '-'",
            "policy: missing; expected an object with exactly one of \"native\" or \"endpoint\"",
            "dataset: missing; expected an object with at least \"path\"",
            "rewards: missing; expected a rules object {\"rules\": [...], \"plugins\": DIR}",
        ], Errors("{}"));

    [Fact]
    public void Validate_NameWrongType_Rejected() =>
        Assert.Equal("name = 3: expected a name of 1..64 letters, digits, '.', '_' or '-'", Single(Minimal().Replace("\"t\"", "3", StringComparison.Ordinal)));

    [Fact]
    public void Validate_DuplicateKey_Rejected() =>
        Assert.Equal("name: duplicate key", Single(Minimal(", \"name\": \"u\"")));

    [Fact]
    public void Load_MissingFile_OneLine()
    {
        var path = Path.Combine(_dir, "absent.json");
        Assert.Equal([$"{path}: file not found"], CampaignSpecValidator.Load(path).Errors);
    }

    [Fact]
    public void Load_TruncatedJson_OneLineNamingTheFile()
    {
        var path = Path.Combine(_dir, "spec.json");
        File.WriteAllText(path, Minimal()[..40]);
        var (spec, errors) = CampaignSpecValidator.Load(path);
        Assert.Null(spec);
        var error = Assert.Single(errors);
        Assert.StartsWith($"{path}: invalid JSON at line 1, byte ", error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error);
    }

    [Fact]
    public void Load_NotAnObject_Rejected()
    {
        var path = Path.Combine(_dir, "spec.json");
        File.WriteAllText(path, "[1, 2]");
        Assert.Equal(["(root) = [1, 2]: expected a JSON object"], CampaignSpecValidator.Load(path).Errors);
    }

    [Fact]
    public void Load_Binary_Rejected()
    {
        var path = Path.Combine(_dir, "spec.json");
        File.WriteAllBytes(path, [0xFF, 0xFE, 0x00, 0x01]);
        Assert.StartsWith($"{path}: invalid JSON", Assert.Single(CampaignSpecValidator.Load(path).Errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_Huge_RejectedBeforeParsing()
    {
        var path = Path.Combine(_dir, "spec.json");
        File.WriteAllText(path, "{\"name\": \"" + new string('a', 1 << 20) + "\"}");
        Assert.Equal([$"{path}: file is 1048588 bytes; expected at most 1 MiB (1048576 bytes)"], CampaignSpecValidator.Load(path).Errors);
    }

    [Fact]
    public void Load_RelativePaths_ResolveAgainstSpecDirectory()
    {
        var sub = Directory.CreateDirectory(Path.Combine(_dir, "specs")).FullName;
        var path = Path.Combine(sub, "spec.json");
        File.WriteAllText(path, Minimal().Replace("\"model\"}", "\"../model\"}", StringComparison.Ordinal).Replace("\"data.jsonl\"", "\"../data.jsonl\"", StringComparison.Ordinal));
        var (spec, errors) = CampaignSpecValidator.Load(path);
        Assert.Empty(errors);
        Assert.Equal(Path.Combine(_dir, "data.jsonl"), spec!.Dataset.Path);
    }

    [Fact]
    public void Load_DeeplyNested_OneLineNotException()
    {
        var path = Path.Combine(_dir, "spec.json");
        File.WriteAllText(path, new string('[', 200) + new string(']', 200));
        Assert.StartsWith($"{path}: invalid JSON", Assert.Single(CampaignSpecValidator.Load(path).Errors), StringComparison.Ordinal);
    }
}
