using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Layers;
using DeepSeekRL.Model.Weights;
using static TorchSharp.torch.nn;
using static TorchSharp.torch;

namespace DeepSeekRL.Model.TorchSharp;

// DeepSeek-V3 (reference deepseek-v3.md §2-§10) as libtorch operators with autograd. Every parameter is a view of one
// flat leaf tensor laid out exactly as ParameterLayout (the native engine's layout), so weights, gradients and the
// optimizer's moments move between the engines as one copy, and a gradient is compared element for element.
// Training uses full causal attention (naive form, §5.2); generation uses the absorbed latent cache (§5.3), which keeps
// only ĉ (r_kv) and the rotated k_pe (d_r) per position. Routing (top-k) is a constant of the forward (§7.6).

/// <summary>The DeepSeek-V3 model on libtorch: forward, training loss, cached decoding, over a flat parameter tensor.</summary>
public sealed partial class TorchDeepSeekV3 : IDecoder, IDisposable
{
    private readonly DeepSeekV3Config _c;
    private readonly Dictionary<string, (long Offset, long[] Shape)> _index = [];
    private readonly int _d, _h, _dn, _dr, _dv, _dqk, _rkv, _rq, _e, _k, _im;
    private readonly float _eps, _tau;
    private readonly Tensor _cos, _sin;

    /// <summary>Creates the model on <paramref name="device"/> with a copy of <paramref name="weights"/>.</summary>
    /// <param name="weights">The weights (copied).</param>
    /// <param name="device">The device.</param>
    /// <param name="maxPositions">Positions the RoPE tables cover (default: min(max_position_embeddings, 8192)).</param>
    public TorchDeepSeekV3(ModelWeights weights, Device device, int maxPositions = 0)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(device);
        TorchRuntime.EnsureLoaded();
        _c = weights.Config;
        Device = device;
        (_d, _h, _dn, _dr, _dv, _rkv, _e, _k, _im) = (_c.HiddenSize, _c.NumAttentionHeads, _c.QkNopeHeadDim, _c.QkRopeHeadDim, _c.VHeadDim, _c.KvLoraRank, _c.NRoutedExperts, _c.NumExpertsPerTok, _c.MoeIntermediateSize);
        _dqk = _dn + _dr;
        _rq = _c.QLoraRank ?? 0;
        _eps = (float)_c.RmsNormEps;
        long offset = 0;
        var trainable = new float[weights.Data.Length];
        foreach (var spec in weights.Specs)
        {
            _index[spec.Name] = (offset, spec.Shape.Select(x => (long)x).ToArray());
            if (spec.Trainable)
            {
                trainable.AsSpan((int)offset, (int)spec.Count).Fill(1);
            }

            offset += spec.Count;
        }

