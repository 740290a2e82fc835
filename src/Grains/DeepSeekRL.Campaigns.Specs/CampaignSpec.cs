using System.Text.Json;

namespace DeepSeekRL.Campaigns.Specs;

/// <summary>
/// A validated campaign: the R1 loop's policy, dataset, rewards, algorithm, rejection-sampling filter, evaluation,
/// checkpointing and seed (docs/campaign-spec.md). Built only by <see cref="CampaignSpecValidator"/>; every path in it
/// is absolute and existed when the spec was validated.
/// </summary>
public sealed record CampaignSpec
{
    /// <summary>The campaign's name (JSON <c>name</c>).</summary>
    /// <remarks>Required; 1..64 characters of letters, digits, <c>.</c>, <c>_</c> and <c>-</c>.</remarks>
    public required string Name { get; init; }

    /// <summary>Whether the campaign updates the policy (JSON <c>mode</c>).</summary>
    /// <remarks>Default <see cref="CampaignMode.Train"/>; an endpoint policy requires <see cref="CampaignMode.Collect"/>.</remarks>
    public CampaignMode Mode { get; init; } = CampaignMode.Train;

    /// <summary>The policy that samples completions (JSON <c>policy</c>).</summary>
    /// <remarks>Required.</remarks>
    public required PolicySpec Policy { get; init; }

    /// <summary>The prompts and gold answers (JSON <c>dataset</c>).</summary>
    /// <remarks>Required.</remarks>
    public required DatasetSpec Dataset { get; init; }

    /// <summary>The reward rules (JSON <c>rewards</c>).</summary>
    /// <remarks>Required.</remarks>
    public required RewardsSpec Rewards { get; init; }

    /// <summary>The RL variant and hyper-parameters (JSON <c>algorithm</c>).</summary>
    /// <remarks>Optional; every field has a default.</remarks>
    public AlgorithmSpec Algorithm { get; init; } = new();

    /// <summary>The filters a scored completion must pass to become an SFT sample (JSON <c>rejection_sampling</c>).</summary>
    /// <remarks>Default empty: every scored completion is kept.</remarks>
    public IReadOnlyList<RejectionFilter> RejectionSampling { get; init; } = [];

    /// <summary>How and when the policy is evaluated (JSON <c>evaluation</c>).</summary>
    /// <remarks>Optional; every field has a default.</remarks>
    public EvaluationSpec Evaluation { get; init; } = new();

    /// <summary>Steps between checkpoints (JSON <c>checkpoint_every_steps</c>).</summary>
    /// <remarks>Default 10; unit: steps; range 0..1,000,000, 0 = only at the end.</remarks>
    public int CheckpointEverySteps { get; init; } = 10;

    /// <summary>The campaign's seed for sampling, shuffling and splitting (JSON <c>seed</c>).</summary>
    /// <remarks>Default 0; range 0..2^53.</remarks>
    public long Seed { get; init; }
}

/// <summary>Whether a campaign updates its policy.</summary>
public enum CampaignMode
{
    /// <summary><c>train</c>: roll out, score, collect and update the policy for <see cref="AlgorithmSpec.Steps"/> steps.</summary>
    Train,

    /// <summary><c>collect</c>: roll out, score and collect samples for <see cref="AlgorithmSpec.Steps"/> steps, never update.</summary>
    Collect,
}

/// <summary>The policy that samples completions: a native model or an OpenAI-compatible endpoint.</summary>
public abstract record PolicySpec;

/// <summary>
/// A native DeepSeek-V3-architecture model (JSON <c>{"native": {"model": "DIR"}}</c>), or one initialised from a
/// config file with a seed (JSON <c>{"native": {"config": "FILE", "seed": 1}}</c>), run by the engine <c>backend</c>
/// (<c>"native"</c> or <c>"torch"</c>) on <c>device</c>.
/// </summary>
public sealed record NativePolicySpec : PolicySpec
{
    /// <summary>The absolute model directory (holds config.json), or null when initialised from <see cref="ConfigPath"/>.</summary>
    public string? ModelDirectory { get; init; }

