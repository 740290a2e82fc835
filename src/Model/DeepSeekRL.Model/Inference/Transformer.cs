using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Kernels;
using DeepSeekRL.Model.Layers;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Inference;

// The DeepSeek-V3 inference forward pass over a flat list of token rows, each with its own (slot, position), through
// the KV cache (reference §2-§8, §10): prefill, decode, batched decode of different lengths and multi-token
// verification are the same call. It is inference only: it keeps no activations for a backward pass.

/// <summary>How attention reads the latent cache.</summary>
internal enum LatentAttentionForm
{
    /// <summary>W_kvb folded into the query and output (decode).</summary>
    Absorbed,

    /// <summary>The context expanded to per-head K and V once per call (prefill).</summary>
    Expanded,
}

/// <summary>Sizes of the <see cref="Transformer"/> workspace.</summary>
public sealed class TransformerOptions
{
    /// <summary>Rows (tokens) processed per internal chunk; larger calls are split. Default 2048, at least 1.</summary>
    public int MaxRows { get; init; } = 2048;

    /// <summary>Positions of the RoPE table; default <c>max_position_embeddings</c> capped at 8192.</summary>
    public int? MaxPositions { get; init; }

    /// <summary>OpenBLAS threads (process-wide); default 2.</summary>
    public int Threads { get; init; } = 2;
}

/// <summary>
/// The model forward pass on the latent (absorbed) or naive KV cache. One instance owns one workspace: it is not
/// thread-safe, and decode steps allocate nothing.
/// </summary>
/// <remarks>
/// Rows of one call must be grouped by slot, with consecutive increasing positions inside a slot; a row at position p
/// attends to cache positions 0 … p of its slot (the general causal mask of reference §5.4), so earlier positions must
/// already be in the cache (written by this call or an earlier one).
/// </remarks>
public sealed unsafe partial class Transformer : IDecoder
{
    private const int QueryChunk = 128;
    private readonly DeepSeekV3Config _c;
    private readonly ModelWeights _weights;
    private readonly float* _w;
    private readonly int _maxRows;
    private readonly LayerPointers[] _layers;
    private readonly int _d, _h, _dn, _dr, _dv, _dqk, _rkv, _rq, _v, _e, _k, _im;
    private readonly float _eps;

    // Workspace (pinned), shapes per row chunk of N ≤ MaxRows rows.
    private readonly float[] _x;        // (N, D) residual stream
    private readonly float[] _xn;       // (N, D) normed input of a sub-block
    private readonly float[] _qa;       // (N, r_q) q LoRA latent
    private readonly float[] _q;        // (N, H, d_qk) queries
    private readonly float[] _kva;      // (N, r_kv + d_r) [c_kv | k_pe]
    private readonly float[] _kvb;      // (N, H, d_n + d_v) naive: per-head k_nope and v of the new rows
    private readonly float[] _qabs;     // (N, H, r_kv + d_r) absorb: [U_hᵀ q_nope_h | q_pe_h]
    private readonly float[] _oabs;     // (N, H, r_kv) absorb: Σ_j P ĉ_j
    private readonly float[] _o;        // (N, H·d_v) attention output before W_o
    private readonly float[] _router;   // (N, E) router logits
    private readonly int[] _sel;        // (N, K) selected experts
    private readonly float[] _selW;     // (N, K) their weights
    private readonly int[] _expertCount;  // (E)
    private readonly int[] _expertStart;  // (E + 1)
    private readonly int[] _expertRows;   // (N·K) row·K + slot, grouped by expert
    private readonly float[] _yAssign;  // (N·K, D) expert outputs, in the experts' sorted assignment order
    private readonly WorkerBuffers[] _workers; // per thread: gathered rows and the SwiGLU intermediates
    private readonly float[] _gather;   // (N, D) rows gathered for the head
    private float[] _scoresGrown;       // (QueryChunk·H, maxLen) scores, then probabilities
    private float[] _expanded;          // (maxLen, H, d_n + d_v) a slot's latent context expanded (prefill)
    private float[][] _headScores;      // per head (QueryChunk, maxLen): scores when heads run in parallel (prefill)
    private readonly int[] _rowPositions;  // (N) positions of the current chunk, for parallel workers
    private readonly int _threads;