        Flat = tensor(weights.Data, [weights.Data.LongLength], ScalarType.Float32, device).requires_grad_(true);
        TrainableMask = tensor(trainable, [trainable.LongLength], ScalarType.Float32, device);
        var rope = new Rope(_c, maxPositions > 0 ? maxPositions : Math.Min(_c.MaxPositionEmbeddings, 8192));
        MaxPositions = rope.MaxPositions;
        _tau = rope.SoftmaxScale;
        _cos = tensor(rope.Cos, [rope.MaxPositions, rope.Half], ScalarType.Float32, device);
        _sin = tensor(rope.Sin, [rope.MaxPositions, rope.Half], ScalarType.Float32, device);
    }

    /// <summary>The config.</summary>
    public DeepSeekV3Config Config => _c;

    /// <summary>The device.</summary>
    public Device Device { get; }

    /// <summary>Every parameter in <see cref="ParameterLayout"/> order (a leaf with a gradient).</summary>
    public Tensor Flat { get; }

    /// <summary>1 where the parameter is trainable, 0 elsewhere (the routing biases), laid out as <see cref="Flat"/>.</summary>
    public Tensor TrainableMask { get; }

    /// <summary>Positions the RoPE tables cover.</summary>
    public int MaxPositions { get; }

    /// <summary>When set, each forward records the experts chosen per MoE layer ([N, K] rows, main layers then MTP).</summary>
    public bool RecordRouting { get; set; }

    /// <summary>The experts chosen by the last forward per layer (layer index → [N·K] ids), when <see cref="RecordRouting"/>.</summary>
    public Dictionary<int, long[]> Routing { get; } = [];

    /// <summary>Tokens routed to each expert per MoE layer (layer index → E counts) by the forwards since the last clear.</summary>
    public Dictionary<int, float[]> ExpertLoad { get; } = [];

    /// <summary>Copies weights into <see cref="Flat"/>.</summary>
    /// <param name="data">The weights in layout order.</param>
    public void Load(ReadOnlySpan<float> data)
    {
        if (data.Length != Flat.shape[0])
        {
            throw new ArgumentException($"{data.Length} weights for a layout of {Flat.shape[0]}", nameof(data));
        }

        using var noGrad = no_grad();
        using var source = tensor(data.ToArray(), [data.Length], ScalarType.Float32);
        Flat.copy_(source);
    }

    /// <summary>Copies <see cref="Flat"/> out.</summary>
    /// <param name="data">The destination, laid out as the parameters.</param>
    public void Export(Span<float> data) => Copy(Flat, data);

    /// <summary>Copies a float tensor to host memory.</summary>
    /// <param name="source">The tensor (any device, any shape; contiguous elements in row-major order).</param>
    /// <param name="destination">The destination, of its element count.</param>
    public static void Copy(Tensor source, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(source);
        using var cpu = source.detach().to(ScalarType.Float32).cpu().contiguous();
        cpu.data<float>().CopyTo(destination);
    }

    /// <summary>A parameter as a view of <see cref="Flat"/> (gradients flow into <see cref="Flat"/>).</summary>
    /// <param name="name">The HF name.</param>
    /// <returns>The view.</returns>
    public Tensor P(string name)
    {
        var (offset, shape) = _index.TryGetValue(name, out var entry) ? entry : throw new KeyNotFoundException($"no parameter '{name}'");
        return Flat.narrow(0, offset, shape.Aggregate(1L, (a, b) => a * b)).view(shape);
    }

    /// <summary>Whether the model has a parameter called <paramref name="name"/>.</summary>
    /// <param name="name">The name.</param>
    /// <returns>Whether it exists.</returns>
    public bool Has(string name) => _index.ContainsKey(name);

    /// <summary>
    /// Teacher-forced forward of B equal-length sequences: the final-norm hidden states and logits, and the MTP logits
    /// (position t predicts t+2) when <paramref name="mtp"/> and the model has an MTP module.
    /// </summary>
    /// <param name="tokens">[B, T] int64 token ids.</param>
    /// <param name="mtp">Whether to run the MTP module.</param>
    /// <param name="balance">Per-layer inputs of the sequence-wise balance loss when non-null: (layer, scores [B, T, E], selection [B, T, K]).</param>
    /// <returns>logits [B, T, V], MTP logits [B, T−1, V] or null.</returns>
    public (Tensor Logits, Tensor? MtpLogits) Forward(Tensor tokens, bool mtp = false, List<(Tensor Scores, Tensor Selected)>? balance = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        long b = tokens.shape[0], t = tokens.shape[1];
        if (RecordRouting)
        {
            Routing.Clear();
        }

        ExpertLoad.Clear();
        var positions = arange(t, ScalarType.Int64, Device);
        var h = P("model.embed_tokens.weight").index_select(0, tokens.flatten()).view(b, t, _d);
        for (var l = 0; l < _c.NumHiddenLayers; l++)
        {
            h = Block(l, h, positions, balance);
        }

        var z = RmsNorm(h, P("model.norm.weight"));
        var logits = functional.linear(z, P("lm_head.weight"));
        if (!mtp || _c.NumNextnPredictLayers == 0 || t < 2)
        {
            return (logits, null);
        }

        // §10.3: h' = eh_proj [enorm(Emb(t_{i+1})); hnorm(h⁰_i)], then one more block and the shared head.
        var l0 = _c.NumHiddenLayers;
        var p = $"model.layers.{l0}.";
        var next = P("model.embed_tokens.weight").index_select(0, tokens.narrow(1, 1, t - 1).flatten()).view(b, t - 1, _d);
        var input = cat([RmsNorm(next, P(p + "enorm.weight")), RmsNorm(z.narrow(1, 0, t - 1), P(p + "hnorm.weight"))], -1);
        var hm = Block(l0, functional.linear(input, P(p + "eh_proj.weight")), positions.narrow(0, 0, t - 1), null);
        return (logits, functional.linear(RmsNorm(hm, P(p + "shared_head.norm.weight")), P("lm_head.weight")));
    }

    /// <summary>
    /// The training loss of the native <c>TrainingModel</c>: Σ mask·CE of t+1 / Σ mask, plus W × the MTP cross-entropy of
    /// t+2 (masked mean), plus α × the sequence-wise balance loss (§9.2) summed over the main MoE layers.
    /// </summary>
    /// <param name="tokens">[B, T] int64 tokens.</param>
    /// <param name="mask">[B, T] float target weights (index 0 unused), or null for ones.</param>
    /// <param name="mtpWeight">W.</param>
    /// <param name="balanceAlpha">α.</param>
    /// <returns>The total loss (a scalar with a graph) and the parts as numbers.</returns>
    public (Tensor Loss, double Main, double Mtp, double Balance) TrainingLoss(Tensor tokens, Tensor? mask, float mtpWeight = 0, float balanceAlpha = 0)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        long b = tokens.shape[0], t = tokens.shape[1];
        var weights = mask ?? ones(b, t, ScalarType.Float32, Device);
        var balance = balanceAlpha != 0 ? new List<(Tensor, Tensor)>() : null;
        var (logits, mtpLogits) = Forward(tokens, mtpWeight != 0, balance);
        var main = MaskedCrossEntropy(logits.narrow(1, 0, t - 1), tokens.narrow(1, 1, t - 1), weights.narrow(1, 1, t - 1));
        var loss = main;
        var mtpValue = 0.0;
        if (mtpLogits is not null && t > 2)
        {
            var mtp = MaskedCrossEntropy(mtpLogits.narrow(1, 0, t - 2), tokens.narrow(1, 2, t - 2), weights.narrow(1, 2, t - 2));
            mtpValue = mtp.item<float>();
            loss = loss + (mtpWeight * mtp);
        }

        var balanceValue = 0.0;
        if (balance is { Count: > 0 })
        {
            Tensor? total = null;
            foreach (var (scores, selected) in balance)
            {
                // f_i = E/(K·T) · #(t: i chosen) (constant), P_i = (1/T) Σ_t s_{i,t} / Σ_j s_{j,t}; per sequence, averaged.
                using var counts = zeros(b, _e, ScalarType.Float32, Device);
                var f = counts.scatter_add(1, selected.view(b, -1), ones_like(selected.view(b, -1), ScalarType.Float32)) * ((float)_e / (_k * t));
                var pi = (scores / scores.sum(-1, keepdim: true)).mean([1L]);
                var term = (f.detach() * pi).sum(-1).mean();
                total = total is null ? term : total + term;
            }

            var scaled = total! * balanceAlpha;
            balanceValue = scaled.item<float>();
            loss = loss + scaled;
        }

        return (loss, main.item<float>(), mtpValue, balanceValue);
    }

    /// <summary>Σ w·(−log softmax(z)[y]) / Σ w over [B, T', V] logits, [B, T'] targets and weights.</summary>
    private static Tensor MaskedCrossEntropy(Tensor logits, Tensor targets, Tensor weights)
    {
        var lp = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
        var sum = weights.sum();
        return -(lp * weights).sum() / sum.clamp_min(1e-30);
    }

    // One decoder layer over [B, T, D] with full causal attention (the naive MLA form).
    private Tensor Block(int layer, Tensor h, Tensor positions, List<(Tensor, Tensor)>? balance)
    {
        var p = $"model.layers.{layer}.";
        var x = RmsNorm(h, P(p + "input_layernorm.weight"));
        long b = x.shape[0], t = x.shape[1];
        var (qNope, qPe, cHat, kPe) = Project(p, x, positions.unsqueeze(0).expand(b, t));
        var wkvb = P(p + "self_attn.kv_b_proj.weight").view(_h, _dn + _dv, _rkv);
        var u = wkvb.narrow(1, 0, _dn);
        var wv = wkvb.narrow(1, _dn, _dv);
        var kNope = einsum("hnr,btr->bhtn", u, cHat);
        var v = einsum("hvr,btr->bhtv", wv, cHat);
        // libtorch's fused causal attention (its CPU flash kernel keeps no T x T probabilities for the backward). It
        // scales by 1/sqrt(d_qk); the query carries the rest of τ (YaRN's mscale included).
        var q = cat([qNope, qPe], -1) * (float)(_tau * Math.Sqrt(_dqk));
        var k = cat([kNope, kPe.unsqueeze(1).expand(b, _h, t, _dr)], -1);
        var o = functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        h = h + functional.linear(o.transpose(1, 2).reshape(b, t, _h * _dv), P(p + "self_attn.o_proj.weight"));
        var y = RmsNorm(h, P(p + "post_attention_layernorm.weight"));
        return h + Ffn(layer, y.view(b * t, _d), balance is not null && layer < _c.NumHiddenLayers ? balance : null, b).view(b, t, _d);
    }

    /// <summary>q_nope [B, H, T, d_n], rotated q_pe [B, H, T, d_r], ĉ [B, T, r_kv], rotated k_pe [B, T, d_r] (§5.1).</summary>
    private (Tensor QNope, Tensor QPe, Tensor CHat, Tensor KPe) Project(string p, Tensor x, Tensor positions)
    {
        long b = x.shape[0], t = x.shape[1];
        var q = _rq > 0
            ? functional.linear(RmsNorm(functional.linear(x, P(p + "self_attn.q_a_proj.weight")), P(p + "self_attn.q_a_layernorm.weight")), P(p + "self_attn.q_b_proj.weight"))
            : functional.linear(x, P(p + "self_attn.q_proj.weight"));
        q = q.view(b, t, _h, _dqk).transpose(1, 2);
        var cos = _cos.index_select(0, positions.flatten()).view(b, 1, t, -1);
        var sin = _sin.index_select(0, positions.flatten()).view(b, 1, t, -1);
        var qPe = Rotate(q.narrow(-1, _dn, _dr), cos, sin);
        var a = functional.linear(x, P(p + "self_attn.kv_a_proj_with_mqa.weight"));
        var cHat = RmsNorm(a.narrow(-1, 0, _rkv), P(p + "self_attn.kv_a_layernorm.weight"));
        var kPe = Rotate(a.narrow(-1, _rkv, _dr), cos.squeeze(1), sin.squeeze(1));
        return (q.narrow(-1, 0, _dn), qPe, cHat, kPe);
    }

    /// <summary>RoPE on the last dimension (d_r): interleaved pairs (2i, 2i+1) or rotate-half pairs (j, j + d_r/2) (§4).</summary>
    private Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        if (_c.RopeInterleave)
        {
            var pairs = x.unflatten(x.dim() - 1, [_dr / 2, 2]);
            var a = pairs.select(-1, 0);
            var b = pairs.select(-1, 1);
            return stack([(a * cos) - (b * sin), (a * sin) + (b * cos)], -1).flatten(-2);
        }

        var first = x.narrow(-1, 0, _dr / 2);
        var second = x.narrow(-1, _dr / 2, _dr / 2);
        return cat([(first * cos) - (second * sin), (first * sin) + (second * cos)], -1);
    }

    private Tensor RmsNorm(Tensor x, Tensor w) => w * (x * (x * x).mean([-1L], keepdim: true).add(_eps).rsqrt());

    private static Tensor SwiGlu(Tensor x, Tensor gate, Tensor up, Tensor down) =>
        functional.linear(functional.silu(functional.linear(x, gate)) * functional.linear(x, up), down);

    /// <summary>The FFN of a layer over [N, D] rows: dense SwiGLU, or the MoE (§7).</summary>
    private Tensor Ffn(int layer, Tensor x, List<(Tensor, Tensor)>? balance, long sequences)
    {
        var p = $"model.layers.{layer}.mlp.";
        if (!_c.IsMoeLayer(layer))
        {
            return SwiGlu(x, P(p + "gate_proj.weight"), P(p + "up_proj.weight"), P(p + "down_proj.weight"));
        }

        var n = x.shape[0];
        var scores = functional.linear(x, P(p + "gate.weight")).sigmoid();
        Tensor selected;
        using (no_grad())
        {
            selected = Select(scores.detach() + P(p + "gate.e_score_correction_bias").detach());
        }

        if (RecordRouting)
        {
            using var cpu = selected.cpu();
            Routing[layer] = cpu.data<long>().ToArray();
        }

        balance?.Add((scores.view(sequences, n / sequences, _e), selected.view(sequences, n / sequences, _k)));
        var w = scores.gather(1, selected);
        if (_c.NormTopkProb)
        {
            w = w / w.sum(-1, keepdim: true);
        }

        w = w * (float)_c.RoutedScalingFactor;
        var y = Experts(layer, p, x, selected, w);
        if (_c.NSharedExperts > 0)
        {
            y = y + SwiGlu(x, P(p + "shared_experts.gate_proj.weight"), P(p + "shared_experts.up_proj.weight"), P(p + "shared_experts.down_proj.weight"));
        }

        return y;
    }

    /// <summary>Group-limited top-K over biased scores [N, E] (§7.3): top-2 group sums, −∞ outside the kept groups.</summary>
    private Tensor Select(Tensor biased)
    {
        int groups = _c.NGroup, kept = _c.TopkGroup;
        var n = biased.shape[0];
        if (groups > 1 && kept < groups)
        {
            var size = _e / groups;
            Tensor groupScore;
            if (size >= 2)
            {
                var (top2, _) = biased.view(n, groups, size).topk(2, -1);
                groupScore = top2.sum(-1);
            }
            else
            {
                // One expert per group: its top-2 sum is −∞ (no second), so every group ties and the lowest are kept.
                groupScore = full(n, groups, float.NegativeInfinity, ScalarType.Float32, Device);
            }

            var keep = StableTopK(groupScore, kept);
            var discard = ones(n, groups, ScalarType.Bool, Device).scatter(1, keep, zeros(n, kept, ScalarType.Bool, Device));
            biased = biased.masked_fill(discard.unsqueeze(-1).expand(n, groups, size).reshape(n, _e), float.NegativeInfinity);
        }

        return StableTopK(biased, _k);
    }

    /// <summary>Top-k indices, best first, ties to the lower index (as the native router's repeated argmax).</summary>
    private static Tensor StableTopK(Tensor values, int k)
    {
        // A stable descending sort keeps equal values in index order.
        var (_, order) = values.sort(-1, descending: true, stable: true);
        return order.narrow(-1, 0, k).contiguous();
    }

    /// <summary>
    /// Σ_k w_k · expert_{e_k}(x) for every row, batched by expert: the (row, slot) pairs are sorted by expert once, each
    /// expert runs one SwiGLU on its contiguous rows, and the weighted results are added back in one scatter.
    /// </summary>
    private Tensor Experts(int layer, string p, Tensor x, Tensor selected, Tensor w)
    {
        var n = x.shape[0];
        var flat = selected.flatten();
        var (_, order) = flat.sort(stable: true);
        var rows = order.div(_k, rounding_mode: RoundingMode.floor);
        long[] counts;
        using (var bins = flat.bincount(null, _e).cpu())
        {
            counts = bins.data<long>().ToArray();
        }

        var load = ExpertLoad.TryGetValue(layer, out var held) ? held : ExpertLoad[layer] = new float[_e];
        for (var e = 0; e < _e; e++)
        {
            load[e] += counts[e];
        }

        var xs = x.index_select(0, rows);
        var ws = w.flatten().index_select(0, order).unsqueeze(-1);
        var block = Flat.narrow(0, _index[$"{p}experts.0.gate_proj.weight"].Offset, (long)_e * 3 * _im * _d).view(_e, 3L * _im * _d);
        var outputs = new List<Tensor>();
        long start = 0;
        for (var e = 0; e < _e; e++)
        {
            if (counts[e] == 0)
            {
                continue;
            }

            var weights = block[e];
            var gate = weights.narrow(0, 0, (long)_im * _d).view(_im, _d);
            var up = weights.narrow(0, (long)_im * _d, (long)_im * _d).view(_im, _d);
            var down = weights.narrow(0, 2L * _im * _d, (long)_im * _d).view(_d, _im);
            outputs.Add(SwiGlu(xs.narrow(0, start, counts[e]), gate, up, down));
            start += counts[e];
        }

        var y = zeros(n, _d, ScalarType.Float32, Device);
        return outputs.Count == 0 ? y : y.index_add(0, rows, cat(outputs, 0) * ws, 1);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Flat.Dispose();
        TrainableMask.Dispose();
        _cos.Dispose();
        _sin.Dispose();
    }
}
