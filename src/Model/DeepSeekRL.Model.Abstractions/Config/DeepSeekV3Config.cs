using System.Globalization;
using System.Text.Json;
using DeepSeekRL.Text;

namespace DeepSeekRL.Model.Config;

// The model's hyper-parameters, read from a Hugging Face config.json with DeepseekV3Config key names (reference doc
// §1 and §12). Validation is complete and names the keys; this file does not know about weights.

/// <summary>YaRN rope scaling (<c>rope_scaling</c> with <c>type</c> or <c>rope_type</c> = <c>yarn</c>).</summary>
/// <param name="Factor">The context extension factor s.</param>
/// <param name="OriginalMaxPositionEmbeddings">The original context L_orig.</param>
/// <param name="BetaFast">β_fast (default 32).</param>
/// <param name="BetaSlow">β_slow (default 1).</param>
/// <param name="Mscale">mscale (default 1).</param>
/// <param name="MscaleAllDim">mscale_all_dim (default 0, as HF).</param>
public sealed record YarnScaling(double Factor, int OriginalMaxPositionEmbeddings, double BetaFast, double BetaSlow, double Mscale, double MscaleAllDim);

/// <summary>
/// DeepSeek-V3 hyper-parameters with the HF <c>DeepseekV3Config</c> key names. Immutable; build with
/// <see cref="Load"/> or <see cref="Parse"/>, which validate every key.
/// </summary>
public sealed record DeepSeekV3Config
{
    /// <summary>V, <c>vocab_size</c>.</summary>
    public required int VocabSize { get; init; }

    /// <summary>D, <c>hidden_size</c>.</summary>
    public required int HiddenSize { get; init; }

    /// <summary>I, <c>intermediate_size</c> (dense FFN).</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>I_m, <c>moe_intermediate_size</c> (one expert).</summary>
    public required int MoeIntermediateSize { get; init; }

    /// <summary>L, <c>num_hidden_layers</c> (without MTP).</summary>
    public required int NumHiddenLayers { get; init; }

    /// <summary>H, <c>num_attention_heads</c>.</summary>
    public required int NumAttentionHeads { get; init; }

    /// <summary>N_s, <c>n_shared_experts</c> (0 allowed).</summary>
    public int NSharedExperts { get; init; } = 1;

    /// <summary>E, <c>n_routed_experts</c>.</summary>
    public required int NRoutedExperts { get; init; }

    /// <summary>R, <c>routed_scaling_factor</c>.</summary>
    public double RoutedScalingFactor { get; init; } = 2.5;

    /// <summary>r_kv, <c>kv_lora_rank</c>.</summary>
    public required int KvLoraRank { get; init; }

    /// <summary>r_q, <c>q_lora_rank</c>; <see langword="null"/> (or 0) = plain <c>q_proj</c>.</summary>
    public int? QLoraRank { get; init; }

    /// <summary>d_r, <c>qk_rope_head_dim</c>.</summary>
    public required int QkRopeHeadDim { get; init; }

    /// <summary>d_v, <c>v_head_dim</c>.</summary>
    public required int VHeadDim { get; init; }

    /// <summary>d_n, <c>qk_nope_head_dim</c>.</summary>
    public required int QkNopeHeadDim { get; init; }

    /// <summary>G, <c>n_group</c>.</summary>
    public int NGroup { get; init; } = 1;

    /// <summary>G_k, <c>topk_group</c>.</summary>
    public int TopkGroup { get; init; } = 1;

    /// <summary>K, <c>num_experts_per_tok</c>.</summary>
    public required int NumExpertsPerTok { get; init; }

    /// <summary>L_d, <c>first_k_dense_replace</c>.</summary>
    public int FirstKDenseReplace { get; init; }

    /// <summary><c>norm_topk_prob</c>: normalise the selected weights (V3: true).</summary>
    public bool NormTopkProb { get; init; } = true;

    /// <summary><c>max_position_embeddings</c>.</summary>
    public int MaxPositionEmbeddings { get; init; } = 4096;

    /// <summary><c>rms_norm_eps</c>.</summary>
    public double RmsNormEps { get; init; } = 1e-6;

    /// <summary><c>rope_theta</c>.</summary>
    public double RopeTheta { get; init; } = 10000.0;

    /// <summary><c>rope_scaling</c> when it is YaRN, else <see langword="null"/>.</summary>
    public YarnScaling? RopeScaling { get; init; }

    /// <summary><c>rope_interleave</c> (V3 checkpoints: true; see reference §4.2-4.3).</summary>
    public bool RopeInterleave { get; init; } = true;

    /// <summary><c>num_nextn_predict_layers</c>: MTP depth (0 or 1).</summary>
    public int NumNextnPredictLayers { get; init; }

    /// <summary><c>initializer_range</c>: std of the normal init.</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary><c>bos_token_id</c>.</summary>
    public int? BosTokenId { get; init; }