    /// <summary>Builds the forward pass over <paramref name="weights"/>.</summary>
    /// <param name="weights">The weights (kept by reference; later edits are seen).</param>
    /// <param name="options">Workspace sizes and threads.</param>
    public Transformer(ModelWeights weights, TransformerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        options ??= new TransformerOptions();
        _weights = weights;
        _c = weights.Config;
        Blas.SetThreads(options.Threads);
        _w = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(weights.Data));
        _maxRows = Math.Max(1, options.MaxRows);
        (_d, _h, _dn, _dr, _dv, _rkv, _v, _e, _k, _im) = (_c.HiddenSize, _c.NumAttentionHeads, _c.QkNopeHeadDim, _c.QkRopeHeadDim, _c.VHeadDim, _c.KvLoraRank, _c.VocabSize, _c.NRoutedExperts, _c.NumExpertsPerTok, _c.MoeIntermediateSize);
        _dqk = _dn + _dr;
        _rq = _c.QLoraRank ?? 0;
        _eps = (float)_c.RmsNormEps;
        Rope = new Rope(_c, options.MaxPositions ?? Math.Min(_c.MaxPositionEmbeddings, 8192));

        _layers = new LayerPointers[_c.NumHiddenLayers + _c.NumNextnPredictLayers];
        for (var l = 0; l < _layers.Length; l++)
        {
            _layers[l] = Resolve(l);
        }

        var n = _maxRows;
        var ffn = Math.Max(_c.IntermediateSize, Math.Max(_c.NSharedExperts * _im, _im));
        _x = Pinned(n * _d);
        _xn = Pinned(n * _d);
        _qa = Pinned(n * Math.Max(_rq, 1));
        _q = Pinned(n * _h * _dqk);
        _kva = Pinned(n * (_rkv + _dr));
        _kvb = Pinned(n * _h * (_dn + _dv));
        _qabs = Pinned(n * _h * (_rkv + _dr));
        _oabs = Pinned(n * _h * _rkv);
        _o = Pinned(n * _h * _dv);
        _scoresGrown = Pinned(QueryChunk * _h * 256);
        _expanded = Pinned(1);
        _headScores = [];
        _rowPositions = new int[n];
        _threads = Math.Max(1, options.Threads);
        _workers = new WorkerBuffers[_threads];
        for (var w = 0; w < _threads; w++)
        {
            // Worker 0 also serves the dense FFN, the shared experts and the MTP concat (2D wide).
            _workers[w] = new WorkerBuffers(Pinned(n * _d), Pinned(n * 2 * (w == 0 ? Math.Max(ffn, _d) : _im)), Pinned(n * (w == 0 ? ffn : _im)));
        }

