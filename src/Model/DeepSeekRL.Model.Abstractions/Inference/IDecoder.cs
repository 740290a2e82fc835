using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Inference;

// What Generator needs from an engine to decode: one batched forward over (token, position, slot) rows against a
// per-slot cache, returning the logits of chosen rows. The native Transformer and the libtorch engine implement it, so
// sampling, stopping and log-probs are one code path for both.

/// <summary>A model the <c>Generator</c> can decode with.</summary>
public interface IDecoder
{
    /// <summary>The config.</summary>
    DeepSeekV3Config Config { get; }

    /// <summary>The positions a sequence may reach.</summary>
    int MaxPositions { get; }

    /// <summary>A cache for <paramref name="slots"/> sequences of up to <paramref name="maxLength"/> positions.</summary>
    /// <param name="kind">The cache kind (an engine may support only the absorbed latent cache).</param>
    /// <param name="slots">Sequences.</param>
    /// <param name="maxLength">Positions per sequence.</param>
    /// <returns>The cache.</returns>
    IDecodingCache CreateDecodingCache(KvCacheKind kind, int slots, int maxLength);

    /// <summary>
    /// Runs rows (token, position, slot) through the model, writing each row's cache entry at its position of its slot
    /// (row r attends its slot's positions 0..position[r]), and writes the logits of <paramref name="logitRows"/>.
    /// </summary>
    /// <param name="tokens">Token of each row.</param>
    /// <param name="positions">Position of each row.</param>
    /// <param name="slots">Slot of each row.</param>
    /// <param name="cache">The cache (from <see cref="CreateDecodingCache"/>).</param>
    /// <param name="logitRows">Rows whose logits are wanted.</param>
    /// <param name="logits">[logitRows, V].</param>
    void Decode(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots, IDecodingCache cache, ReadOnlySpan<int> logitRows, Span<float> logits);
}

/// <summary>
/// An engine's decoding cache (opaque to the generator). Disposing it frees what it holds at once: a libtorch cache's
/// tensors are native memory the garbage collector does not see, and left to finalizers they piled up by the gigabyte
/// (one cache per generation call).
/// </summary>
public interface IDecodingCache : IDisposable;