    /// <summary>The absolute model config file to initialise fresh weights from, or null when <see cref="ModelDirectory"/> is set.</summary>
    public string? ConfigPath { get; init; }

    /// <summary>The initialisation seed used with <see cref="ConfigPath"/>.</summary>
    /// <remarks>Default 0; range 0..2^53.</remarks>
    public long InitSeed { get; init; }

    /// <summary>The tokenizer.json: <c>tokenizer</c>, else the model directory's <c>tokenizer.json</c>.</summary>
    public string? TokenizerPath { get; init; }

    /// <summary>The engine that runs the model: <c>native</c> (the C# engine, CPU) or <c>torch</c> (libtorch through TorchSharp).</summary>
    /// <remarks>Default <c>native</c>.</remarks>
    public string Backend { get; init; } = "native";

    /// <summary>The device: <c>cpu</c>, or <c>cuda</c> / <c>cuda:N</c> with <c>backend: "torch"</c> and a CUDA libtorch build.</summary>
    /// <remarks>Default <c>cpu</c>.</remarks>
    public string Device { get; init; } = "cpu";
}

/// <summary>An OpenAI-compatible completions endpoint (vLLM, SGLang, Ollama, llama.cpp, <c>deepseekrl serve</c>).</summary>
/// <remarks>It can roll out, score and collect samples but cannot be updated.</remarks>
public sealed record EndpointPolicySpec : PolicySpec
{
    /// <summary>The base URL, e.g. <c>http://127.0.0.1:8000/v1</c>.</summary>
    /// <remarks>Required; absolute http or https.</remarks>
    public required Uri Url { get; init; }

    /// <summary>The model name sent in requests.</summary>
    /// <remarks>Required; non-empty.</remarks>
    public required string Model { get; init; }

    /// <summary>The environment variable that holds the API key, or null for none.</summary>
    /// <remarks>Default null; a name of letters, digits and underscores not starting with a digit. The key itself never appears in a spec.</remarks>
    public string? ApiKeyEnvironmentVariable { get; init; }
}

/// <summary>The prompt template a dataset row is rendered with.</summary>
public enum PromptTemplate
{
    /// <summary><c>r1</c>: the R1 chat template (reasoning in &lt;think&gt;, then the answer).</summary>
    R1,

    /// <summary><c>r1_zero</c>: the R1-Zero plain-text template (&lt;think&gt; and &lt;answer&gt; tags).</summary>
    R1Zero,
}

/// <summary>The dataset of prompts and gold answers (JSON <c>dataset</c>).</summary>
public sealed record DatasetSpec
{
    /// <summary>The absolute path of the JSONL file, one object per row.</summary>
    /// <remarks>Required; relative paths resolve against the spec file's directory; must exist.</remarks>
    public required string Path { get; init; }

    /// <summary>The row field that holds the prompt.</summary>
    /// <remarks>Default <c>prompt</c>; non-empty.</remarks>
    public string PromptField { get; init; } = "prompt";

    /// <summary>The row field that holds the gold answer.</summary>
    /// <remarks>Default <c>answer</c>; non-empty.</remarks>
    public string AnswerField { get; init; } = "answer";

    /// <summary>The prompt template.</summary>
    /// <remarks>Default <see cref="PromptTemplate.R1Zero"/>.</remarks>
    public PromptTemplate Template { get; init; } = PromptTemplate.R1Zero;

    /// <summary>The fraction of rows held out (seeded) for evaluation.</summary>
    /// <remarks>Default 0.1 (0 when <see cref="EvalPath"/> is set); unit: fraction of rows; range [0, 1).</remarks>
    public double EvalFraction { get; init; } = 0.1;

