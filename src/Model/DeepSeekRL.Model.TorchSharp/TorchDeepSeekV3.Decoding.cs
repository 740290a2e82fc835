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

        // Which cached positions each row may see: j ≤ its position.
        using var visible = arange(span, ScalarType.Int64, Device).unsqueeze(0).le(pos.unsqueeze(1)).unsqueeze(1); // [n, 1, span]
        var h = P("model.embed_tokens.weight").index_select(0, ids);
        for (var l = 0; l < _c.NumHiddenLayers; l++)
        {
            var p = $"model.layers.{l}.";
            var x = RmsNorm(h, P(p + "input_layernorm.weight"));
            var (qNope, qPe, cHat, kPe) = Project(p, x.unsqueeze(0), pos.unsqueeze(0)); // [1, H, n, ·], [1, n, ·]
            latent.Latent[l].index_put_(cHat.squeeze(0), slot, pos);
            latent.RopeKeys[l].index_put_(kPe.squeeze(0), slot, pos);
            var c = latent.Latent[l].index_select(0, slot).narrow(1, 0, span);      // [n, span, r_kv]
            var pe = latent.RopeKeys[l].index_select(0, slot).narrow(1, 0, span);   // [n, span, d_r]
            var wkvb = P(p + "self_attn.kv_b_proj.weight").view(_h, _dn + _dv, _rkv);
            var qAbsorbed = einsum("hnd,hdr->nhr", qNope.squeeze(0), wkvb.narrow(1, 0, _dn));      // q̃ [n, H, r_kv]
            var scores = (qAbsorbed.matmul(c.transpose(1, 2)) + qPe.squeeze(0).transpose(0, 1).matmul(pe.transpose(1, 2))) * _tau; // [n, H, span]
            var weights = scores.masked_fill(visible.logical_not(), float.NegativeInfinity).softmax(-1);
            var o = einsum("nhr,hvr->nhv", weights.matmul(c), wkvb.narrow(1, _dn, _dv));            // [n, H, d_v]
            h = h + functional.linear(o.reshape(n, _h * _dv), P(p + "self_attn.o_proj.weight"));
            h = h + Ffn(l, RmsNorm(h, P(p + "post_attention_layernorm.weight")), null, 1);
        }

        var rows = tensor(ToLong(logitRows), [logitRows.Length], ScalarType.Int64, Device);
        var z = RmsNorm(h.index_select(0, rows), P("model.norm.weight"));
        Copy(functional.linear(z, P("lm_head.weight")), logits[..(logitRows.Length * _c.VocabSize)]);
    }

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