    /// <summary><c>eos_token_id</c>.</summary>
    public int? EosTokenId { get; init; }

    /// <summary><c>tie_word_embeddings</c> (must be false: V3's head is untied).</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>d_qk = d_n + d_r.</summary>
    public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;

    /// <summary>Whether layer <paramref name="layer"/> (0-based; <see cref="NumHiddenLayers"/> is the MTP block) is MoE.</summary>
    /// <param name="layer">The layer index.</param>
    /// <returns>Whether it is a MoE layer.</returns>
    public bool IsMoeLayer(int layer) => layer >= FirstKDenseReplace;

    /// <summary>Whether q goes through the LoRA path (<c>q_a_proj</c>, <c>q_a_layernorm</c>, <c>q_b_proj</c>).</summary>
    public bool UsesQLora => QLoraRank is > 0;

    /// <summary>Reads and validates a config.json.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The config, or a one-line error naming the file and the keys.</returns>
    public static (DeepSeekV3Config? Config, string? Error) Load(string path)
    {
        if (!File.Exists(path))
        {
            return (null, $"{path}: file not found");
        }

        if (new FileInfo(path).Length > 1 << 20)
        {
            return (null, $"{path}: too large for a config.json ({new FileInfo(path).Length} bytes)");
        }

        var bytes = File.ReadAllBytes(path);
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            return (null, $"{path}: not valid UTF-8");
        }

