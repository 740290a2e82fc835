using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Kernels;
using DeepSeekRL.Model.Layers;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Training;

// The DeepSeek-V3 training forward pass (reference §2-§10) over a batch of B sequences of T tokens with teacher
// forcing: full causal attention per sequence (no KV cache), activations cached for TrainingModel.Backward.cs, and
// the loss = masked mean next-token cross-entropy + W × MTP loss (§10.2). Clarity first (llm.c style); not tuned yet.

/// <summary>
/// Forward and backward of the whole model for training. <see cref="Forward"/> caches what
/// <see cref="Backward"/> needs; backward accumulates into a <see cref="Gradients"/>.
/// </summary>
/// <remarks>
/// Routing (the top-K choice of experts) is made in the forward and treated as a constant in the backward (reference
/// §7.6); <c>e_score_correction_bias</c> gets no gradient. One instance is not thread-safe.
/// </remarks>
public sealed unsafe partial class TrainingModel
{
    // Steps a pooled buffer length may go unused before its buffers are let go.
    private const int PoolKeepSteps = 4;

    // Pooled floats let go (64 MiB) after which one aggressive collection returns the pinned garbage to the system:
    // left to itself the GC found it late, and a run held several steps of dead buffers.
    private const long CollectAfterFloats = 16L << 20;

    private readonly DeepSeekV3Config _c;
    private readonly ModelWeights _weights;
    private readonly float* _w;
    private readonly int _d, _h, _dn, _dr, _dv, _dqk, _rkv, _rq, _v, _e, _k, _im, _inter, _shared;
    private readonly float _eps;
    private readonly Rope _rope;
    private readonly LayerOffsets[] _layers;
    private readonly int _embed, _finalNorm, _head, _threads;

    // Forward state (shapes for N = B·T rows; the MTP module runs on N' = B·(T−1) rows).
    private int _b, _t;
    private int[] _tokens = [];        // (B, T)
    private float[] _mask = [];        // (B, T) weight of the target at each position
    private float _mtpWeight;
    private float _balanceAlpha;
    private float[] _h0 = [];          // (N, D) embeddings
    private BlockCache[] _blocks = []; // per main layer
    private float[] _hL = [];          // (N, D) input of the final norm
    private float[] _rFinal = [];      // (N) its 1/rms
    private float[] _z = [];           // (N, D) final-norm output (also the MTP's h⁰)
    private float[] _logits = [];      // (N, V)
    private float[] _probs = [];       // (N, V) softmax of the rows that have a target (for the CE backward)
    private double _mainCount;
    private MtpCache? _mtp;
    private readonly Dictionary<int, Stack<float[]>> _pool = [];
    private readonly SortedSet<int> _sizes = [];      // the pool's sizes, ascending
    private readonly Dictionary<int, long> _lastUse = [];
    private readonly List<float[]?> _live = [];   // handed out since the last Forward; null once released early
    private long _steps;
    private long _droppedFloats;                   // pooled floats let go since the last collection

    /// <summary>Builds the training model over <paramref name="weights"/> (kept by reference; edits are seen).</summary>
    /// <param name="weights">The weights.</param>
    /// <param name="threads">OpenBLAS threads (process-wide, as <see cref="Inference.TransformerOptions.Threads"/>); default 2.</param>
    public TrainingModel(ModelWeights weights, int threads = 2)
    {
        ArgumentNullException.ThrowIfNull(weights);
        Blas.SetThreads(threads);
        _threads = Math.Max(1, threads);
        _weights = weights;
        _c = weights.Config;
        _w = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(weights.Data));
        (_d, _h, _dn, _dr, _dv, _rkv, _v, _e, _k, _im) = (_c.HiddenSize, _c.NumAttentionHeads, _c.QkNopeHeadDim, _c.QkRopeHeadDim, _c.VHeadDim, _c.KvLoraRank, _c.VocabSize, _c.NRoutedExperts, _c.NumExpertsPerTok, _c.MoeIntermediateSize);
        _dqk = _dn + _dr;
        _rq = _c.QLoraRank ?? 0;
        _inter = _c.IntermediateSize;
        _shared = _c.NSharedExperts * _im;
        _eps = (float)_c.RmsNormEps;
        _rope = new Rope(_c, Math.Min(_c.MaxPositionEmbeddings, 8192));
        _layers = new LayerOffsets[_c.NumHiddenLayers + _c.NumNextnPredictLayers];
        for (var l = 0; l < _layers.Length; l++)
        {
            _layers[l] = Resolve(l);
        }

