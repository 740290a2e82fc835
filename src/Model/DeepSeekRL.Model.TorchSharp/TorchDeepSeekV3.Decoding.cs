using DeepSeekRL.Model.Inference;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DeepSeekRL.Model.TorchSharp;

// Decoding with the absorbed latent cache (reference §5.3): per layer and slot, only ĉ (r_kv) and the rotated k_pe
// (d_r) of each position are kept; W_kvb's key half is absorbed into the query (q̃ = Uᵀ q_nope) and its value half
// applied after the softmax to the latent output. Rows of one call may belong to different slots and positions (a
// batched prefill, or one token per live sequence); each writes its entry first, then attends its slot up to itself.

/// <summary>The absorbed latent KV cache of the libtorch engine: per layer ĉ [slots, S, r_kv] and k_pe [slots, S, d_r].</summary>
public sealed class TorchLatentCache : IDecodingCache, IDisposable
{
    internal TorchLatentCache(int layers, int slots, int maxLength, int rank, int ropeDim, Device device)
    {
        Latent = new Tensor[layers];
        RopeKeys = new Tensor[layers];
        for (var l = 0; l < layers; l++)
        {
            Latent[l] = zeros(slots, maxLength, rank, ScalarType.Float32, device);
            RopeKeys[l] = zeros(slots, maxLength, ropeDim, ScalarType.Float32, device);
        }

        MaxLength = maxLength;
    }

    /// <summary>ĉ per layer.</summary>
    internal Tensor[] Latent { get; }

    /// <summary>Rotated k_pe per layer.</summary>
    internal Tensor[] RopeKeys { get; }

    /// <summary>Positions per slot.</summary>
    public int MaxLength { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in Latent.Concat(RopeKeys))
        {
            t.Dispose();
        }
    }
}

