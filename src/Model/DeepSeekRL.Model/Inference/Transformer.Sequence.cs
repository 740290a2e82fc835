namespace DeepSeekRL.Model.Inference;

// Convenience entry points over Forward for one sequence: every position's logits in one prefill call, or token by
// token through the cache (decode). They allocate their cache and output; the per-token path itself does not.

/// <content>Whole-sequence helpers.</content>
public sealed partial class Transformer
{
    /// <summary>Logits at every position of one sequence in one prefill call.</summary>
    /// <param name="tokens">The tokens (T).</param>
    /// <param name="kind">The cache the prefill writes (the result does not depend on it).</param>
    /// <returns>(T, V) logits.</returns>
    public float[] ForwardSequence(ReadOnlySpan<int> tokens, KvCacheKind kind = KvCacheKind.Absorbed)
    {
        var t = tokens.Length;
        var cache = CreateCache(kind, 1, t);
        var positions = new int[t];
        var rows = new int[t];
        for (var i = 0; i < t; i++)
        {
            positions[i] = i;
            rows[i] = i;
        }

        var logits = new float[(long)t * Config.VocabSize];
        Forward(tokens, positions, new int[t], cache, rows, logits);
        return logits;
    }

    /// <summary>Logits at every position of one sequence, one token per call through the cache.</summary>
    /// <param name="tokens">The tokens (T).</param>
    /// <param name="kind">Absorbed (the latent cache) or naive.</param>
    /// <returns>(T, V) logits.</returns>
    public float[] DecodeSequence(ReadOnlySpan<int> tokens, KvCacheKind kind = KvCacheKind.Absorbed)
    {
        var t = tokens.Length;
        var v = Config.VocabSize;
        var cache = CreateCache(kind, 1, t);
        var logits = new float[(long)t * v];
        ReadOnlySpan<int> zero = [0];
        Span<int> position = [0];
        for (var i = 0; i < t; i++)
        {
            position[0] = i;
            Forward(tokens.Slice(i, 1), position, zero, cache, zero, logits.AsSpan(i * v, v));
        }

        return logits;
    }

    /// <summary>
    /// MTP logits of one sequence (reference §10): row i (i &lt; T−1) predicts token i+2 from the main model's
    /// final-norm hidden state at i and the embedding of token i+1.
    /// </summary>
    /// <param name="tokens">The tokens (T ≥ 2).</param>
    /// <returns>(T−1, V) logits.</returns>
    public float[] MtpSequence(ReadOnlySpan<int> tokens)
    {
        var t = tokens.Length;
        if (t < 2)
        {
            return [];
        }

        var positions = new int[t];
        for (var i = 0; i < t; i++)
        {
            positions[i] = i;
        }

        var hidden = new float[(long)t * Config.HiddenSize];
        Forward(tokens, positions, new int[t], CreateCache(KvCacheKind.Absorbed, 1, t), [], [], hidden);
        var logits = new float[(long)(t - 1) * Config.VocabSize];
        var rows = positions.AsSpan(0, t - 1);
        ForwardMtp(tokens[1..], hidden.AsSpan(0, (t - 1) * Config.HiddenSize), rows, new int[t - 1], CreateMtpCache(KvCacheKind.Absorbed, 1, t - 1), rows, logits);
        return logits;
    }
}
