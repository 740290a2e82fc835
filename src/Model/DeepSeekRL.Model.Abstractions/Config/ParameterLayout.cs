namespace DeepSeekRL.Model.Config;

/// <summary>How a parameter is initialised by <c>model init</c>.</summary>
public enum ParameterInit
{
    /// <summary>Normal(0, initializer_range).</summary>
    Normal,

    /// <summary>All ones (norm weights).</summary>
    Ones,

    /// <summary>All zeros (the expert-selection bias, which is not trained by gradients).</summary>
    Zeros,
}

/// <summary>One parameter of the model: its checkpoint name, shape and init.</summary>
/// <param name="Name">The HF checkpoint name.</param>
/// <param name="Shape">The shape ([out, in] for linear weights).</param>
/// <param name="Init">The initialisation.</param>
/// <param name="Trainable">False for <c>e_score_correction_bias</c> (updated by the balancing rule, not by gradients).</param>
public sealed record ParameterSpec(string Name, int[] Shape, ParameterInit Init, bool Trainable = true)
{
    /// <summary>The number of elements.</summary>
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Every parameter of a DeepSeek-V3 model with its HF name and shape (reference doc §13), in a fixed order: the order
/// of the contiguous parameter block and of <c>model init</c>'s random draws. The MTP module (when
/// <c>num_nextn_predict_layers</c> = 1) lives under <c>model.layers.{L}</c> and does not repeat the embedding and
/// head (they are shared with the main model, as in training); checkpoints written by us omit the copies, and the
/// loader accepts them when present.
/// </summary>
public static class ParameterLayout
{
    /// <summary>
    /// The number of parameters of <paramref name="config"/>, in closed form (<see cref="Parameters"/> summed, without
    /// listing them), in <see cref="double"/> so that no size overflows: a config can be judged before anything is allocated.
    /// </summary>
    /// <param name="config">The config.</param>
    /// <returns>The parameter count (exact below 2^53).</returns>
    public static double Count(DeepSeekV3Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        double v = config.VocabSize, d = config.HiddenSize, h = config.NumAttentionHeads;
        double qk = (double)config.QkNopeHeadDim + config.QkRopeHeadDim, kv = config.KvLoraRank;
        var attention = d // input_layernorm
            + (config.UsesQLora ? (double)config.QLoraRank!.Value * (d + 1 + (h * qk)) : h * qk * d)
            + ((kv + config.QkRopeHeadDim) * d) + kv + (h * ((double)config.QkNopeHeadDim + config.VHeadDim) * kv)
            + (d * h * config.VHeadDim) + d; // o_proj, post_attention_layernorm
        double e = config.NRoutedExperts, im = config.MoeIntermediateSize;
        var moe = (e * d) + e + (e * 3 * im * d) + (config.NSharedExperts > 0 ? 3 * config.NSharedExperts * im * d : 0);
        var dense = 3.0 * config.IntermediateSize * d;
        var layers = (double)config.NumHiddenLayers + config.NumNextnPredictLayers;
        var denseLayers = Math.Min(Math.Max(config.FirstKDenseReplace, 0), layers);
        var mtp = config.NumNextnPredictLayers * ((2 * d) + (2 * d * d) + d); // enorm, hnorm, eh_proj, shared_head.norm
        return (2 * v * d) + d + (layers * attention) + (denseLayers * dense) + ((layers - denseLayers) * moe) + mtp;
    }