        _embed = weights.Offset("model.embed_tokens.weight");
        _finalNorm = weights.Offset("model.norm.weight");
        _head = weights.Offset("lm_head.weight");
    }

    /// <summary>The config.</summary>
    public DeepSeekV3Config Config => _c;

    /// <summary>The total loss of the last forward: main + W × MTP.</summary>
    public double Loss { get; private set; }

    /// <summary>The main masked mean next-token cross-entropy of the last forward.</summary>
    public double MainLoss { get; private set; }

    /// <summary>The sequence-wise balance loss of the last forward (already multiplied by α; 0 when off).</summary>
    public double BalanceLoss { get; private set; }

    /// <summary>The MTP cross-entropy (mean over positions with a target t+2) of the last forward; 0 without MTP.</summary>
    public double MtpLoss { get; private set; }

    /// <summary>
    /// Runs the forward pass and caches its activations. Position t of sequence b predicts token t+1 with weight
    /// <c>mask[b, t+1]</c>; the main loss is Σ mask·CE / Σ mask. With <paramref name="mtpWeight"/> &gt; 0 the MTP
    /// module (reference §10.2) predicts t+2 from position t with weight <c>mask[b, t+2]</c>, and the loss adds
    /// W × its masked mean.
    /// </summary>
    /// <param name="tokens">(B, T) token ids, row-major.</param>
    /// <param name="batch">B.</param>
    /// <param name="mask">Optional (B, T) target weights (1 everywhere when empty); index 0 of each row is unused.</param>
    /// <param name="mtpWeight">W, the MTP loss weight (0 skips the MTP module).</param>
    /// <param name="balanceAlpha">
    /// α of the complementary sequence-wise balance loss (reference §9.2; 0 = off, V3 uses 1e-4), summed over the main
    /// model's MoE layers (not the MTP block's) and averaged over the sequences; f uses the actual (biased,
    /// group-limited) selection (§9.2 AMBIGUITY).
    /// </param>
    /// <returns>The loss.</returns>
    public double Forward(ReadOnlySpan<int> tokens, int batch, ReadOnlySpan<float> mask = default, float mtpWeight = 0, float balanceAlpha = 0)
    {
        if (batch < 1 || tokens.Length % batch != 0 || tokens.Length / batch < 2)
        {
            throw new ArgumentException($"{tokens.Length} tokens do not split into {batch} sequences of at least 2", nameof(tokens));
        }

        if (!mask.IsEmpty && mask.Length != tokens.Length)
        {
            throw new ArgumentException("the mask must have one weight per token", nameof(mask));
        }

        if (mtpWeight != 0 && _c.NumNextnPredictLayers == 0)
        {
            throw new InvalidOperationException("the model has no MTP module (num_nextn_predict_layers = 0)");
        }

        RecycleStep();
        _b = batch;
        _t = tokens.Length / batch;
        if (_t > _rope.MaxPositions)
        {
            throw new ArgumentException($"sequences of {_t} tokens exceed the RoPE table ({_rope.MaxPositions})", nameof(tokens));
        }

        _tokens = tokens.ToArray();
        _mask = mask.IsEmpty ? Ones(tokens.Length) : mask.ToArray();
        _mtpWeight = mtpWeight;
        _balanceAlpha = balanceAlpha;
        BalanceLoss = 0;
        int n = _b * _t, b = _b, t = _t;

        // h⁰ = E[token] (reference §2).
        _h0 = AllocUncleared(n * _d);
        for (var i = 0; i < n; i++)
        {
            if ((uint)_tokens[i] >= (uint)_v)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), $"token {_tokens[i]} is outside vocab_size = {_v}");
            }

            new ReadOnlySpan<float>(_w + _embed + (long)_tokens[i] * _d, _d).CopyTo(_h0.AsSpan(i * _d, _d));
        }

        _blocks = new BlockCache[_c.NumHiddenLayers];
        var h = _h0;
        for (var l = 0; l < _c.NumHiddenLayers; l++)
        {
            _blocks[l] = new BlockCache(b, t) { Balance = balanceAlpha != 0 };
            h = BlockForward(_layers[l], _blocks[l], h);
        }

        // z = RMSNorm_final(h); logits = z W_headᵀ (N, V).
        _hL = h;
        _rFinal = AllocUncleared(n);
        _z = AllocUncleared(n * _d);
        RmsForward(_hL, _d, _finalNorm, _d, _z, _d, _rFinal, n);
        _logits = AllocUncleared(n * _v);
        Linear(_logits, _z, _head, n, _d, _v);
        _probs = AllocUncleared(n * _v); // only rows with a target are written and read

        // Row by row on every thread, summed in row order afterwards (the same sum for any thread count).
        var ce = new double[n];
        var logits = _logits;
        var probs = _probs;
        var ids = _tokens;
        var targetMask = _mask;
        ForRows(n, (first, end) =>
        {
            for (var r = first; r < end; r++)
            {
                if (r % t + 1 < t && targetMask[r + 1] != 0)
                {
                    ce[r] = CrossEntropy(logits.AsSpan(r * _v, _v), ids[r + 1], probs.AsSpan(r * _v, _v));
                }
            }
        });
        double sum = 0, count = 0;
        for (var r = 0; r < n; r++)
        {
            var m = r % t + 1 < t ? _mask[r + 1] : 0;
            if (m != 0)
            {
                sum += m * ce[r];
                count += m;
            }
        }

        _mainCount = count;
        MainLoss = count > 0 ? sum / count : 0;
        MtpLoss = mtpWeight != 0 ? MtpForward() : 0;
        _mtp = mtpWeight != 0 ? _mtp : null;
        Loss = MainLoss + mtpWeight * MtpLoss + BalanceLoss;
        return Loss;
    }

    /// <summary>The main logits of the last forward, (B·T, V): row (b, t) is the distribution of token t+1.</summary>
    public ReadOnlySpan<float> Logits => _logits.AsSpan(0, _b * _t * _v);

    /// <summary>log p(t_{i+1} | t_{≤i}) of the last forward, (B, T−1), in double from the float logits.</summary>
    /// <returns>The per-token log-probabilities.</returns>
    public double[] TokenLogProbs()
    {
        var lp = new double[_b * (_t - 1)];
        for (var bi = 0; bi < _b; bi++)
        {
            for (var i = 0; i + 1 < _t; i++)
            {
                lp[bi * (_t - 1) + i] = Ops.LogSoftmaxAt(_logits.AsSpan((bi * _t + i) * _v, _v), _tokens[bi * _t + i + 1]);
            }
        }

        return lp;
    }

    /// <summary>Tokens routed to each expert of an MoE layer in the last forward (E; load statistics, bias update).</summary>
    /// <param name="layer">The layer (num_hidden_layers = the MTP block, when it ran).</param>
    /// <returns>The counts, or an empty array for a dense layer.</returns>
    public int[] ExpertLoad(int layer)
    {
        var c = layer == _c.NumHiddenLayers ? _mtp?.Block : _blocks[layer];
        if (c is null || c.Start.Length == 0)
        {
            return [];
        }

        var load = new int[_e];
        for (var e = 0; e < _e; e++)
        {
            load[e] = c.Start[e + 1] - c.Start[e];
        }

        return load;
    }

    /// <summary>
    /// The auxiliary-loss-free bias update after a step (reference §9.1): for every MoE layer that ran in the last
    /// forward (the MTP block's too), b_e += γ·sign(mean − load_e) with mean = Σ load / E; equality leaves b_e.
    /// </summary>
    /// <param name="gamma">γ, the bias update speed (V3: 0.001).</param>
    /// <remarks>Writes <c>e_score_correction_bias</c> in the weights; it is not a gradient step.</remarks>
    public void UpdateRoutingBias(float gamma)
    {
        for (var l = 0; l < _layers.Length; l++)
        {
            var load = _layers[l].IsMoe && (l < _c.NumHiddenLayers || _mtp is not null) ? ExpertLoad(l) : [];
            if (load.Length == 0)
            {
                continue;
            }

            var bias = new Span<float>(_w + _layers[l].GateBias, _e);
            var counts = new float[_e];
            for (var e = 0; e < _e; e++)
            {
                counts[e] = load[e];
            }

            ExpertLoadBalancing.UpdateBias(counts, bias, gamma);
        }
    }

    /// <summary>The experts chosen for each row of a layer in the last forward (N·K, in selection order; tests compare engines with it).</summary>
    /// <param name="layer">The layer (num_hidden_layers = the MTP block).</param>
    /// <returns>The selections, or an empty array for a dense layer.</returns>
    public int[] Selection(int layer) =>
        layer == _c.NumHiddenLayers ? _mtp?.Block.Sel ?? [] : _blocks[layer].Sel;

    /// <summary>MTP (reference §10.2): row (b, i), i ≤ T−2, takes z[b, i] and Emb(t[b, i+1]) and predicts t[b, i+2].</summary>
    private double MtpForward()
    {
        int b = _b, t = _t, tm = t - 1, n = b * tm;
        var lo = _layers[_c.NumHiddenLayers];
        var m = new MtpCache(b, tm);
        _mtp = m;
        m.Emb = AllocUncleared(n * _d);
        m.Hid = AllocUncleared(n * _d);
        for (var bi = 0; bi < b; bi++)
        {
            for (var i = 0; i < tm; i++)
            {
                var r = bi * tm + i;
                var tok = _tokens[bi * t + i + 1];
                new ReadOnlySpan<float>(_w + _embed + (long)tok * _d, _d).CopyTo(m.Emb.AsSpan(r * _d, _d));
                _z.AsSpan((bi * t + i) * _d, _d).CopyTo(m.Hid.AsSpan(r * _d, _d));
            }
        }

        // h' = M [enorm(Emb); hnorm(h⁰)] — embedding first (reference §10.3). cat (N', 2D).
        m.REmb = AllocUncleared(n);
        m.RHid = AllocUncleared(n);
        m.Cat = AllocUncleared(n * 2 * _d);
        RmsForward(m.Emb, _d, lo.ENorm, _d, m.Cat, 2 * _d, m.REmb, n);
        RmsForward(m.Hid, _d, lo.HNorm, _d, m.Cat.AsSpan(_d), 2 * _d, m.RHid, n);
        m.X = AllocUncleared(n * _d);
        Linear(m.X, m.Cat, lo.EhProj, n, 2 * _d, _d);

        m.Out = BlockForward(lo, m.Block, m.X);
        m.ROut = AllocUncleared(n);
        m.Z = AllocUncleared(n * _d);
        RmsForward(m.Out, _d, lo.SharedHeadNorm, _d, m.Z, _d, m.ROut, n);
        m.Logits = AllocUncleared(n * _v);
        Linear(m.Logits, m.Z, _head, n, _d, _v);
        m.Probs = AllocUncleared(n * _v); // only rows with a target are written and read

        var ce = new double[n];
        var logits = m.Logits;
        var probs = m.Probs;
        var ids = _tokens;
        var targetMask = _mask;
        ForRows(n, (first, end) =>
        {
            for (var r = first; r < end; r++)
            {
                int bi = r / tm, i = r % tm;
                if (i + 2 < t && targetMask[bi * t + i + 2] != 0)
                {
                    ce[r] = CrossEntropy(logits.AsSpan(r * _v, _v), ids[bi * t + i + 2], probs.AsSpan(r * _v, _v));
                }
            }
        });
        double sum = 0, count = 0;
        for (var bi = 0; bi < b; bi++)
        {
            for (var i = 0; i + 2 < t; i++)
            {
                var w = _mask[bi * t + i + 2];
                if (w != 0)
                {
                    sum += w * ce[bi * tm + i];
                    count += w;
                }
            }
        }

        m.Count = count;
        return count > 0 ? sum / count : 0;
    }

    /// <summary>One block (reference §8): h1 = h + MLA(attn_norm(h)); out = h1 + FFN(ffn_norm(h1)).</summary>
    private float[] BlockForward(LayerOffsets lo, BlockCache c, float[] hIn)
    {
        var n = c.N;
        c.HIn = hIn;
        c.RA = AllocUncleared(n);
        c.Xn = AllocUncleared(n * _d);
        RmsForward(hIn, _d, lo.AttnNorm, _d, c.Xn, _d, c.RA, n);
        var u = AllocUncleared(n * _d);
        AttentionForward(lo, c, u);
        c.H1 = AllocUncleared(n * _d);
        TensorPrimitives.Add(hIn.AsSpan(0, n * _d), u.AsSpan(0, n * _d), c.H1);
        c.RF = AllocUncleared(n);
        c.Xf = AllocUncleared(n * _d);
        RmsForward(c.H1, _d, lo.FfnNorm, _d, c.Xf, _d, c.RF, n);
        // The FFN's output: the dense or shared SwiGLU writes it, routed experts add to it (zeros without a shared expert).
        var y = lo.IsMoe && _shared == 0 ? Alloc(n * _d) : AllocUncleared(n * _d);
        if (lo.IsMoe)
        {
            MoeForward(lo, c, y);
        }
        else
        {
            c.Gu = AllocUncleared(n * 2 * _inter);
            c.Hid = AllocUncleared(n * _inter);
            MlpForward(c.Xf, lo.DenseGateUp, lo.DenseDown, _inter, n, c.Gu, c.Hid, y);
        }

        var hOut = AllocUncleared(n * _d);
        TensorPrimitives.Add(c.H1.AsSpan(0, n * _d), y.AsSpan(0, n * _d), hOut);
        return hOut;
    }

    /// <summary>MLA, naive form (reference §5.2): per-head K = [k_nope_h | k_pe], V from W_kvb ĉ; causal softmax(τ Q Kᵀ) V; u = o W_oᵀ.</summary>
    private void AttentionForward(LayerOffsets lo, BlockCache c, float[] u)
    {
        int n = c.N, t = c.T, hq = _h * _dqk, hv = _h * _dv, wa = _rkv + _dr, dnv = _dn + _dv;
        c.Q = AllocUncleared(n * hq);
        if (_rq > 0)
        {
            // c_q = RMSNorm_q(x W_qaᵀ) (N, r_q); q = c_q W_qbᵀ (N, H·d_qk).
            c.Qa = AllocUncleared(n * _rq);
            c.RQ = AllocUncleared(n);
            c.Cq = AllocUncleared(n * _rq);
            Linear(c.Qa, c.Xn, lo.Wqa, n, _d, _rq);
            RmsForward(c.Qa, _rq, lo.QNorm, _rq, c.Cq, _rq, c.RQ, n);
            Linear(c.Q, c.Cq, lo.Wqb, n, _rq, hq);
        }
        else
        {
            Linear(c.Q, c.Xn, lo.Wq, n, _d, hq);
        }

        // a = x W_kvaᵀ (N, r_kv + d_r) = [c_kv | k_pe raw]; ĉ = RMSNorm_kv(c_kv) (N, r_kv).
        c.Kva = AllocUncleared(n * wa);
        Linear(c.Kva, c.Xn, lo.Wkva, n, _d, wa);
        c.RKv = AllocUncleared(n);
        c.Chat = AllocUncleared(n * _rkv);
        RmsForward(c.Kva, wa, lo.KvNorm, _rkv, c.Chat, _rkv, c.RKv, n);
        c.Kvb = AllocUncleared(n * _h * dnv);
        Linear(c.Kvb, c.Chat, lo.Wkvb, n, _rkv, _h * dnv);

        c.K = AllocUncleared(n * hq);
        c.V = AllocUncleared(n * hv);
        Span<float> kpe = stackalloc float[_dr];
        for (var r = 0; r < n; r++)
        {
            var p = r % t;
            c.Kva.AsSpan(r * wa + _rkv, _dr).CopyTo(kpe);
            _rope.Apply(kpe, p);
            for (var h = 0; h < _h; h++)
            {
                _rope.Apply(c.Q.AsSpan(r * hq + h * _dqk + _dn, _dr), p);
                c.Kvb.AsSpan(r * _h * dnv + h * dnv, _dn).CopyTo(c.K.AsSpan(r * hq + h * _dqk, _dn));
                kpe.CopyTo(c.K.AsSpan(r * hq + h * _dqk + _dn, _dr));
                c.Kvb.AsSpan(r * _h * dnv + h * dnv + _dn, _dv).CopyTo(c.V.AsSpan(r * hv + h * _dv, _dv));
            }
        }

        // Per sequence and head: S = τ Q_h K_hᵀ (T, T), causal softmax → P (cached, (B, H, T, T)), O_h = P V_h.
        c.P = AllocUncleared(c.B * _h * t * t); // every row written: the product, then the masked softmax
        c.O = AllocUncleared(n * hv);
        ForEachSequenceHead(c.B, (bi, h) =>
        {
            float* q = Ptr(c.Q), k = Ptr(c.K), v = Ptr(c.V), o = Ptr(c.O);
            var s = Ptr(c.P) + (long)(bi * _h + h) * t * t;
            Blas.GemmNT(t, t, _dqk, q + (long)bi * t * hq + h * _dqk, hq, k + (long)bi * t * hq + h * _dqk, hq, s, t, alpha: _rope.SoftmaxScale);
            for (var i = 0; i < t; i++)
            {
                Ops.MaskedSoftmax(new Span<float>(s + (long)i * t, t), i + 1);
            }

            Blas.GemmNN(t, _dv, t, s, t, v + (long)bi * t * hv + h * _dv, hv, o + (long)bi * t * hv + h * _dv, hv);
        });

        Linear(u, c.O, lo.Wo, n, hv, _d);
    }

    /// <summary>The address of a pinned (POH) buffer.</summary>
    private static float* Ptr(float[] a) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(a));

    /// <summary>DeepSeekMoE (reference §7): shared SwiGLU + Σ_{e∈S} w_e SwiGLU_e, routed experts on gathered rows.</summary>
    private void MoeForward(LayerOffsets lo, BlockCache c, float[] y)
    {
        var n = c.N;
        c.Logits = AllocUncleared(n * _e);
        Linear(c.Logits, c.Xf, lo.Gate, n, _d, _e);
        c.Sel = new int[n * _k];
        c.W = AllocUncleared(n * _k);
        c.S = AllocUncleared(n * _k);
        c.Sum = AllocUncleared(n);
        var biasAt = (nint)(_w + lo.GateBias);
        ForRows(n, (first, end) =>
        {
            var bias = new ReadOnlySpan<float>((float*)biasAt, _e);
            for (var r = first; r < end; r++)
            {
                var logits = c.Logits.AsSpan(r * _e, _e);
                MoeRouter.Route(logits, bias, _c.NGroup, _c.TopkGroup, (float)_c.RoutedScalingFactor, _c.NormTopkProb, c.Sel.AsSpan(r * _k, _k), c.W.AsSpan(r * _k, _k));
                float sum = 0;
                for (var j = 0; j < _k; j++)
                {
                    var s = 1f / (1f + MathF.Exp(-logits[c.Sel[r * _k + j]]));
                    c.S[r * _k + j] = s;
                    sum += s;
                }

                c.Sum[r] = sum;
            }
        });

        if (c.Balance)
        {
            BalanceForward(c);
        }

        // Group the N·K assignments by expert: Rows[Start[e] .. Start[e+1]) = row·K + slot.
        c.Start = new int[_e + 1];
        foreach (var e in c.Sel)
        {
            c.Start[e + 1]++;
        }

        for (var e = 0; e < _e; e++)
        {
            c.Start[e + 1] += c.Start[e];
        }

        c.Rows = new int[n * _k];
        var fill = c.Start[..^1];
        for (var a = 0; a < n * _k; a++)
        {
            c.Rows[fill[c.Sel[a]]++] = a;
        }

        // Per expert: X_e (n_e, D) gathered, GU = X_e W_guᵀ (n_e, 2I_m), Hid (n_e, I_m), Y_e = Hid W_downᵀ (n_e, D).
        c.Xg = AllocUncleared(n * _k * _d);
        c.EGu = AllocUncleared(n * _k * 2 * _im);
        c.EHid = AllocUncleared(n * _k * _im);
        c.EY = AllocUncleared(n * _k * _d);
        ForRows(n * _k, (first, end) =>
        {
            for (var a = first; a < end; a++)
            {
                c.Xf.AsSpan(c.Rows[a] / _k * _d, _d).CopyTo(c.Xg.AsSpan(a * _d, _d));
            }
        });

        ForEachExpert(e =>
        {
            int s0 = c.Start[e], ne = c.Start[e + 1] - s0;
            if (ne == 0)
            {
                return;
            }

            var gu = lo.Experts + (long)e * 3 * _im * _d;
            fixed (float* x = c.Xg, g = c.EGu, hid = c.EHid, ye = c.EY)
            {
                Blas.GemmNT(ne, 2 * _im, _d, x + (long)s0 * _d, _d, _w + gu, _d, g + (long)s0 * 2 * _im, 2 * _im);
                for (var i = 0; i < ne; i++)
                {
                    var row = new ReadOnlySpan<float>(g + (long)(s0 + i) * 2 * _im, 2 * _im);
                    Ops.SiluMul(row[.._im], row[_im..], new Span<float>(hid + (long)(s0 + i) * _im, _im));
                }

                Blas.GemmNT(ne, _d, _im, hid + (long)s0 * _im, _im, _w + gu + 2L * _im * _d, _im, ye + (long)s0 * _d, _d);
            }
        });

        if (_shared > 0)
        {
            c.Gu = AllocUncleared(n * 2 * _shared);
            c.Hid = AllocUncleared(n * _shared);
            MlpForward(c.Xf, lo.SharedGateUp, lo.SharedDown, _shared, n, c.Gu, c.Hid, y);
        }

        for (var a = 0; a < n * _k; a++)
        {
            var src = c.Rows[a];
            var r = src / _k;
            TensorPrimitives.MultiplyAdd(c.EY.AsSpan(a * _d, _d), c.W[src], y.AsSpan(r * _d, _d), y.AsSpan(r * _d, _d));
        }
    }

    /// <summary>
    /// L_Bal = α Σ_i f_i P_i per sequence (reference §9.2), f_i = E/(K·T) · #(t: i chosen), P_i = (1/T) Σ_t s_{i,t}/Z_t
    /// with Z_t = Σ_j s_{j,t}; added to <see cref="BalanceLoss"/> averaged over the sequences. Keeps f (B, E).
    /// </summary>
    private void BalanceForward(BlockCache c)
    {
        int t = c.T;
        c.F = Alloc(c.B * _e);
        Span<double> p = stackalloc double[_e];
        double total = 0;
        for (var bi = 0; bi < c.B; bi++)
        {
            var f = c.F.AsSpan(bi * _e, _e);
            p.Clear();
            for (var i = 0; i < t; i++)
            {
                var r = bi * t + i;
                foreach (var e in c.Sel.AsSpan(r * _k, _k))
                {
                    f[e] += (float)_e / (_k * t);
                }

                double z = 0;
                for (var e = 0; e < _e; e++)
                {
                    z += Sigmoid(c.Logits[r * _e + e]);
                }

                for (var e = 0; e < _e; e++)
                {
                    p[e] += Sigmoid(c.Logits[r * _e + e]) / z / t;
                }
            }

            for (var e = 0; e < _e; e++)
            {
                total += f[e] * p[e];
            }
        }

        BalanceLoss += _balanceAlpha * total / c.B;
    }

    /// <summary>−log softmax(logits)[target]; writes softmax(logits) into <paramref name="probs"/> (vectorised exp).</summary>
    private static double CrossEntropy(ReadOnlySpan<float> logits, int target, Span<float> probs)
    {
        var max = TensorPrimitives.Max(logits);
        logits.CopyTo(probs);
        var sum = Ops.ExpSubtractSum(probs, max);
        TensorPrimitives.Multiply(probs, 1f / sum, probs);
        return Math.Log(sum) + max - logits[target];
    }

    private static double Sigmoid(float x) => 1 / (1 + Math.Exp(-x));

    /// <summary>SwiGLU (reference §6): y = (silu(x W_gᵀ) ⊙ x W_uᵀ) W_dᵀ; gate and up are adjacent in the layout.</summary>
    private void MlpForward(float[] x, int gateUp, int down, int width, int n, float[] gu, float[] hid, float[] y)
    {
        Linear(gu, x, gateUp, n, _d, 2 * width);
        ForRows(n, (first, end) =>
        {
            for (var r = first; r < end; r++)
            {
                var row = gu.AsSpan(r * 2 * width, 2 * width);
                Ops.SiluMul(row[..width], row[width..], hid.AsSpan(r * width, width));
            }
        });

        Linear(y, hid, down, n, width, _d);
    }

    /// <summary>y (n, out) = x (n, in) · W[out, in]ᵀ.</summary>
    private void Linear(Span<float> y, ReadOnlySpan<float> x, int w, int n, int inputs, int outputs)
    {
        fixed (float* py = y, px = x)
        {
            Blas.GemmNT(n, outputs, inputs, px, inputs, _w + w, inputs, py, outputs);
        }
    }

    /// <summary>Row-wise RMSNorm (reference §3) of width <paramref name="width"/> with strides; keeps 1/rms per row.</summary>
    private void RmsForward(ReadOnlySpan<float> x, int ldx, int w, int width, Span<float> y, int ldy, Span<float> r, int rows)
    {
        fixed (float* px = x, py = y, pr = r)
        {
            // Row by row on the training's threads (each row's arithmetic the same wherever it runs).
            nint xAt = (nint)px, yAt = (nint)py, rAt = (nint)pr, weightAt = (nint)(_w + w);
            ForRows(rows, (first, end) =>
            {
                var weight = new ReadOnlySpan<float>((float*)weightAt, width);
                for (var i = first; i < end; i++)
                {
                    var xi = new ReadOnlySpan<float>((float*)xAt + ((long)i * ldx), width);
                    var ri = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xi) / width + _eps);
                    ((float*)rAt)[i] = ri;
                    var yi = new Span<float>((float*)yAt + ((long)i * ldy), width);
                    TensorPrimitives.Multiply(xi, ri, yi);
                    TensorPrimitives.Multiply(yi, weight, yi);
                }
            });
        }
    }

    private static float[] Ones(int length)
    {
        var a = new float[length];
        a.AsSpan().Fill(1f);
        return a;
    }

    private LayerOffsets Resolve(int layer)
    {
        var p = $"model.layers.{layer}.";
        int W(string name) => _weights.Offset(name);
        int Optional(string name) => _weights.Contains(name) ? W(name) : -1;
        var moe = _c.IsMoeLayer(layer);
        var mtp = layer == _c.NumHiddenLayers;
        return new LayerOffsets
        {
            IsMoe = moe,
            AttnNorm = W(p + "input_layernorm.weight"),
            Wqa = Optional(p + "self_attn.q_a_proj.weight"),
            QNorm = Optional(p + "self_attn.q_a_layernorm.weight"),
            Wqb = Optional(p + "self_attn.q_b_proj.weight"),
            Wq = Optional(p + "self_attn.q_proj.weight"),
            Wkva = W(p + "self_attn.kv_a_proj_with_mqa.weight"),
            KvNorm = W(p + "self_attn.kv_a_layernorm.weight"),
            Wkvb = W(p + "self_attn.kv_b_proj.weight"),
            Wo = W(p + "self_attn.o_proj.weight"),
            FfnNorm = W(p + "post_attention_layernorm.weight"),
            DenseGateUp = moe ? -1 : W(p + "mlp.gate_proj.weight"),
            DenseDown = moe ? -1 : W(p + "mlp.down_proj.weight"),
            Gate = moe ? W(p + "mlp.gate.weight") : -1,
            GateBias = moe ? W(p + "mlp.gate.e_score_correction_bias") : -1,
            Experts = moe ? W(p + "mlp.experts.0.gate_proj.weight") : -1,
            SharedGateUp = moe ? Optional(p + "mlp.shared_experts.gate_proj.weight") : -1,
            SharedDown = moe ? Optional(p + "mlp.shared_experts.down_proj.weight") : -1,
            ENorm = mtp ? W(p + "enorm.weight") : -1,
            HNorm = mtp ? W(p + "hnorm.weight") : -1,
            EhProj = mtp ? W(p + "eh_proj.weight") : -1,
            SharedHeadNorm = mtp ? W(p + "shared_head.norm.weight") : -1,
        };
    }

    /// <summary>Offsets of one layer's parameters in the block (the same in <see cref="Gradients.Data"/>); −1 when absent.</summary>
    private readonly record struct LayerOffsets
    {
        public bool IsMoe { get; init; }

        public int AttnNorm { get; init; }

        public int Wqa { get; init; }

        public int QNorm { get; init; }

        public int Wqb { get; init; }

        public int Wq { get; init; }

        public int Wkva { get; init; }

        public int KvNorm { get; init; }

        public int Wkvb { get; init; }

        public int Wo { get; init; }

        public int FfnNorm { get; init; }

        public int DenseGateUp { get; init; }

        public int DenseDown { get; init; }

        public int Gate { get; init; }

        public int GateBias { get; init; }

        public int Experts { get; init; }

        public int SharedGateUp { get; init; }

        public int SharedDown { get; init; }

        public int ENorm { get; init; }

        public int HNorm { get; init; }

        public int EhProj { get; init; }

        public int SharedHeadNorm { get; init; }
    }

    /// <summary>The activations one block caches for its backward, for B sequences of T rows (N = B·T).</summary>
    private sealed class BlockCache(int b, int t)
    {
        public int B { get; } = b;

        public int T { get; } = t;

        public int N => B * T;

        public float[] HIn = [], RA = [], Xn = [];                 // (N, D), (N), (N, D)
        public float[] Qa = [], RQ = [], Cq = [], Q = [];          // (N, r_q), (N), (N, r_q), (N, H·d_qk) after RoPE
        public float[] Kva = [], RKv = [], Chat = [], Kvb = [];    // (N, r_kv + d_r) raw, (N), (N, r_kv), (N, H·(d_n + d_v))
        public float[] K = [], V = [], P = [], O = [];             // (N, H·d_qk), (N, H·d_v), (B, H, T, T), (N, H·d_v)
        public float[] H1 = [], RF = [], Xf = [];                  // (N, D), (N), (N, D)
        public float[] Gu = [], Hid = [];                          // dense or shared: (N, 2I), (N, I)
        public float[] Logits = [], W = [], S = [], Sum = [];      // (N, E), (N, K) weights, (N, K) σ of the chosen, (N) Σ σ
        public int[] Sel = [], Start = [], Rows = [];              // (N, K), (E + 1), (N·K) assignments by expert
        public bool Balance;                                       // whether the sequence-wise balance loss applies
        public float[] F = [];                                     // (B, E) f_i of the balance loss
        public float[] Xg = [], EGu = [], EHid = [], EY = [];      // by assignment: (N·K, D), (N·K, 2I_m), (N·K, I_m), (N·K, D)
    }

    /// <summary>The MTP module's activations (N' = B·(T−1) rows).</summary>
    private sealed class MtpCache(int b, int t)
    {
        public BlockCache Block { get; } = new(b, t);

        public float[] Emb = [], Hid = [], REmb = [], RHid = [], Cat = [], X = []; // (N', D) ×2, (N') ×2, (N', 2D), (N', D)
        public float[] Out = [], ROut = [], Z = [], Logits = [], Probs = [];       // (N', D), (N'), (N', D), (N', V) ×2
        public double Count;
    }
}
