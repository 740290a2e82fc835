namespace DeepSeekRL.Model.Inference;

// The per-layer attention caches of a batch of sequences (reference §5.3): the absorbed latent cache holds only
// kv_norm(c_kv) and the rotated k_pe per token; the naive cache holds full per-head K and V, for comparison.
// It holds no logic beyond layout; the Transformer writes and reads it by (slot, position).

/// <summary>Attention caches for <see cref="Slots"/> sequences of up to <see cref="MaxLength"/> tokens.</summary>
/// <remarks>
/// Entries are indexed by absolute position, so rolling back (speculative decoding) is just writing over them.
/// Memory is allocated once, pinned. Not thread-safe.
/// </remarks>
public sealed class KvCache : IDecodingCache
{
    /// <summary>Allocates the cache.</summary>
    /// <param name="kind">The cache kind.</param>
    /// <param name="layers">The number of attention layers it serves.</param>
    /// <param name="slots">The number of sequences.</param>
    /// <param name="maxLength">The maximum number of positions per sequence.</param>
    /// <param name="entryWidth">Values per token per layer (<see cref="EntryValues"/>).</param>
    public KvCache(KvCacheKind kind, int layers, int slots, int maxLength, int entryWidth)
    {
        Kind = kind;
        Layers = layers;
        Slots = slots;
        MaxLength = maxLength;
        EntryWidth = entryWidth;
        LayerData = new float[layers][];
        for (var l = 0; l < layers; l++)
        {
            LayerData[l] = GC.AllocateUninitializedArray<float>(checked(slots * maxLength * entryWidth), pinned: true);
        }
    }

    /// <summary>The kind.</summary>
    public KvCacheKind Kind { get; }

    /// <summary>The number of layers.</summary>
    public int Layers { get; }

    /// <summary>The number of sequences.</summary>
    public int Slots { get; }

    /// <summary>The maximum positions per sequence.</summary>
    public int MaxLength { get; }

    /// <summary>Values per token per layer.</summary>
    public int EntryWidth { get; }

    /// <summary>Per layer: (slots, maxLength, entryWidth), pinned.</summary>
    public float[][] LayerData { get; }

    /// <summary>Nothing to free: the layers are managed arrays.</summary>
    public void Dispose()
    {
    }

    /// <summary>Bytes of fp32 cache per token over all layers.</summary>
    public long BytesPerToken => (long)EntryWidth * Layers * sizeof(float);

    /// <summary>Values per token per layer for a config and kind: r_kv + d_r, or H·(d_qk + d_v).</summary>
    /// <param name="config">The config.</param>
    /// <param name="kind">The kind.</param>
    /// <returns>The count.</returns>
    public static int EntryValues(Config.DeepSeekV3Config config, KvCacheKind kind)
    {
        ArgumentNullException.ThrowIfNull(config);
        return kind == KvCacheKind.Absorbed
            ? config.KvLoraRank + config.QkRopeHeadDim
            : config.NumAttentionHeads * (config.QkHeadDim + config.VHeadDim);
    }
}