    /// <summary>The absolute path of a separate evaluation JSONL, or null to split <see cref="Path"/>.</summary>
    /// <remarks>Default null; exclusive with <c>eval_fraction</c>; must exist.</remarks>
    public string? EvalPath { get; init; }

    /// <summary>The maximum number of rows read, or null for all.</summary>
    /// <remarks>Default null; unit: rows; range 1..2^31-1.</remarks>
    public int? MaxRows { get; init; }
}

/// <summary>The reward rules of the campaign: the rules JSON of the rewards pipeline (README, "Reward rules").</summary>
public sealed record RewardsSpec
{
    /// <summary>The rules JSON object (<c>{"rules": [...], "plugins": "DIR"}</c>), with <c>plugins</c> as written.</summary>
    /// <remarks>Its rule options are validated by the rewards pipeline when it is built; this record checks the shape.</remarks>
    public required JsonElement Json { get; init; }

    /// <summary>The names by which rejection filters refer to the rules (<c>name</c>, else <c>rule</c>).</summary>
    public required IReadOnlyList<string> RuleNames { get; init; }

    /// <summary>The absolute plugins directory, or null for none.</summary>
    /// <remarks>Default null; relative paths resolve against the spec file's directory; must exist.</remarks>
    public string? PluginsDirectory { get; init; }
}

/// <summary>The RL variant (rl-and-rewards.md §2): it sets the defaults of the unset hyper-parameters.</summary>
public enum AlgorithmVariant
{
    /// <summary><c>grpo</c>: token ratio, group-std advantages, per-sequence mean loss, beta 0.04.</summary>
    Grpo,

    /// <summary><c>dapo</c>: clip-higher (epsilon_high 0.28), token-level loss, dynamic sampling, beta 0.</summary>
    Dapo,

    /// <summary><c>dr_grpo</c>: no std normalisation, constant-normaliser loss, beta 0.</summary>
    DrGrpo,

    /// <summary><c>gspo</c>: sequence-level ratio (mean log-ratio), per-sequence mean loss, beta 0.</summary>
    Gspo,

    /// <summary><c>bnpo</c>: batch-normalised loss (sum over the local batch's tokens).</summary>
    Bnpo,
}

/// <summary>The per-token KL estimator against the reference policy.</summary>
public enum KlEstimator
{
    /// <summary><c>k1</c> = logp_theta - logp_ref.</summary>
    K1,

    /// <summary><c>k2</c> = 0.5 (logp_theta - logp_ref)^2.</summary>
    K2,

    /// <summary><c>k3</c> = exp(logp_ref - logp_theta) - (logp_ref - logp_theta) - 1 (unbiased, ≥ 0).</summary>
    K3,
}

/// <summary>How per-token losses are aggregated into the step's loss.</summary>
public enum LossAggregation
{
    /// <summary><c>grpo</c>: per-sequence mean, then batch mean.</summary>
    Grpo,

    /// <summary><c>bnpo</c>: sum over the local batch's active tokens.</summary>
    Bnpo,

    /// <summary><c>dapo</c>: sum over the step's active tokens.</summary>
    Dapo,

    /// <summary><c>dr_grpo</c>: divided by batch size × max_new_tokens.</summary>
    DrGrpo,
}

/// <summary>How rewards are normalised into advantages.</summary>
public enum AdvantageNormalization
{
    /// <summary><c>group</c>: (r - mean) / (std + 1e-4) within the group.</summary>
    Group,

    /// <summary><c>batch</c>: (r - group mean) / std over the whole batch.</summary>
    Batch,

    /// <summary><c>none</c>: r - group mean.</summary>
    None,
}

/// <summary>The RL variant and hyper-parameters (JSON <c>algorithm</c>). Unset fields take the variant's defaults.</summary>
public sealed record AlgorithmSpec
{
    /// <summary>The variant (JSON <c>variant</c>).</summary>
    /// <remarks>Default <see cref="AlgorithmVariant.Grpo"/>.</remarks>
    public AlgorithmVariant Variant { get; init; } = AlgorithmVariant.Grpo;