        _router = Pinned(n * _e);
        _sel = new int[n * _k];
        _selW = Pinned(n * _k);
        _expertCount = new int[_e];
        _expertStart = new int[_e + 1];
        _expertRows = new int[n * _k];
        _yAssign = Pinned(n * _k * _d);
        _gather = Pinned(n * _d);
    }

    /// <summary>The config.</summary>
    public DeepSeekV3Config Config => _c;

    /// <summary>The weights.</summary>
    public ModelWeights Weights => _weights;

    /// <summary>The RoPE tables and softmax scale.</summary>
    public Rope Rope { get; }

    /// <summary>Forces one attention form on the latent cache (tests); <see langword="null"/> = the cheaper one.</summary>
    internal LatentAttentionForm? LatentForm { get; set; }

    /// <summary>Rows per internal chunk.</summary>
    public int MaxRows => _maxRows;

    /// <inheritdoc/>
    public int MaxPositions => Rope.MaxPositions;

    /// <inheritdoc/>
    public IDecodingCache CreateDecodingCache(KvCacheKind kind, int slots, int maxLength) => CreateCache(kind, slots, maxLength);

    /// <inheritdoc/>
    public void Decode(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, IDecodingCache cache, ReadOnlySpan<int> logitRows, Span<float> logits) =>
        Forward(tokens, positions, slots, (KvCache)cache, logitRows, logits);

    /// <summary>Allocates a cache for the main model (<c>num_hidden_layers</c> layers).</summary>
    /// <param name="kind">The cache kind.</param>
    /// <param name="slots">Sequences.</param>
    /// <param name="maxLength">Positions per sequence (at most the RoPE table's).</param>
    /// <returns>The cache.</returns>
    public KvCache CreateCache(KvCacheKind kind, int slots, int maxLength)
    {
        _ = Scores(QueryChunk * _h * CheckLength(maxLength)); // grow the score buffer now, not during decode
        return new(kind, _c.NumHiddenLayers, slots, maxLength, KvCache.EntryValues(_c, kind));
    }

    /// <summary>Allocates a cache for the MTP block (one layer).</summary>
    /// <param name="kind">The cache kind.</param>
    /// <param name="slots">Sequences.</param>
    /// <param name="maxLength">Positions per sequence.</param>
    /// <returns>The cache.</returns>
    public KvCache CreateMtpCache(KvCacheKind kind, int slots, int maxLength)
    {
        if (_c.NumNextnPredictLayers == 0)
        {
            throw new InvalidOperationException("the model has no MTP module (num_nextn_predict_layers = 0)");
        }

        _ = Scores(QueryChunk * _h * CheckLength(maxLength));
        return new(kind, 1, slots, maxLength, KvCache.EntryValues(_c, kind));
    }

    /// <summary>
    /// Runs the main model on <paramref name="tokens"/>: writes their cache entries, and produces logits for the rows
    /// listed in <paramref name="logitRows"/> and, optionally, the final-norm hidden state of every row (the MTP input).
    /// </summary>
    /// <param name="tokens">Token ids (N).</param>
    /// <param name="positions">Absolute positions (N).</param>
    /// <param name="slots">Cache slots (N), grouped, positions consecutive inside a slot.</param>
    /// <param name="cache">The main cache.</param>
    /// <param name="logitRows">Row indices (ascending) that need logits.</param>
    /// <param name="logits">(logitRows.Length, V) output.</param>
    /// <param name="hidden">Optional (N, D) output: RMSNorm_final(h) of every row.</param>
    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, KvCache cache, ReadOnlySpan<int> logitRows, Span<float> logits, Span<float> hidden = default)
    {
        ArgumentNullException.ThrowIfNull(cache);
        Check(tokens.Length, positions, slots, cache, _c.NumHiddenLayers);
        var done = 0;
        var logitDone = 0;
        while (done < tokens.Length)
        {
            var n = Math.Min(_maxRows, tokens.Length - done);
            Embed(tokens.Slice(done, n), _x);
            for (var l = 0; l < _c.NumHiddenLayers; l++)
            {
                Block(l, n, positions.Slice(done, n), slots.Slice(done, n), cache, l);
            }

            var used = FinalNormAndHead(n, done, _layers[0].FinalNorm, logitRows, logitDone, logits, hidden);
            logitDone += used;
            done += n;
        }
    }

    /// <summary>
    /// Runs the MTP module (reference §10): row i takes the main model's final-norm hidden state at its position and
    /// the embedding of the next token, and predicts the token after that.
    /// </summary>
    /// <param name="nextTokens">t_{p+1} for each row (N).</param>
    /// <param name="mainHidden">(N, D) the main model's final-norm hidden state at position p.</param>
    /// <param name="positions">p for each row (N).</param>
    /// <param name="slots">Cache slots (N).</param>
    /// <param name="mtpCache">The MTP block's cache.</param>
    /// <param name="logitRows">Row indices (ascending) that need logits.</param>
    /// <param name="logits">(logitRows.Length, V) output: the distribution of t_{p+2}.</param>
    public void ForwardMtp(ReadOnlySpan<int> nextTokens, ReadOnlySpan<float> mainHidden, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, KvCache mtpCache, ReadOnlySpan<int> logitRows, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(mtpCache);
        if (_c.NumNextnPredictLayers == 0)
        {
            throw new InvalidOperationException("the model has no MTP module (num_nextn_predict_layers = 0)");
        }

        Check(nextTokens.Length, positions, slots, mtpCache, 1);
        var lp = _layers[_c.NumHiddenLayers];
        var done = 0;
        var logitDone = 0;
        while (done < nextTokens.Length)
        {
            var n = Math.Min(_maxRows, nextTokens.Length - done);

            // h' = M [enorm(Emb(t)); hnorm(h⁰)] — embedding first (reference §10.3). worker 0's GateUp holds the (N, 2D) concat.
            Embed(nextTokens.Slice(done, n), _xn);
            var cat = _workers[0].GateUp.AsSpan(0, n * 2 * _d); // (N, 2D)
            for (var i = 0; i < n; i++)
            {
                Ops.RmsNorm(_xn.AsSpan(i * _d, _d), Span(lp.ENorm, _d), _eps, cat.Slice(i * 2 * _d, _d));
                Ops.RmsNorm(mainHidden.Slice((done + i) * _d, _d), Span(lp.HNorm, _d), _eps, cat.Slice(i * 2 * _d + _d, _d));
            }

            Blas.GemmNT(n, _d, 2 * _d, Ptr(_workers[0].GateUp), 2 * _d, lp.EhProj, 2 * _d, Ptr(_x), _d);

            Block(_c.NumHiddenLayers, n, positions.Slice(done, n), slots.Slice(done, n), mtpCache, 0);
            logitDone += FinalNormAndHead(n, done, lp.SharedHeadNorm, logitRows, logitDone, logits, default);
            done += n;
        }
    }

    private static float[] Pinned(int length) => GC.AllocateArray<float>(Math.Max(1, length), pinned: true);

    private static float* Ptr(float[] array) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));

    private static Span<float> Span(float* p, int length) => new(p, length);

    private int CheckLength(int maxLength) =>
        maxLength < 1 || maxLength > Rope.MaxPositions
            ? throw new ArgumentOutOfRangeException(nameof(maxLength), $"{maxLength} positions: the RoPE table holds {Rope.MaxPositions} (max_position_embeddings)")
            : maxLength;

    private void Check(int n, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, KvCache cache, int layers)
    {
        if (positions.Length != n || slots.Length != n)
        {
            throw new ArgumentException("tokens, positions and slots must have the same length");
        }

        if (cache.Layers != layers || cache.EntryWidth != KvCache.EntryValues(_c, cache.Kind))
        {
            throw new ArgumentException("the cache was made for another model or module", nameof(cache));
        }

        for (var i = 0; i < n; i++)
        {
            if ((uint)slots[i] >= (uint)cache.Slots || (uint)positions[i] >= (uint)cache.MaxLength)
            {
                throw new ArgumentOutOfRangeException(nameof(positions), $"row {i}: slot {slots[i]} position {positions[i]} is outside the cache ({cache.Slots} x {cache.MaxLength})");
            }

            if (i > 0 && slots[i] == slots[i - 1] && positions[i] != positions[i - 1] + 1)
            {
                throw new ArgumentException($"row {i}: positions inside a slot must be consecutive", nameof(positions));
            }
        }
    }

    /// <summary>h⁰ = E_tok[token] (reference §2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Embed(ReadOnlySpan<int> tokens, float[] destination)
    {
        var table = _w + _weights.Offset("model.embed_tokens.weight");
        for (var i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)_v)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), $"token {tokens[i]} is outside vocab_size = {_v}");
            }

            Span(table + (long)tokens[i] * _d, _d).CopyTo(destination.AsSpan(i * _d, _d));
        }
    }

    /// <summary>z = RMSNorm(h); logits = W_head z for the requested rows of this chunk. Returns how many it wrote.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int FinalNormAndHead(int n, int chunkStart, float* norm, ReadOnlySpan<int> logitRows, int logitDone, Span<float> logits, Span<float> hidden)
    {
        Ops.RmsNormRows(_x, _d, Span(norm, _d), _eps, _x, _d, n); // (N, D) in place
        if (!hidden.IsEmpty)
        {
            _x.AsSpan(0, n * _d).CopyTo(hidden.Slice(chunkStart * _d));
        }

        var count = 0;
        while (logitDone + count < logitRows.Length && logitRows[logitDone + count] < chunkStart + n)
        {
            var row = logitRows[logitDone + count] - chunkStart;
            _x.AsSpan(row * _d, _d).CopyTo(_gather.AsSpan(count * _d, _d));
            count++;
        }

        if (count > 0)
        {
            var head = _w + _weights.Offset("lm_head.weight");
            fixed (float* y = logits.Slice(logitDone * _v, count * _v))
            {
                Blas.GemmNT(count, _v, _d, Ptr(_gather), _d, head, _d, y, _v);
            }
        }

        return count;
    }

    /// <summary>One block (reference §8): h += MLA(attn_norm(h)); h += FFN(ffn_norm(h)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Block(int layer, int n, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, KvCache cache, int cacheLayer)
    {
        var lp = _layers[layer];
        Ops.RmsNormRows(_x, _d, Span(lp.AttnNorm, _d), _eps, _xn, _d, n);
        Attention(lp, n, positions, slots, cache, cacheLayer);
        Blas.GemmNT(n, _d, _h * _dv, Ptr(_o), _h * _dv, lp.Wo, _h * _dv, Ptr(_x), _d, beta: 1f); // h += W_o o
        Ops.RmsNormRows(_x, _d, Span(lp.FfnNorm, _d), _eps, _xn, _d, n);
        if (lp.IsMoe)
        {
            Moe(lp, n);
        }
        else
        {
            SwiGlu(n, Ptr(_xn), _d, lp.DenseGateUp, lp.DenseDown, _c.IntermediateSize, Ptr(_x), 1f);
        }
    }

    /// <summary>y (+)= W_2(silu(W_1 x) ⊙ W_3 x) for n rows, with [W_1; W_3] stored contiguously (reference §6).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SwiGlu(int n, float* xIn, int ldx, float* gateUp, float* down, int inter, float* y, float beta, int worker = 0)
    {
        var gu = Ptr(_workers[worker].GateUp);
        var hid = Ptr(_workers[worker].Hidden);
        Blas.GemmNT(n, 2 * inter, _d, xIn, ldx, gateUp, _d, gu, 2 * inter); // (n, 2I) [gate | up]
        for (var i = 0; i < n; i++)
        {
            var row = gu + (long)i * 2 * inter;
            Ops.SiluMul(Span(row, inter), Span(row + inter, inter), Span(hid + (long)i * inter, inter));
        }

        Blas.GemmNT(n, _d, inter, hid, inter, down, inter, y, _d, beta: beta);
    }

    /// <summary>
    /// DeepSeekMoE (reference §7): route each row, then run each expert once on the rows routed to it (gathered),
    /// and add w_e·Expert_e(x) into the residual; the shared experts run on all rows. Large batches (prefill) split
    /// the experts between parallel .NET threads; decode-sized ones run on the calling thread and allocate nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Moe(LayerPointers lp, int n)
    {
        var xn = Ptr(_xn);
        var x = Ptr(_x);
        var parallel = _threads > 1 && n * _k >= 512;
        Blas.GemmNT(n, _e, _d, xn, _d, lp.Gate, _d, Ptr(_router), _e); // (N, E) router logits
        if (parallel)
        {
            RouteInParallel(lp, n);
        }
        else
        {
            RouteRows(lp, 0, n);
        }

        if (_c.NSharedExperts > 0)
        {
            SwiGlu(n, xn, _d, lp.SharedGateUp, lp.SharedDown, _c.NSharedExperts * _im, x, 1f);
        }

        // Counting sort of the (row, k) assignments by expert: _expertRows[start_e ..) lists expert e's.
        Array.Clear(_expertCount);
        for (var a = 0; a < n * _k; a++)
        {
            _expertCount[_sel[a]]++;
        }

        _expertStart[0] = 0;
        for (var e = 0; e < _e; e++)
        {
            _expertStart[e + 1] = _expertStart[e] + _expertCount[e];
            _expertCount[e] = _expertStart[e];
        }

        for (var a = 0; a < n * _k; a++)
        {
            _expertRows[_expertCount[_sel[a]]++] = a;
        }

        // Expert outputs land in (N·K, D) in sorted order; then h += w_e · y_e, sequentially (rows repeat).
        if (parallel)
        {
            ExpertsInParallel(lp);
        }
        else
        {
            RunExperts(lp, 0, _e, 0);
        }

        var y = Ptr(_yAssign);
        for (var pos = 0; pos < n * _k; pos++)
        {
            var a = _expertRows[pos];
            var row = Span(x + (long)(a / _k) * _d, _d);
            TensorPrimitives.MultiplyAdd(Span(y + (long)pos * _d, _d), _selW[a], row, row);
        }
    }

    private void RouteRows(LayerPointers lp, int from, int to)
    {
        var bias = Span(lp.GateBias, _e);
        for (var i = from; i < to; i++)
        {
            MoeRouter.Route(_router.AsSpan(i * _e, _e), bias, _c.NGroup, _c.TopkGroup, (float)_c.RoutedScalingFactor, _c.NormTopkProb, _sel.AsSpan(i * _k, _k), _selW.AsSpan(i * _k, _k));
        }
    }

    private void RouteInParallel(LayerPointers lp, int n)
    {
        var block = (n + _threads - 1) / _threads;
        Parallel.For(0, _threads, new ParallelOptions { MaxDegreeOfParallelism = _threads }, w => RouteRows(lp, w * block, Math.Min(n, (w + 1) * block)));
    }

    /// <summary>Experts [from, to) on worker <paramref name="worker"/>'s buffers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RunExperts(LayerPointers lp, int from, int to, int worker)
    {
        var xn = Ptr(_xn);
        var xe = Ptr(_workers[worker].Gathered);
        var y = Ptr(_yAssign);
        var expertSize = 3L * _im * _d;
        for (var e = from; e < to; e++)
        {
            int start = _expertStart[e], count = _expertStart[e + 1] - start;
            if (count == 0)
            {
                continue;
            }

            for (var j = 0; j < count; j++)
            {
                var row = _expertRows[start + j] / _k;
                Span(xn + (long)row * _d, _d).CopyTo(Span(xe + (long)j * _d, _d));
            }

            var w = lp.Experts + e * expertSize; // gate_proj, up_proj, down_proj of expert e, contiguous
            SwiGlu(count, xe, _d, w, w + 2L * _im * _d, _im, y + (long)start * _d, 0f, worker);
        }
    }

    /// <summary>Splits the experts into contiguous blocks of about equal row counts, one per thread.</summary>
    private void ExpertsInParallel(LayerPointers lp)
    {
        var bounds = new int[_threads + 1];
        var total = _expertStart[_e];
        var e = 0;
        for (var w = 1; w < _threads; w++)
        {
            while (e < _e && _expertStart[e] < total * w / _threads)
            {
                e++;
            }

            bounds[w] = e;
        }

        bounds[_threads] = _e;
        Blas.BeginManagedParallel();
        try
        {
            Parallel.For(0, _threads, new ParallelOptions { MaxDegreeOfParallelism = _threads }, w => RunExperts(lp, bounds[w], bounds[w + 1], w));
        }
        finally
        {
            Blas.EndManagedParallel();
        }
    }

    private float[] Expanded(int needed)
    {
        if (_expanded.Length < needed)
        {
            _expanded = Pinned(Math.Max(needed, _expanded.Length * 2));
        }

        return _expanded;
    }

    /// <summary>One thread's scratch: rows gathered for an expert (N, D), [gate | up] (N, 2I), silu(gate)·up (N, I).</summary>
    private sealed record WorkerBuffers(float[] Gathered, float[] GateUp, float[] Hidden);

    private float[][] HeadScores(int needed)
    {
        if (_headScores.Length == 0 || _headScores[0].Length < needed)
        {
            var grown = new float[_h][];
            for (var h = 0; h < _h; h++)
            {
                grown[h] = Pinned(needed);
            }

            _headScores = grown;
        }

        return _headScores;
    }

    private float[] Scores(int needed)
    {
        if (_scoresGrown.Length < needed)
        {
            _scoresGrown = Pinned(Math.Max(needed, _scoresGrown.Length * 2));
        }

        return _scoresGrown;
    }
}