        try
        {
            using var document = JsonText.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16, AllowTrailingCommas = true });
            var (config, error) = Parse(document.RootElement);
            return (config, error is null ? null : $"{path}: {error}");
        }
        catch (JsonException ex)
        {
            return (null, $"{path}: invalid JSON ({ex.Message.Split(" LineNumber", 2)[0]})");
        }
    }

    /// <summary>Parses and validates a config object.</summary>
    /// <param name="root">The JSON object.</param>
    /// <returns>The config, or a one-line error naming the keys.</returns>
    public static (DeepSeekV3Config? Config, string? Error) Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return (null, "expected a JSON object");
        }

        var errors = new List<string>();
        int Int(string key, int? fallback = null, int min = 1)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                if (fallback is null)
                {
                    errors.Add($"{key} is missing");
                }

                return fallback ?? 0;
            }

            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var i))
            {
                errors.Add($"{key} = {v.GetRawText()}: expected an integer");
                return 0;
            }

            if (i < min)
            {
                errors.Add($"{key} = {i}: expected at least {min}");
            }

            return i;
        }

        double Double(string key, double fallback, double min = double.MinValue)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                return fallback;
            }

            if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || !double.IsFinite(d))
            {
                errors.Add($"{key} = {v.GetRawText()}: expected a number");
                return fallback;
            }

            if (d < min)
            {
                errors.Add($"{key} = {d.ToString(CultureInfo.InvariantCulture)}: expected at least {min.ToString(CultureInfo.InvariantCulture)}");
            }

            return d;
        }

        bool Bool(string key, bool fallback)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                return fallback;
            }

            if (v.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                errors.Add($"{key} = {v.GetRawText()}: expected true or false");
                return fallback;
            }

            return v.GetBoolean();
        }

        int? OptionalInt(string key)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i))
            {
                return i;
            }

            // eos_token_id may be a list in some configs: take the first.
            if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0 && v[0].TryGetInt32(out var first))
            {
                return first;
            }

            errors.Add($"{key} = {v.GetRawText()}: expected an integer or null");
            return null;
        }

        var heads = Int("num_attention_heads");
        if (root.TryGetProperty("num_key_value_heads", out var kvHeads) && kvHeads.ValueKind == JsonValueKind.Number && kvHeads.TryGetInt32(out var kv) && kv != heads)
        {
            errors.Add($"num_key_value_heads = {kv} must equal num_attention_heads = {heads} (MLA has no grouped-query heads)");
        }

        var qLora = OptionalInt("q_lora_rank");
        var config = new DeepSeekV3Config
        {
            VocabSize = Int("vocab_size"),
            HiddenSize = Int("hidden_size"),
            IntermediateSize = Int("intermediate_size"),
            MoeIntermediateSize = Int("moe_intermediate_size"),
            NumHiddenLayers = Int("num_hidden_layers"),
            NumAttentionHeads = heads,
            NSharedExperts = Int("n_shared_experts", 1, min: 0),
            NRoutedExperts = Int("n_routed_experts"),
            RoutedScalingFactor = Double("routed_scaling_factor", 2.5, 0),
            KvLoraRank = Int("kv_lora_rank"),
            QLoraRank = qLora is 0 ? null : qLora,
            QkRopeHeadDim = Int("qk_rope_head_dim"),
            VHeadDim = Int("v_head_dim"),
            QkNopeHeadDim = Int("qk_nope_head_dim"),
            NGroup = Int("n_group", 1),
            TopkGroup = Int("topk_group", 1),
            NumExpertsPerTok = Int("num_experts_per_tok"),
            FirstKDenseReplace = Int("first_k_dense_replace", 0, min: 0),
            NormTopkProb = Bool("norm_topk_prob", true),
            MaxPositionEmbeddings = Int("max_position_embeddings", 4096),
            RmsNormEps = Double("rms_norm_eps", 1e-6, 0),
            RopeTheta = Double("rope_theta", 10000.0, 1),
            RopeInterleave = Bool("rope_interleave", true),
            NumNextnPredictLayers = Int("num_nextn_predict_layers", 0, min: 0),
            InitializerRange = Double("initializer_range", 0.02, 0),
            BosTokenId = OptionalInt("bos_token_id"),
            EosTokenId = OptionalInt("eos_token_id"),
            TieWordEmbeddings = Bool("tie_word_embeddings", false),
            RopeScaling = ParseRopeScaling(root, errors),
        };

        if (errors.Count == 0)
        {
            errors.AddRange(config.Validate());
        }

        return errors.Count == 0 ? (config, null) : (null, string.Join("; ", errors));
    }

    /// <summary>Checks the relations between keys.</summary>
    /// <returns>One message per problem, naming the keys.</returns>
    public IEnumerable<string> Validate()
    {
        if (QLoraRank is < 0)
        {
            yield return $"q_lora_rank = {QLoraRank}: expected null or a positive rank";
        }

        if (NGroup < 1 || NRoutedExperts % NGroup != 0)
        {
            yield return $"n_routed_experts = {NRoutedExperts} must be divisible by n_group = {NGroup}";
        }

        if (TopkGroup > NGroup)
        {
            yield return $"topk_group = {TopkGroup} exceeds n_group = {NGroup}";
        }

        if (NumExpertsPerTok > NRoutedExperts)
        {
            yield return $"num_experts_per_tok = {NumExpertsPerTok} exceeds n_routed_experts = {NRoutedExperts}";
        }
        else if (NGroup > 0 && NumExpertsPerTok > TopkGroup * (NRoutedExperts / NGroup))
        {
            yield return $"num_experts_per_tok = {NumExpertsPerTok} exceeds the experts in topk_group = {TopkGroup} groups of {NRoutedExperts / Math.Max(1, NGroup)}";
        }

        if (NGroup > 1 && NRoutedExperts / NGroup < 2)
        {
            yield return $"n_routed_experts / n_group = {NRoutedExperts / NGroup}: group scores sum the top-2 experts of a group, so each group needs at least 2";
        }

        if (FirstKDenseReplace > NumHiddenLayers)
        {
            yield return $"first_k_dense_replace = {FirstKDenseReplace} exceeds num_hidden_layers = {NumHiddenLayers}";
        }

        if (QkRopeHeadDim % 2 != 0)
        {
            yield return $"qk_rope_head_dim = {QkRopeHeadDim} must be even (RoPE rotates pairs)";
        }

        if (NumNextnPredictLayers > 1)
        {
            yield return $"num_nextn_predict_layers = {NumNextnPredictLayers}: only 0 or 1 MTP module is supported";
        }

        if (TieWordEmbeddings)
        {
            yield return "tie_word_embeddings = true: DeepSeek-V3 has an untied head";
        }

        if (EosTokenId is int eos && (eos < 0 || eos >= VocabSize))
        {
            yield return $"eos_token_id = {eos} is outside vocab_size = {VocabSize}";
        }

        if (BosTokenId is int bos && (bos < 0 || bos >= VocabSize))
        {
            yield return $"bos_token_id = {bos} is outside vocab_size = {VocabSize}";
        }

        // All parameters live in one float[] (ModelWeights): judge the size before anything is allocated.
        var parameters = ParameterLayout.Count(this);
        if (parameters > Array.MaxLength)
        {
            yield return string.Create(CultureInfo.InvariantCulture,
                $"the model has {parameters:N0} parameters ({FormatBytes(parameters * sizeof(float))} as float32); this engine holds at most {Array.MaxLength:N0} (one float[] block): reduce hidden_size, the layers or the experts");
        }
    }

    /// <summary>A byte count for people (decimal units): 640.0 MB, 1.2 GB, 12.3 TB, 8.0 EB.</summary>
    /// <param name="bytes">The byte count.</param>
    /// <returns>The text.</returns>
    public static string FormatBytes(double bytes) =>
        bytes >= 1e18 ? string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e18:0.0} EB")
        : bytes >= 1e15 ? string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e15:0.0} PB")
        : bytes >= 1e12 ? string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e12:0.0} TB")
        : bytes >= 1e9 ? string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e9:0.0} GB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:0.0} MB");

    /// <summary>Writes the config as HF config.json (the keys this class knows plus <c>model_type</c> and <c>architectures</c>).</summary>
    /// <param name="path">The file.</param>
    public void Save(string path)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteStartArray("architectures");
        w.WriteStringValue("DeepseekV3ForCausalLM");
        w.WriteEndArray();
        w.WriteString("model_type", "deepseek_v3");
        w.WriteNumber("vocab_size", VocabSize);
        w.WriteNumber("hidden_size", HiddenSize);
        w.WriteNumber("intermediate_size", IntermediateSize);
        w.WriteNumber("moe_intermediate_size", MoeIntermediateSize);
        w.WriteNumber("num_hidden_layers", NumHiddenLayers);
        w.WriteNumber("num_attention_heads", NumAttentionHeads);
        w.WriteNumber("num_key_value_heads", NumAttentionHeads);
        w.WriteNumber("n_shared_experts", NSharedExperts);
        w.WriteNumber("n_routed_experts", NRoutedExperts);
        w.WriteNumber("routed_scaling_factor", RoutedScalingFactor);
        w.WriteNumber("kv_lora_rank", KvLoraRank);
        if (QLoraRank is int q)
        {
            w.WriteNumber("q_lora_rank", q);
        }
        else
        {
            w.WriteNull("q_lora_rank");
        }

        w.WriteNumber("qk_rope_head_dim", QkRopeHeadDim);
        w.WriteNumber("v_head_dim", VHeadDim);
        w.WriteNumber("qk_nope_head_dim", QkNopeHeadDim);
        w.WriteNumber("n_group", NGroup);
        w.WriteNumber("topk_group", TopkGroup);
        w.WriteNumber("num_experts_per_tok", NumExpertsPerTok);
        w.WriteNumber("first_k_dense_replace", FirstKDenseReplace);
        w.WriteBoolean("norm_topk_prob", NormTopkProb);
        w.WriteString("hidden_act", "silu");
        w.WriteString("scoring_func", "sigmoid");
        w.WriteString("topk_method", "noaux_tc");
        w.WriteNumber("max_position_embeddings", MaxPositionEmbeddings);
        w.WriteNumber("rms_norm_eps", RmsNormEps);
        w.WriteNumber("rope_theta", RopeTheta);
        w.WriteBoolean("rope_interleave", RopeInterleave);
        if (RopeScaling is { } y)
        {
            w.WriteStartObject("rope_scaling");
            w.WriteString("type", "yarn");
            w.WriteNumber("factor", y.Factor);
            w.WriteNumber("original_max_position_embeddings", y.OriginalMaxPositionEmbeddings);
            w.WriteNumber("beta_fast", y.BetaFast);
            w.WriteNumber("beta_slow", y.BetaSlow);
            w.WriteNumber("mscale", y.Mscale);
            w.WriteNumber("mscale_all_dim", y.MscaleAllDim);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("rope_scaling");
        }

        w.WriteNumber("num_nextn_predict_layers", NumNextnPredictLayers);
        w.WriteNumber("initializer_range", InitializerRange);
        if (BosTokenId is int b)
        {
            w.WriteNumber("bos_token_id", b);
        }

        if (EosTokenId is int e)
        {
            w.WriteNumber("eos_token_id", e);
        }

        w.WriteBoolean("tie_word_embeddings", false);
        w.WriteBoolean("attention_bias", false);
        w.WriteEndObject();
    }

    private static YarnScaling? ParseRopeScaling(JsonElement root, List<string> errors)
    {
        if (!root.TryGetProperty("rope_scaling", out var s) || s.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (s.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"rope_scaling = {s.GetRawText()}: expected an object or null");
            return null;
        }

        var type = s.TryGetProperty("type", out var t) ? t.GetString() : s.TryGetProperty("rope_type", out var rt) ? rt.GetString() : null;
        if (type != "yarn")
        {
            errors.Add($"rope_scaling.type = '{type}': only 'yarn' is supported");
            return null;
        }

        double D(string key, double fallback)
        {
            if (!s.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                return fallback;
            }

            if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d))
            {
                errors.Add($"rope_scaling.{key} = {v.GetRawText()}: expected a number");
                return fallback;
            }

            return d;
        }

        var factor = D("factor", double.NaN);
        if (double.IsNaN(factor) || factor < 1)
        {
            errors.Add("rope_scaling.factor is missing or below 1");
        }

        var original = D("original_max_position_embeddings", double.NaN);
        if (double.IsNaN(original) || original < 1)
        {
            errors.Add("rope_scaling.original_max_position_embeddings is missing or below 1");
        }

        return new YarnScaling(factor, double.IsNaN(original) ? 0 : (int)original, D("beta_fast", 32), D("beta_slow", 1), D("mscale", 1), D("mscale_all_dim", 0));
    }
}