    /// <summary>Completions per prompt, G (JSON <c>group_size</c>).</summary>
    /// <remarks>Default 8; unit: completions; range 2..1024.</remarks>
    public int GroupSize { get; init; } = 8;

    /// <summary>Prompts per step (JSON <c>prompts_per_step</c>).</summary>
    /// <remarks>Default 4; unit: prompts; range 1..65536.</remarks>
    public int PromptsPerStep { get; init; } = 4;

    /// <summary>The learning rate (JSON <c>learning_rate</c>).</summary>
    /// <remarks>Default 1e-6; range (0, 1].</remarks>
    public double LearningRate { get; init; } = 1e-6;

    /// <summary>The KL coefficient (JSON <c>beta</c>); 0 needs no reference model.</summary>
    /// <remarks>Default 0.04 for grpo and bnpo, 0 for the others; range [0, 10].</remarks>
    public double Beta { get; init; } = 0.04;

    /// <summary>The KL estimator (JSON <c>kl_estimator</c>).</summary>
    /// <remarks>Default <see cref="KlEstimator.K3"/>.</remarks>
    public KlEstimator KlEstimator { get; init; } = KlEstimator.K3;

    /// <summary>The lower clip, the ratio's floor being 1 - epsilon_low (JSON <c>epsilon_low</c>).</summary>
    /// <remarks>Default 0.2; range [0, 1).</remarks>
    public double EpsilonLow { get; init; } = 0.2;

    /// <summary>The upper clip, the ratio's ceiling being 1 + epsilon_high (JSON <c>epsilon_high</c>).</summary>
    /// <remarks>Default 0.2 (0.28 for dapo); range [0, 10].</remarks>
    public double EpsilonHigh { get; init; } = 0.2;

    /// <summary>The dual-clip cap on the ratio for negative advantages (JSON <c>dual_clip</c>), or null for none.</summary>
    /// <remarks>Default null; range (1, 100].</remarks>
    public double? DualClip { get; init; }

    /// <summary>The loss aggregation (JSON <c>loss_aggregation</c>).</summary>
    /// <remarks>Default: the variant's (grpo → grpo, dapo → dapo, dr_grpo → dr_grpo, gspo → grpo, bnpo → bnpo).</remarks>
    public LossAggregation LossAggregation { get; init; } = LossAggregation.Grpo;

    /// <summary>The advantage normalisation (JSON <c>advantage_normalization</c>).</summary>
    /// <remarks>Default <see cref="AdvantageNormalization.Group"/> (none for dr_grpo).</remarks>
    public AdvantageNormalization AdvantageNormalization { get; init; } = AdvantageNormalization.Group;

    /// <summary>The maximum completion length (JSON <c>max_new_tokens</c>).</summary>
    /// <remarks>Default 256; unit: tokens; range 1..131072.</remarks>
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>The sampling temperature (JSON <c>temperature</c>).</summary>
    /// <remarks>Default 1.0; range (0, 10].</remarks>
    public double Temperature { get; init; } = 1.0;

    /// <summary>The nucleus-sampling mass (JSON <c>top_p</c>).</summary>
    /// <remarks>Default 1.0; range (0, 1].</remarks>
    public double TopP { get; init; } = 1.0;

    /// <summary>The number of steps (JSON <c>steps</c>): policy updates in train mode, rollout rounds in collect mode.</summary>
    /// <remarks>Default 100; unit: steps; range 0..10,000,000.</remarks>
    public int Steps { get; init; } = 100;

    /// <summary>Whether groups whose rewards all agree are dropped and resampled (JSON <c>dynamic_sampling</c>).</summary>
    /// <remarks>Default false (true for dapo).</remarks>
    public bool DynamicSampling { get; init; }