    /// <summary>Lists the parameters of <paramref name="config"/>.</summary>
    /// <param name="config">The config.</param>
    /// <returns>The parameters in layout order.</returns>
    public static IReadOnlyList<ParameterSpec> Parameters(DeepSeekV3Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int v = config.VocabSize, d = config.HiddenSize, h = config.NumAttentionHeads;
        var list = new List<ParameterSpec> { new("model.embed_tokens.weight", [v, d], ParameterInit.Normal) };
        for (var layer = 0; layer < config.NumHiddenLayers + config.NumNextnPredictLayers; layer++)
        {
            var p = $"model.layers.{layer}.";
            var mtp = layer == config.NumHiddenLayers;
            if (mtp)
            {
                list.Add(new(p + "enorm.weight", [d], ParameterInit.Ones));
                list.Add(new(p + "hnorm.weight", [d], ParameterInit.Ones));
                list.Add(new(p + "eh_proj.weight", [d, 2 * d], ParameterInit.Normal));
            }

            list.Add(new(p + "input_layernorm.weight", [d], ParameterInit.Ones));
            if (config.UsesQLora)
            {
                var rq = config.QLoraRank!.Value;
                list.Add(new(p + "self_attn.q_a_proj.weight", [rq, d], ParameterInit.Normal));
                list.Add(new(p + "self_attn.q_a_layernorm.weight", [rq], ParameterInit.Ones));
                list.Add(new(p + "self_attn.q_b_proj.weight", [h * config.QkHeadDim, rq], ParameterInit.Normal));
            }
            else
            {
                list.Add(new(p + "self_attn.q_proj.weight", [h * config.QkHeadDim, d], ParameterInit.Normal));
            }

            list.Add(new(p + "self_attn.kv_a_proj_with_mqa.weight", [config.KvLoraRank + config.QkRopeHeadDim, d], ParameterInit.Normal));
            list.Add(new(p + "self_attn.kv_a_layernorm.weight", [config.KvLoraRank], ParameterInit.Ones));
            list.Add(new(p + "self_attn.kv_b_proj.weight", [h * (config.QkNopeHeadDim + config.VHeadDim), config.KvLoraRank], ParameterInit.Normal));
            list.Add(new(p + "self_attn.o_proj.weight", [d, h * config.VHeadDim], ParameterInit.Normal));
            list.Add(new(p + "post_attention_layernorm.weight", [d], ParameterInit.Ones));
            if (config.IsMoeLayer(layer))
            {
                int e = config.NRoutedExperts, im = config.MoeIntermediateSize;
                list.Add(new(p + "mlp.gate.weight", [e, d], ParameterInit.Normal));
                list.Add(new(p + "mlp.gate.e_score_correction_bias", [e], ParameterInit.Zeros, Trainable: false));
                for (var x = 0; x < e; x++)
                {
                    list.Add(new($"{p}mlp.experts.{x}.gate_proj.weight", [im, d], ParameterInit.Normal));
                    list.Add(new($"{p}mlp.experts.{x}.up_proj.weight", [im, d], ParameterInit.Normal));
                    list.Add(new($"{p}mlp.experts.{x}.down_proj.weight", [d, im], ParameterInit.Normal));
                }

                if (config.NSharedExperts > 0)
                {
                    var s = config.NSharedExperts * im;
                    list.Add(new(p + "mlp.shared_experts.gate_proj.weight", [s, d], ParameterInit.Normal));
                    list.Add(new(p + "mlp.shared_experts.up_proj.weight", [s, d], ParameterInit.Normal));
                    list.Add(new(p + "mlp.shared_experts.down_proj.weight", [d, s], ParameterInit.Normal));
                }
            }
            else
            {
                int i = config.IntermediateSize;
                list.Add(new(p + "mlp.gate_proj.weight", [i, d], ParameterInit.Normal));
                list.Add(new(p + "mlp.up_proj.weight", [i, d], ParameterInit.Normal));
                list.Add(new(p + "mlp.down_proj.weight", [d, i], ParameterInit.Normal));
            }

            if (mtp)
            {
                list.Add(new(p + "shared_head.norm.weight", [d], ParameterInit.Ones));
            }
        }

        list.Add(new("model.norm.weight", [d], ParameterInit.Ones));
        list.Add(new("lm_head.weight", [v, d], ParameterInit.Normal));
        return list;
    }
}