public sealed partial class TorchDeepSeekV3
{
    /// <inheritdoc/>
    public IDecodingCache CreateDecodingCache(KvCacheKind kind, int slots, int maxLength)
    {
        if (kind != KvCacheKind.Absorbed)
        {
            throw new ArgumentException($"the libtorch engine decodes with the absorbed latent cache only (asked for {kind})", nameof(kind));
        }

        if (maxLength < 1 || maxLength > MaxPositions)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), $"{maxLength} positions: the RoPE table holds {MaxPositions} (max_position_embeddings)");
        }

        return new TorchLatentCache(_c.NumHiddenLayers, slots, maxLength, _rkv, _dr, Device);
    }

    /// <inheritdoc/>
    public void Decode(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, IDecodingCache cache, ReadOnlySpan<int> logitRows, Span<float> logits)
    {
        if (cache is not TorchLatentCache latent)
        {
            throw new ArgumentException("the cache was not made by this engine", nameof(cache));
        }

        var n = tokens.Length;
        if (positions.Length != n || slots.Length != n)
        {
            throw new ArgumentException($"{n} tokens, {positions.Length} positions, {slots.Length} slots: expected one of each per row");
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        ExpertLoad.Clear();
        var maxPosition = 0;
        foreach (var p in positions)
        {
            maxPosition = Math.Max(maxPosition, p);
        }

        var ids = tensor(ToLong(tokens), [n], ScalarType.Int64, Device);
        var pos = tensor(ToLong(positions), [n], ScalarType.Int64, Device);
        var slot = tensor(ToLong(slots), [n], ScalarType.Int64, Device);
        var span = maxPosition + 1;
        var groups = Group(slots, positions);
        var h = P("model.embed_tokens.weight").index_select(0, ids);
        for (var l = 0; l < _c.NumHiddenLayers; l++)
        {
            var p = $"model.layers.{l}.";
            var x = RmsNorm(h, P(p + "input_layernorm.weight"));
            var (qNope, qPe, cHat, kPe) = Project(p, x.unsqueeze(0), pos.unsqueeze(0)); // [1, H, n, ·], [1, n, ·]
            latent.Latent[l].index_put_(cHat.squeeze(0), slot, pos);
            latent.RopeKeys[l].index_put_(kPe.squeeze(0), slot, pos);
            var wkvb = P(p + "self_attn.kv_b_proj.weight").view(_h, _dn + _dv, _rkv);
            var qAbsorbed = einsum("hnd,hdr->nhr", qNope.squeeze(0), wkvb.narrow(1, 0, _dn)); // q̃ [n, H, r_kv]
            var qRope = qPe.squeeze(0).transpose(0, 1);                                        // [n, H, d_r]
            var latentOut = groups is null
                ? AttendPerRow(latent, l, qAbsorbed, qRope, slot, pos, span)
                : AttendPerSlot(latent, l, qAbsorbed, qRope, groups, span);
            var o = einsum("nhr,hvr->nhv", latentOut, wkvb.narrow(1, _dn, _dv));            // [n, H, d_v]
            h = h + functional.linear(o.reshape(n, _h * _dv), P(p + "self_attn.o_proj.weight"));
            h = h + Ffn(l, RmsNorm(h, P(p + "post_attention_layernorm.weight")), null, 1);
        }

        var rows = tensor(ToLong(logitRows), [logitRows.Length], ScalarType.Int64, Device);
        var z = RmsNorm(h.index_select(0, rows), P("model.norm.weight"));
        Copy(functional.linear(z, P("lm_head.weight")), logits[..(logitRows.Length * _c.VocabSize)]);
    }

    // One token per slot (decoding): each row gathers its slot's cache and attends positions 0..its own.
    private Tensor AttendPerRow(TorchLatentCache cache, int layer, Tensor qAbsorbed, Tensor qRope, Tensor slot, Tensor pos, int span)
    {
        using var visible = arange(span, ScalarType.Int64, Device).unsqueeze(0).le(pos.unsqueeze(1)).unsqueeze(1); // [n, 1, span]
        var c = cache.Latent[layer].index_select(0, slot).narrow(1, 0, span);      // [n, span, r_kv]
        var pe = cache.RopeKeys[layer].index_select(0, slot).narrow(1, 0, span);   // [n, span, d_r]
        var scores = (qAbsorbed.matmul(c.transpose(1, 2)) + qRope.matmul(pe.transpose(1, 2))) * _tau; // [n, H, span]
        return scores.masked_fill(visible.logical_not(), float.NegativeInfinity).softmax(-1).matmul(c);
    }

    // Several tokens of a slot (a prefill): the rows are laid out per slot, [G, T_max] (padding rows see position 0
    // and are dropped), and each slot's cache is read once instead of once per row.
    private Tensor AttendPerSlot(TorchLatentCache cache, int layer, Tensor qAbsorbed, Tensor qRope, SlotGroups groups, int span)
    {
        long g = groups.Slots.Length, t = groups.Width;
        var layout = tensor(groups.Rows, [groups.Rows.Length], ScalarType.Int64, Device);
        var slots = tensor(groups.Slots, [g], ScalarType.Int64, Device);
        var positions = tensor(groups.Positions, [g, t], ScalarType.Int64, Device);
        var q = qAbsorbed.index_select(0, layout).view(g, t, _h, _rkv).transpose(1, 2);  // [G, H, T, r_kv]
        var qr = qRope.index_select(0, layout).view(g, t, _h, _dr).transpose(1, 2);      // [G, H, T, d_r]
        var c = cache.Latent[layer].index_select(0, slots).narrow(1, 0, span);          // [G, span, r_kv]
        var pe = cache.RopeKeys[layer].index_select(0, slots).narrow(1, 0, span);       // [G, span, d_r]
        var scores = (q.matmul(c.unsqueeze(1).transpose(2, 3)) + qr.matmul(pe.unsqueeze(1).transpose(2, 3))) * _tau; // [G, H, T, span]
        using var visible = arange(span, ScalarType.Int64, Device).view(1, 1, span).le(positions.unsqueeze(2)).unsqueeze(1); // [G, 1, T, span]
        var o = scores.masked_fill(visible.logical_not(), float.NegativeInfinity).softmax(-1).matmul(c.unsqueeze(1)); // [G, H, T, r_kv]
        var back = tensor(groups.Back, [groups.Back.Length], ScalarType.Int64, Device);
        return o.transpose(1, 2).reshape(g * t, _h, _rkv).index_select(0, back);         // [n, H, r_kv]
    }

    /// <summary>
    /// The rows grouped by slot when some slot has several rows: for each group its slot, its rows (padded with row 0
    /// to the widest group) and their positions (padding: 0), and for each row its place in that layout. Null when every
    /// slot has one row.
    /// </summary>
    private static SlotGroups? Group(ReadOnlySpan<int> slots, ReadOnlySpan<int> positions)
    {
        var order = new Dictionary<int, List<int>>();
        var distinct = new List<int>();
        for (var r = 0; r < slots.Length; r++)
        {
            if (!order.TryGetValue(slots[r], out var rows))
            {
                order[slots[r]] = rows = [];
                distinct.Add(slots[r]);
            }

            rows.Add(r);
        }

        var width = order.Values.Max(v => v.Count);
        if (width == 1)
        {
            return null;
        }

        var layout = new long[distinct.Count * width];
        var at = new long[distinct.Count * width];
        var back = new long[slots.Length];
        for (var g = 0; g < distinct.Count; g++)
        {
            var rows = order[distinct[g]];
            for (var k = 0; k < rows.Count; k++)
            {
                layout[(g * width) + k] = rows[k];
                at[(g * width) + k] = positions[rows[k]];
                back[rows[k]] = (g * width) + k;
            }
        }

        return new SlotGroups(distinct.Select(x => (long)x).ToArray(), width, layout, at, back);
    }

    private sealed record SlotGroups(long[] Slots, int Width, long[] Rows, long[] Positions, long[] Back);

    private static long[] ToLong(ReadOnlySpan<int> values)
    {
        var result = new long[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            result[i] = values[i];
        }

        return result;
    }
}