    /// <summary>How many policy versions rollouts may run ahead of the learner (JSON <c>allowed_staleness</c>).</summary>
    /// <remarks>Default 0 (synchronous); unit: policy versions; range 0..64.</remarks>
    public int AllowedStaleness { get; init; }
}

/// <summary>The comparison of a rejection filter.</summary>
public enum FilterOperator
{
    /// <summary><c>==</c> (within 1e-9).</summary>
    Equal,

    /// <summary><c>&gt;=</c>.</summary>
    GreaterOrEqual,

    /// <summary><c>&lt;=</c>.</summary>
    LessOrEqual,

    /// <summary><c>&gt;</c>.</summary>
    Greater,

    /// <summary><c>&lt;</c>.</summary>
    Less,
}

/// <summary>What a rejection filter decides for a sample whose score for its rule is missing (JSON <c>when_missing</c>).</summary>
public enum MissingScorePolicy
{
    /// <summary><c>fail</c> (the default): a missing score fails the filter.</summary>
    Fail,

    /// <summary><c>pass</c>: a missing score passes the filter (for rules that do not apply to every row of a mixed dataset).</summary>
    Pass,
}

/// <summary>
/// One rejection-sampling filter: a rule's score compared with a value (JSON <c>{"rule": "accuracy", "op": "==",
/// "value": 1}</c>, optionally with <c>"when_missing": "fail" | "pass"</c>), or the shortcut string
/// <c>"no_code_in_reasoning"</c>.
/// </summary>
public sealed record RejectionFilter
{
    /// <summary>The rule's name (a rewards rule's <c>name</c>, else its <c>rule</c>), or null for a shortcut.</summary>
    public string? Rule { get; init; }

    /// <summary>The comparison.</summary>
    public FilterOperator Operator { get; init; }

    /// <summary>The value the score is compared with.</summary>
    public double Value { get; init; }

    /// <summary>
    /// What a missing score for <see cref="Rule"/> does (JSON <c>when_missing</c>): <see cref="MissingScorePolicy.Fail"/>
    /// (default) fails the filter, <see cref="MissingScorePolicy.Pass"/> passes it.
    /// </summary>
    public MissingScorePolicy WhenMissing { get; init; }

    /// <summary>True for the <c>no_code_in_reasoning</c> shortcut: the reasoning contains no fenced code block.</summary>
    public bool NoCodeInReasoning { get; init; }
}

/// <summary>How the policy is evaluated.</summary>
public enum EvaluationMode
{
    /// <summary><c>greedy</c>: one argmax completion per prompt (k must be 1).</summary>
    Greedy,

    /// <summary><c>sampled</c>: k completions per prompt at the campaign's temperature, reporting pass@k.</summary>
    Sampled,
}

/// <summary>How and when the policy is evaluated (JSON <c>evaluation</c>).</summary>
public sealed record EvaluationSpec
{
    /// <summary>Steps between evaluations (JSON <c>every_steps</c>).</summary>
    /// <remarks>Default 10; unit: steps; range 0..1,000,000, 0 = never.</remarks>
    public int EverySteps { get; init; } = 10;

    /// <summary>Greedy or sampled (JSON <c>mode</c>).</summary>
    /// <remarks>Default <see cref="EvaluationMode.Greedy"/>.</remarks>
    public EvaluationMode Mode { get; init; } = EvaluationMode.Greedy;

    /// <summary>The k of pass@k (JSON <c>k</c>).</summary>
    /// <remarks>Default 1; unit: completions per prompt; range 1..1024; 1 when greedy.</remarks>
    public int K { get; init; } = 1;

    /// <summary>The absolute path of the evaluation JSONL, or null for the dataset's eval split (JSON <c>set</c> = <c>"eval_split"</c>).</summary>
    /// <remarks>Default null (the eval split, which then must be non-empty); a path must exist.</remarks>
    public string? SetPath { get; init; }
}
