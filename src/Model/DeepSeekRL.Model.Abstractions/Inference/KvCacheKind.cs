namespace DeepSeekRL.Model.Inference;

/// <summary>Which attention cache a decode uses.</summary>
public enum KvCacheKind
{
    /// <summary>MLA absorb: [ĉ (r_kv), k_pe (d_r)] per token per layer (V3: 576 values).</summary>
    Absorbed,

    /// <summary>Naive: K [H, d_qk] and V [H, d_v] per token per layer (V3: 40,960 values).</summary>
    Naive,
}
