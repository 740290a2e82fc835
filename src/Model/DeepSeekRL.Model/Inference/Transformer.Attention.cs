using System.Runtime.CompilerServices;
using DeepSeekRL.Model.Kernels;

namespace DeepSeekRL.Model.Inference;

// Multi-head latent attention through the cache (reference §5.2-5.3), in both forms: absorb (the cache holds
// [kv_norm(c_kv) | RoPE(k_pe)] and W_kvb is folded into the query and the output) and naive (full per-head K, V).
// Every product is a strided SGEMM over the rows of one slot; the softmax is row-wise with the general causal mask.

/// <content>The attention part of the forward pass and the resolution of weight pointers.</content>
public sealed unsafe partial class Transformer
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Attention(LayerPointers lp, int n, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, KvCache cache, int cacheLayer)
    {
        var xn = Ptr(_xn);
        var q = Ptr(_q);
        var kva = Ptr(_kva);
        int hq = _h * _dqk, wa = _rkv + _dr;

        // Query: q = W_qb RMSNorm_q(W_qa x), or W_q x without q LoRA. (N, H, d_qk)
        if (_rq > 0)
        {
            Blas.GemmNT(n, _rq, _d, xn, _d, lp.Wqa, _d, Ptr(_qa), _rq);
            Ops.RmsNormRows(_qa, _rq, Span(lp.QNorm, _rq), _eps, _qa, _rq, n);
            Blas.GemmNT(n, hq, _rq, Ptr(_qa), _rq, lp.Wqb, _rq, q, hq);
        }
        else
        {
            Blas.GemmNT(n, hq, _d, xn, _d, lp.Wq, _d, q, hq);
        }

        // Latent: a = W_kva x = [c_kv | k_pe]; ĉ = RMSNorm_kv(c_kv); k_pe rotated (shared by all heads). (N, r_kv + d_r)
        Blas.GemmNT(n, wa, _d, xn, _d, lp.Wkva, _d, kva, wa);
        for (var i = 0; i < n; i++)
        {
            var row = _kva.AsSpan(i * wa, wa);
            Ops.RmsNorm(row[.._rkv], Span(lp.KvNorm, _rkv), _eps, row[.._rkv]);
            Rope.Apply(row[_rkv..], positions[i]);
            for (var h = 0; h < _h; h++)
            {
                Rope.Apply(_q.AsSpan(i * hq + h * _dqk + _dn, _dr), positions[i]);
            }
        }

        if (cache.Kind == KvCacheKind.Absorbed && PreferExpanded(n, positions, slots))
        {
            ExpandedLatentAttention(lp, n, positions, slots, cache.LayerData[cacheLayer], cache.MaxLength);
        }
        else if (cache.Kind == KvCacheKind.Absorbed)
        {
            AbsorbedAttention(lp, n, positions, slots, cache.LayerData[cacheLayer], cache.MaxLength);
        }
        else
        {
            NaiveAttention(lp, n, positions, slots, cache.LayerData[cacheLayer], cache.MaxLength);
        }
    }

    /// <summary>
    /// Absorb (reference §5.3): q̃_h = U_hᵀ q_nope_h; S = τ([q̃_h | q_pe_h] · [ĉ_j | k_pe_j]); õ_h = Σ_j P ĉ_j; o_h = W_h õ_h.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AbsorbedAttention(LayerPointers lp, int n, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, float[] layerCache, int maxLen)
    {
        int wa = _rkv + _dr, hq = _h * _dqk, hv = _h * _dv, dnv = _dn + _dv, qw = _h * wa;
        var q = Ptr(_q);
        var qabs = Ptr(_qabs);
        var oabs = Ptr(_oabs);
        var cacheBase = Ptr(layerCache);

        // Cache entries: [ĉ | RoPE(k_pe)] at (slot, position).
        for (var i = 0; i < n; i++)
        {
            _kva.AsSpan(i * wa, wa).CopyTo(layerCache.AsSpan((slots[i] * maxLen + positions[i]) * wa, wa));
        }

        // q̃_h = q_nope_h U_h with U_h = rows [h·(d_n+d_v), h·(d_n+d_v)+d_n) of W_kvb, as (d_n, r_kv). (N, H, r_kv + d_r)
        for (var h = 0; h < _h; h++)
        {
            Blas.GemmNN(n, _rkv, _dn, q + h * _dqk, hq, lp.Wkvb + (long)h * dnv * _rkv, _rkv, qabs + h * wa, qw);
            for (var i = 0; i < n; i++)
            {
                _q.AsSpan(i * hq + h * _dqk + _dn, _dr).CopyTo(_qabs.AsSpan(i * qw + h * wa + _rkv, _dr));
            }
        }

        var tau = Rope.SoftmaxScale;
        var scores = Scores(QueryChunk * _h * maxLen);
        var s = Ptr(scores);
        for (var start = 0; start < n;)
        {
            var end = GroupEnd(slots, start, n);
            var slotCache = cacheBase + (long)slots[start] * maxLen * wa;
            for (var c0 = start; c0 < end; c0 += QueryChunk)
            {
                var tq = Math.Min(QueryChunk, end - c0);
                var tk = positions[c0 + tq - 1] + 1;

                // (tq·H, tk) = τ · (tq·H, r_kv + d_r) · (tk, r_kv + d_r)ᵀ: all heads of a row share ĉ and k_pe.
                Blas.GemmNT(tq * _h, tk, wa, qabs + (long)c0 * qw, wa, slotCache, wa, s, tk, alpha: tau);
                for (var i = 0; i < tq; i++)
                {
                    var valid = positions[c0 + i] + 1;
                    for (var h = 0; h < _h; h++)
                    {
                        Ops.MaskedSoftmax(scores.AsSpan((i * _h + h) * tk, tk), valid);
                    }
                }

                // õ (tq·H, r_kv) = P (tq·H, tk) · ĉ (tk, r_kv).
                Blas.GemmNN(tq * _h, _rkv, tk, s, tk, slotCache, wa, oabs + (long)c0 * _h * _rkv, _rkv);
            }

            start = end;
        }

        // o_h = W_h õ_h with W_h = rows [h·(d_n+d_v)+d_n, (h+1)·(d_n+d_v)) of W_kvb, (d_v, r_kv). (N, H·d_v)
        for (var h = 0; h < _h; h++)
        {
            Blas.GemmNT(n, _dv, _rkv, oabs + h * _rkv, _h * _rkv, lp.Wkvb + ((long)h * dnv + _dn) * _rkv, _rkv, Ptr(_o) + h * _dv, hv);
        }
    }

    /// <summary>
    /// Whether this call is cheaper with the latent cache expanded to per-head K and V (prefill: many queries per
    /// slot) than in absorbed form (decode), by the multiply-add counts of reference §15.1 summed over the slots.
    /// </summary>
    private bool PreferExpanded(int n, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots)
    {
        if (LatentForm is { } forced)
        {
            return forced == LatentAttentionForm.Expanded;
        }

        long absorbed = 0, expanded = 0;
        int dnv = _dn + _dv;
        for (var start = 0; start < n;)
        {
            var end = GroupEnd(slots, start, n);
            long tq = end - start, tk = positions[end - 1] + 1, meanCtx = tk - tq / 2;
            absorbed += tq * _h * meanCtx * (2L * _rkv + _dr) + 2L * tq * _h * dnv * _rkv;
            expanded += tk * _rkv * _h * dnv + tq * meanCtx * _h * (_dqk + _dv);
            start = end;
        }

        return expanded < absorbed;
    }

    /// <summary>
    /// Prefill on the latent cache: writes [ĉ | k_pe] like absorb, then expands the slot's context once into the naive
    /// layout, K_h = [(W_kvb ĉ_j)[h, :d_n] | k_pe_j] and V_h = (W_kvb ĉ_j)[h, d_n:], and attends per head as naive
    /// does (reference §5.3: the same numbers, fewer multiply-adds when many queries share the context).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ExpandedLatentAttention(LayerPointers lp, int n, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, float[] layerCache, int maxLen)
    {
        int wa = _rkv + _dr, hq = _h * _dqk, dnv = _dn + _dv, hx = _h * dnv, width = hq + _h * _dv;
        for (var i = 0; i < n; i++)
        {
            _kva.AsSpan(i * wa, wa).CopyTo(layerCache.AsSpan((slots[i] * maxLen + positions[i]) * wa, wa));
        }

        var kvb = Expanded(maxLen * (hx + width));
        var kvbPtr = Ptr(kvb);
        var naive = kvb.AsSpan(maxLen * hx);
        var cacheBase = Ptr(layerCache);
        for (var start = 0; start < n;)
        {
            var end = GroupEnd(slots, start, n);
            var slotCache = cacheBase + (long)slots[start] * maxLen * wa;
            var context = positions[end - 1] + 1;

            // (tk, H, d_n + d_v) = ĉ (tk, r_kv) · W_kvbᵀ, then rearranged to naive entries [K (H, d_qk) | V (H, d_v)].
            Blas.GemmNT(context, hx, _rkv, slotCache, wa, lp.Wkvb, _rkv, kvbPtr, hx);
            for (var j = 0; j < context; j++)
            {
                var entry = naive.Slice(j * width, width);
                var kpe = layerCache.AsSpan((slots[start] * maxLen + j) * wa + _rkv, _dr);
                for (var h = 0; h < _h; h++)
                {
                    kvb.AsSpan(j * hx + h * dnv, _dn).CopyTo(entry.Slice(h * _dqk, _dn));
                    kpe.CopyTo(entry.Slice(h * _dqk + _dn, _dr));
                    kvb.AsSpan(j * hx + h * dnv + _dn, _dv).CopyTo(entry.Slice(hq + h * _dv, _dv));
                }
            }

            AttendNaive(start, end, positions, kvbPtr + (long)maxLen * hx);
            start = end;
        }
    }

    /// <summary>Naive (reference §5.3): K_h = [k_nope_h | k_pe], V_h from W_kvb ĉ, cached per head; S = τ Q_h K_hᵀ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void NaiveAttention(LayerPointers lp, int n, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, float[] layerCache, int maxLen)
    {
        int wa = _rkv + _dr, hq = _h * _dqk, hv = _h * _dv, dnv = _dn + _dv, width = hq + hv;
        var kvb = Ptr(_kvb);
        var cacheBase = Ptr(layerCache);

        // [k_nope_h | v_h] = (W_kvb ĉ)[head h]. (N, H, d_n + d_v)
        Blas.GemmNT(n, _h * dnv, _rkv, Ptr(_kva), wa, lp.Wkvb, _rkv, kvb, _h * dnv);
        for (var i = 0; i < n; i++)
        {
            var entry = layerCache.AsSpan((slots[i] * maxLen + positions[i]) * width, width);
            for (var h = 0; h < _h; h++)
            {
                _kvb.AsSpan(i * _h * dnv + h * dnv, _dn).CopyTo(entry.Slice(h * _dqk, _dn));
                _kva.AsSpan(i * wa + _rkv, _dr).CopyTo(entry.Slice(h * _dqk + _dn, _dr));
                _kvb.AsSpan(i * _h * dnv + h * dnv + _dn, _dv).CopyTo(entry.Slice(hq + h * _dv, _dv));
            }
        }

        for (var start = 0; start < n;)
        {
            var end = GroupEnd(slots, start, n);
            AttendNaive(start, end, positions, cacheBase + (long)slots[start] * maxLen * width);
            start = end;
        }
    }

    /// <summary>
    /// Rows [start, end) of one slot attend to its naive entries [K (H, d_qk) | V (H, d_v)] at positions 0 … p:
    /// per head S = τ Q_h K_hᵀ (masked softmax), O_h = P V_h. Large chunks (prefill) run the heads on parallel .NET
    /// threads with single-threaded BLAS; decode-sized ones stay on the calling thread and allocate nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AttendNaive(int start, int end, ReadOnlySpan<int> positions, float* entries)
    {
        for (var c0 = start; c0 < end; c0 += QueryChunk)
        {
            var tq = Math.Min(QueryChunk, end - c0);
            var tk = positions[c0 + tq - 1] + 1;
            positions.Slice(c0, tq).CopyTo(_rowPositions);
            if (_threads > 1 && _h > 1 && (long)tq * tk >= 64 * 64)
            {
                AttendHeadsInParallel(c0, tq, tk, (nint)entries);
            }
            else
            {
                for (var h = 0; h < _h; h++)
                {
                    AttendHead(h, c0, tq, tk, entries, _scoresGrown);
                }
            }
        }
    }

    /// <summary>The heads of one query chunk on parallel .NET threads (the closure is allocated here only).</summary>
    private void AttendHeadsInParallel(int c0, int tq, int tk, nint entries)
    {
        var buffers = HeadScores(QueryChunk * Math.Max(tk, 256));
        Blas.BeginManagedParallel();
        try
        {
            Parallel.For(0, _h, new ParallelOptions { MaxDegreeOfParallelism = _threads }, h => AttendHead(h, c0, tq, tk, (float*)entries, buffers[h]));
        }
        finally
        {
            Blas.EndManagedParallel();
        }
    }

    /// <summary>One head of <see cref="AttendNaive"/> for query rows [c0, c0 + tq) over keys 0 … tk − 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AttendHead(int h, int c0, int tq, int tk, float* entries, float[] scores)
    {
        int hq = _h * _dqk, hv = _h * _dv, width = hq + hv;
        var s = Ptr(scores);

        // (tq, tk) = τ Q_h (tq, d_qk) · K_h (tk, d_qk)ᵀ; then O_h (tq, d_v) = P · V_h (tk, d_v).
        Blas.GemmNT(tq, tk, _dqk, Ptr(_q) + (long)c0 * hq + h * _dqk, hq, entries + h * _dqk, width, s, tk, alpha: Rope.SoftmaxScale);
        for (var i = 0; i < tq; i++)
        {
            Ops.MaskedSoftmax(scores.AsSpan(i * tk, tk), _rowPositions[i] + 1);
        }

        Blas.GemmNN(tq, _dv, tk, s, tk, entries + hq + h * _dv, width, Ptr(_o) + (long)c0 * hv + h * _dv, hv);
    }

    private static int GroupEnd(ReadOnlySpan<int> slots, int start, int n)
    {
        var end = start + 1;
        while (end < n && slots[end] == slots[start])
        {
            end++;
        }

        return end;
    }

    private LayerPointers Resolve(int layer)
    {
        var p = $"model.layers.{layer}.";
        float* W(string name) => _w + _weights.Offset(name);
        float* Optional(string name) => _weights.Contains(name) ? W(name) : null;
        var moe = _c.IsMoeLayer(layer);
        var mtp = layer == _c.NumHiddenLayers;
        return new LayerPointers
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
            DenseGateUp = moe ? null : W(p + "mlp.gate_proj.weight"),
            DenseDown = moe ? null : W(p + "mlp.down_proj.weight"),
            Gate = moe ? W(p + "mlp.gate.weight") : null,
            GateBias = moe ? W(p + "mlp.gate.e_score_correction_bias") : null,
            Experts = moe ? W(p + "mlp.experts.0.gate_proj.weight") : null,
            SharedGateUp = moe ? Optional(p + "mlp.shared_experts.gate_proj.weight") : null,
            SharedDown = moe ? Optional(p + "mlp.shared_experts.down_proj.weight") : null,
            ENorm = mtp ? W(p + "enorm.weight") : null,
            HNorm = mtp ? W(p + "hnorm.weight") : null,
            EhProj = mtp ? W(p + "eh_proj.weight") : null,
            SharedHeadNorm = mtp ? W(p + "shared_head.norm.weight") : null,
            FinalNorm = W("model.norm.weight"),
        };
    }

    /// <summary>Raw pointers into the pinned parameter block for one layer (gate and up are adjacent in the layout).</summary>
    private readonly struct LayerPointers
    {
        public bool IsMoe { get; init; }

        public float* AttnNorm { get; init; }

        public float* Wqa { get; init; }

        public float* QNorm { get; init; }

        public float* Wqb { get; init; }

        public float* Wq { get; init; }

        public float* Wkva { get; init; }

        public float* KvNorm { get; init; }

        public float* Wkvb { get; init; }

        public float* Wo { get; init; }

        public float* FfnNorm { get; init; }

        public float* DenseGateUp { get; init; }

        public float* DenseDown { get; init; }

        public float* Gate { get; init; }

        public float* GateBias { get; init; }

        public float* Experts { get; init; }

        public float* SharedGateUp { get; init; }

        public float* SharedDown { get; init; }

        public float* ENorm { get; init; }

        public float* HNorm { get; init; }

        public float* EhProj { get; init; }

        public float* SharedHeadNorm { get; init; }

        public float* FinalNorm { get; init; }
    }
}
