using DeepSeekRL.Model.Kernels;
using DeepSeekRL.Model.Sampling;

namespace DeepSeekRL.Model.Inference;

// Batched generation (reference §5.4, §10.5): one prefill over every prompt, then one decode row per live sequence
// per step, through the absorbed (or naive) cache; optionally MTP speculative decoding. Sequences of different lengths
// share each step; buffers are sized up front so the decode loop allocates nothing but the growing results.

/// <summary>
/// Generates from a batch of prompts with an <see cref="IDecoder"/> (the native <see cref="Transformer"/> or another
/// engine). Not thread-safe (one per model instance).
/// </summary>
public sealed class Generator
{
    private readonly IDecoder _decoder;
    private readonly Transformer? _native;
    private readonly Sampler _sampler;

    /// <summary>Creates a generator over the native engine (all features, MTP speculative decoding included).</summary>
    /// <param name="model">The model.</param>
    public Generator(Transformer model)
        : this((IDecoder)model)
    {
        _native = model;
    }

    /// <summary>Creates a generator over any engine (speculative MTP decoding needs the native one).</summary>
    /// <param name="decoder">The engine.</param>
    public Generator(IDecoder decoder)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        _decoder = decoder;
        _native = decoder as Transformer;
        _sampler = new Sampler(decoder.Config.VocabSize);
    }

    /// <summary>The native model (null when the generator runs another engine).</summary>
    public Transformer? Model => _native;

    /// <summary>The engine.</summary>
    public IDecoder Decoder => _decoder;

    /// <summary>Generates a completion for each prompt.</summary>
    /// <param name="prompts">Prompts (token ids, each non-empty).</param>
    /// <param name="options">Sampling and stopping.</param>
    /// <param name="cacheKind">The KV cache (absorbed by default).</param>
    /// <param name="cancellationToken">Cancels between steps.</param>
    /// <returns>The completions and, with MTP, the draft acceptance.</returns>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, SamplingOptions options, KvCacheKind cacheKind = KvCacheKind.Absorbed, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        return Generate(prompts, Enumerable.Range(0, prompts.Count).Select(i => (options.Seed, i)).ToArray(), options, cacheKind, cancellationToken);
    }

    /// <summary>
    /// Generates a completion for each prompt, drawing prompt i's tokens from the stream
    /// <c>SplitMix64.ForSequence(streams[i].Seed, streams[i].Index)</c>: several requests batched together sample what
    /// each would have sampled alone (<see cref="SamplingOptions.Seed"/> is not used).
    /// </summary>
    /// <param name="prompts">Prompts (token ids, each non-empty).</param>
    /// <param name="streams">The random stream of each prompt: a seed and a sequence index.</param>
    /// <param name="options">Sampling and stopping.</param>
    /// <param name="cacheKind">The KV cache (absorbed by default).</param>
    /// <param name="cancellationToken">Cancels between steps.</param>
    /// <returns>The completions and, with MTP, the draft acceptance.</returns>
    public GenerationResult Generate(
        IReadOnlyList<int[]> prompts, IReadOnlyList<(ulong Seed, int Index)> streams, SamplingOptions options, KvCacheKind cacheKind = KvCacheKind.Absorbed,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(streams);
        ArgumentNullException.ThrowIfNull(options);
        if (streams.Count != prompts.Count)
        {
            throw new ArgumentException($"{streams.Count} random streams for {prompts.Count} prompts; expected one per prompt", nameof(streams));
        }

        if (options.Validate() is { } error)
        {
            throw new ArgumentException(error, nameof(options));
        }

        var b = prompts.Count;
        var maxPrompt = 0;
        var total = 0;
        for (var i = 0; i < b; i++)
        {
            if (prompts[i] is not { Length: > 0 })
            {
                throw new ArgumentException($"prompt {i} is empty", nameof(prompts));
            }

            maxPrompt = Math.Max(maxPrompt, prompts[i].Length);
            total += prompts[i].Length;
        }

        var state = new State(b, options.MaxTokens, options.TopLogProbs > 0);
        if (b == 0 || options.MaxTokens == 0)
        {
            return state.Result(0, 0);
        }

        var speculative = options.SpeculativeMtp;
        if (speculative && _native is null)
        {
            throw new ArgumentException("speculative MTP decoding needs the native engine", nameof(options));
        }

        if (speculative && _decoder.Config.NumNextnPredictLayers == 0)
        {
            throw new ArgumentException("speculative MTP decoding needs a model with num_nextn_predict_layers = 1", nameof(options));
        }

        var maxLen = Math.Min(maxPrompt + options.MaxTokens + 1, _decoder.MaxPositions);
        if (maxPrompt >= maxLen)
        {
            throw new ArgumentException($"a prompt of {maxPrompt} tokens leaves no room in {_decoder.MaxPositions} positions", nameof(prompts));
        }

        using var cache = _decoder.CreateDecodingCache(cacheKind, b, maxLen);
        var v = _decoder.Config.VocabSize;
        var d = _decoder.Config.HiddenSize;

        // Prefill: every prompt at once, logits at each prompt's last row.
        var tokens = new int[total];
        var positions = new int[total];
        var slots = new int[total];
        var lastRows = new int[b];
        var r = 0;
        for (var i = 0; i < b; i++)
        {
            for (var j = 0; j < prompts[i].Length; j++, r++)
            {
                (tokens[r], positions[r], slots[r]) = (prompts[i][j], j, i);
            }

            lastRows[i] = r - 1;
            state.Length[i] = prompts[i].Length;
            state.Rng[i] = SplitMix64.ForSequence(streams[i].Seed, streams[i].Index);
        }

        var logits = new float[(long)(speculative ? 2 * b : b) * v];
        var prefillHidden = speculative ? new float[(long)total * d] : [];
        if (speculative)
        {
            _native!.Forward(tokens, positions, slots, (KvCache)cache, lastRows, logits, prefillHidden);
        }
        else
        {
            _decoder.Decode(tokens, positions, slots, cache, lastRows, logits);
        }

        for (var i = 0; i < b; i++)
        {
            var row = logits.AsSpan(i * v, v);
            Commit(state, i, _sampler.Sample(row, options, ref state.Rng[i]), row, options, maxLen);
        }

        return speculative
            ? Speculative(state, options, cacheKind, prompts, prefillHidden, logits, maxLen, (KvCache)cache, cancellationToken)
            : Decode(state, options, logits, maxLen, cache, cancellationToken);
    }

    private GenerationResult Decode(State state, SamplingOptions options, float[] logits, int maxLen, IDecodingCache cache, CancellationToken cancellationToken)
    {
        var b = state.Length.Length;
        var v = _decoder.Config.VocabSize;
        var tokens = new int[b];
        var positions = new int[b];
        var slots = new int[b];
        var rows = new int[b];
        for (var i = 0; i < b; i++)
        {
            rows[i] = i;
        }

        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = 0;
            for (var i = 0; i < b; i++)
            {
                if (state.Finish[i] is null)
                {
                    // The last committed token is not in the cache yet: it goes in at position length − 1.
                    (tokens[n], positions[n], slots[n]) = (state.Last(i), state.Length[i] - 1, i);
                    n++;
                }
            }

            if (n == 0)
            {
                return state.Result(0, 0);
            }

            _decoder.Decode(tokens.AsSpan(0, n), positions.AsSpan(0, n), slots.AsSpan(0, n), cache, rows.AsSpan(0, n), logits.AsSpan(0, n * v));
            for (var j = 0; j < n; j++)
            {
                var i = slots[j];
                var row = logits.AsSpan(j * v, v);
                Commit(state, i, _sampler.Sample(row, options, ref state.Rng[i]), row, options, maxLen);
            }
        }
    }

    /// <summary>
    /// MTP speculative decoding (reference §10.5): draft t_{n+1} with the MTP module, verify [t_n, draft] in one main
    /// pass, accept with probability min(1, p/q) (greedy: when the argmax agrees), else resample from max(0, p − q).
    /// </summary>
    private GenerationResult Speculative(State state, SamplingOptions options, KvCacheKind cacheKind, IReadOnlyList<int[]> prompts, float[] prefillHidden, float[] logits, int maxLen, KvCache cache, CancellationToken cancellationToken)
    {
        var model = _native!;
        var b = state.Length.Length;
        var v = model.Config.VocabSize;
        var d = model.Config.HiddenSize;
        var mtpCache = model.CreateMtpCache(cacheKind, b, maxLen);

        // MTP prefill: row p takes (h⁰_p, t_{p+1}) for every prompt position; the last row drafts.
        var total = prefillHidden.Length / d;
        var mTokens = new int[Math.Max(total, 2 * b)];
        var mPositions = new int[mTokens.Length];
        var mSlots = new int[mTokens.Length];
        var mHidden = new float[(long)mTokens.Length * d];
        var draftRows = new int[b];
        var r = 0;
        for (var i = 0; i < b; i++)
        {
            for (var p = 0; p < prompts[i].Length; p++, r++)
            {
                (mTokens[r], mPositions[r], mSlots[r]) = (p + 1 < prompts[i].Length ? prompts[i][p + 1] : state.Last(i), p, i);
            }
        }

        prefillHidden.CopyTo(mHidden, 0);
        var mRows = total;

        var draftLogits = new float[(long)b * v];
        var q = new float[(long)b * v];
        var p0 = new float[v];
        var drafts = new int[b];
        var vTokens = new int[2 * b];
        var vPositions = new int[2 * b];
        var vSlots = new int[2 * b];
        var vRows = new int[2 * b];
        var hidden = new float[(long)2 * b * d];
        for (var i = 0; i < vRows.Length; i++)
        {
            vRows[i] = i;
        }

        int proposed = 0, accepted = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();

            // Drop the pending MTP rows of finished sequences; mark each live sequence's last row as its draft row.
            var keep = 0;
            var live = 0;
            for (var j = 0; j < mRows; j++)
            {
                var i = mSlots[j];
                if (state.Finish[i] is not null)
                {
                    continue;
                }

                if (keep != j)
                {
                    (mTokens[keep], mPositions[keep], mSlots[keep]) = (mTokens[j], mPositions[j], i);
                    mHidden.AsSpan(j * d, d).CopyTo(mHidden.AsSpan(keep * d, d));
                }

                if (j + 1 == mRows || mSlots[j + 1] != i)
                {
                    draftRows[live++] = keep;
                }

                keep++;
            }

            if (live == 0)
            {
                return state.Result(proposed, accepted);
            }

            // 1. Draft.
            model.ForwardMtp(mTokens.AsSpan(0, keep), mHidden.AsSpan(0, keep * d), mPositions.AsSpan(0, keep), mSlots.AsSpan(0, keep), mtpCache, draftRows.AsSpan(0, live), draftLogits.AsSpan(0, live * v));

            // 2. Verify [t_n, draft] at positions [n, n+1] (n = length − 1).
            var n = 0;
            for (var k = 0; k < live; k++)
            {
                var i = mSlots[draftRows[k]];
                var qi = q.AsSpan(k * v, v);
                _sampler.Distribution(draftLogits.AsSpan(k * v, v), options, qi);
                drafts[k] = options.Temperature == 0 ? Array.IndexOf(q, 1f, k * v, v) - k * v : Sampler.Draw(qi, ref state.Rng[i]);
                var pos = state.Length[i] - 1;
                (vTokens[n], vPositions[n], vSlots[n]) = (state.Last(i), pos, i);
                (vTokens[n + 1], vPositions[n + 1], vSlots[n + 1]) = (drafts[k], Math.Min(pos + 1, maxLen - 1), i);
                n += 2;
            }

            // A sequence at the context limit verifies only one row; drop the second row then.
            var rowsUsed = 0;
            for (var k = 0; k < live; k++)
            {
                var i = vSlots[2 * k];
                vTokens[rowsUsed] = vTokens[2 * k];
                vPositions[rowsUsed] = vPositions[2 * k];
                vSlots[rowsUsed] = i;
                rowsUsed++;
                if (vPositions[2 * k] + 1 < maxLen)
                {
                    vTokens[rowsUsed] = vTokens[2 * k + 1];
                    vPositions[rowsUsed] = vPositions[2 * k] + 1;
                    vSlots[rowsUsed] = i;
                    rowsUsed++;
                }
            }

            model.Forward(vTokens.AsSpan(0, rowsUsed), vPositions.AsSpan(0, rowsUsed), vSlots.AsSpan(0, rowsUsed), cache, vRows.AsSpan(0, rowsUsed), logits.AsSpan(0, rowsUsed * v), hidden.AsSpan(0, rowsUsed * d));

            // 3. Accept or reject; queue the MTP rows for the next draft.
            mRows = 0;
            var row = 0;
            for (var k = 0; k < live; k++)
            {
                var i = vSlots[row];
                var pos = vPositions[row];
                var hasSecond = row + 1 < rowsUsed && vSlots[row + 1] == i;
                var l0 = logits.AsSpan(row * v, v);
                var qi = q.AsSpan(k * v, v);
                _sampler.Distribution(l0, options, p0);
                proposed++;
                bool accept;
                if (options.Temperature == 0)
                {
                    accept = Array.IndexOf(p0, 1f) == drafts[k];
                }
                else
                {
                    var ratio = qi[drafts[k]] > 0 ? p0[drafts[k]] / qi[drafts[k]] : 0;
                    accept = state.Rng[i].NextDouble() < Math.Min(1.0, ratio);
                }

                accept &= hasSecond;
                int next;
                if (accept)
                {
                    accepted++;
                    next = drafts[k];
                }
                else if (options.Temperature == 0)
                {
                    next = Array.IndexOf(p0, 1f);
                }
                else
                {
                    // Residual distribution max(0, p − q), renormalised (exact speculative sampling).
                    double mass = 0;
                    for (var t = 0; t < v; t++)
                    {
                        p0[t] = Math.Max(0, p0[t] - qi[t]);
                        mass += p0[t];
                    }

                    next = mass > 0 ? Sampler.Draw(p0, ref state.Rng[i]) : _sampler.Sample(l0, options, ref state.Rng[i]);
                }

                Commit(state, i, next, l0, options, maxLen);
                QueueMtp(i, pos, hidden.AsSpan(row * d, d), next);
                if (accept && state.Finish[i] is null)
                {
                    var l1 = logits.AsSpan((row + 1) * v, v);
                    var second = _sampler.Sample(l1, options, ref state.Rng[i]);
                    Commit(state, i, second, l1, options, maxLen);
                    QueueMtp(i, pos + 1, hidden.AsSpan((row + 1) * d, d), second);
                }

                row += hasSecond ? 2 : 1;
            }
        }

        void QueueMtp(int slot, int position, ReadOnlySpan<float> h, int nextToken)
        {
            (mTokens[mRows], mPositions[mRows], mSlots[mRows]) = (nextToken, position, slot);
            h.CopyTo(mHidden.AsSpan(mRows * d, d));
            mRows++;
        }
    }

    private static void Commit(State state, int i, int token, ReadOnlySpan<float> logits, SamplingOptions options, int maxLen)
    {
        state.Tokens[i].Add(token);
        state.LogProbs[i].Add((float)Ops.LogSoftmaxAt(logits, token));
        if (options.TopLogProbs > 0)
        {
            state.Top[i]!.Add(TopOf(logits, options.TopLogProbs));
        }

        state.Length[i]++;
        var stopIds = options.StopTokenIds;
        for (var s = 0; s < stopIds.Count; s++)
        {
            if (stopIds[s] == token)
            {
                state.Finish[i] = FinishReason.StopToken;
                return;
            }
        }

        if (options.StopStrings.Count > 0)
        {
            var text = options.Detokenize!(state.Tokens[i]);
            foreach (var stop in options.StopStrings)
            {
                if (text.Contains(stop, StringComparison.Ordinal))
                {
                    state.Finish[i] = FinishReason.StopString;
                    return;
                }
            }
        }

        if (state.Tokens[i].Count >= options.MaxTokens || state.Length[i] >= maxLen)
        {
            state.Finish[i] = FinishReason.Length;
        }
    }

    // The k largest logits by insertion into a sorted run of k (k <= 20, so O(V k) worst case, O(V) typically), then
    // their log-probs against one log-sum-exp; the same arithmetic as Ops.LogSoftmaxAt, so the chosen token agrees.
    private static TokenLogProb[] TopOf(ReadOnlySpan<float> logits, int k)
    {
        k = Math.Min(k, logits.Length);
        Span<int> ids = stackalloc int[k];
        var count = 0;
        for (var t = 0; t < logits.Length; t++)
        {
            var x = logits[t];
            if (count == k && !(x > logits[ids[k - 1]]))
            {
                continue;
            }

            var at = count < k ? count++ : k - 1;
            while (at > 0 && x > logits[ids[at - 1]])
            {
                ids[at] = ids[at - 1];
                at--;
            }

            ids[at] = t;
        }

        var max = logits[ids[0]];
        double sum = 0;
        for (var t = 0; t < logits.Length; t++)
        {
            sum += Math.Exp(logits[t] - max);
        }

        var logSum = Math.Log(sum);
        var top = new TokenLogProb[k];
        for (var j = 0; j < k; j++)
        {
            top[j] = new TokenLogProb(ids[j], (float)(logits[ids[j]] - max - logSum));
        }

        return top;
    }

    private sealed class State
    {
        public State(int b, int maxTokens, bool top)
        {
            Top = new List<TokenLogProb[]>?[b];
            Length = new int[b];
            Finish = new FinishReason?[b];
            Rng = new SplitMix64[b];
            Tokens = new List<int>[b];
            LogProbs = new List<float>[b];
            for (var i = 0; i < b; i++)
            {
                Tokens[i] = new List<int>(maxTokens + 1);
                LogProbs[i] = new List<float>(maxTokens + 1);
                Top[i] = top ? new List<TokenLogProb[]>(maxTokens + 1) : null;
            }
        }

        public int[] Length { get; }

        public FinishReason?[] Finish { get; }

        public SplitMix64[] Rng { get; }

        public List<int>[] Tokens { get; }

        public List<float>[] LogProbs { get; }

        public List<TokenLogProb[]>?[] Top { get; }

        public int Last(int i) => Tokens[i][^1];

        public GenerationResult Result(int proposed, int accepted)
        {
            var list = new GeneratedSequence[Length.Length];
            for (var i = 0; i < list.Length; i++)
            {
                list[i] = new GeneratedSequence([.. Tokens[i]], [.. LogProbs[i]], Finish[i] ?? FinishReason.Length, Top[i] is { } top ? [.. top] : null);
            }

            return new GenerationResult(list, proposed, accepted);
        }
    }
}
