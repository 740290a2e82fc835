using DeepSeekRL.Model.Inference;

namespace DeepSeekRL.Model.Tests.Inference;

public sealed class TransformerTests
{
    [Theory]
    [InlineData(false, true, true, 1)]
    [InlineData(true, true, true, 1)]
    [InlineData(false, false, false, 0)]
    public void ForwardSequence_MicroModel_MatchesNaiveReference(bool yarn, bool qLora, bool interleave, int shared)
    {
        var w = TestModels.Weights(TestModels.Micro(yarn, qLora, interleave, shared));
        var tokens = TestModels.Tokens(20, 64, seed: 5);
        var expected = new ReferenceForward(w).Main(tokens).Logits.SelectMany(r => r).Select(x => (float)x).ToArray();
        var model = new Transformer(w);
        Assert.True(TestModels.MaxAbs(expected) > 2, "logits should span several units");
        TestModels.AssertClose(expected, model.ForwardSequence(tokens, KvCacheKind.Absorbed), 1e-4, "absorbed prefill");
        TestModels.AssertClose(expected, model.ForwardSequence(tokens, KvCacheKind.Naive), 1e-4, "naive prefill");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ForwardSequence_EachLatentAttentionForm_MatchesNaiveReference(bool expanded)
    {
        var form = expanded ? LatentAttentionForm.Expanded : LatentAttentionForm.Absorbed;
        var w = TestModels.Weights(TestModels.Micro(yarn: true));
        var tokens = TestModels.Tokens(150, 64, seed: 15); // > QueryChunk rows: several query chunks per slot
        var expected = new ReferenceForward(w).Main(tokens).Logits.SelectMany(r => r).Select(x => (float)x).ToArray();
        var model = new Transformer(w, new TransformerOptions { MaxPositions = 160 }) { LatentForm = form };
        TestModels.AssertClose(expected, model.ForwardSequence(tokens, KvCacheKind.Absorbed), 1e-4, form.ToString());
        model.LatentForm = form == LatentAttentionForm.Absorbed ? LatentAttentionForm.Expanded : LatentAttentionForm.Absorbed;
        TestModels.AssertClose(expected, model.DecodeSequence(tokens, KvCacheKind.Absorbed), 1e-4, "decode in the other form");
    }

    [Theory]
    [InlineData(KvCacheKind.Absorbed, false, true)]
    [InlineData(KvCacheKind.Naive, false, true)]
    [InlineData(KvCacheKind.Absorbed, true, true)]
    [InlineData(KvCacheKind.Naive, true, true)]
    [InlineData(KvCacheKind.Absorbed, false, false)]
    public void DecodeSequence_TokenByToken_MatchesFullForward(KvCacheKind kind, bool yarn, bool interleave)
    {
        var w = TestModels.Weights(TestModels.Micro(yarn, interleave: interleave));
        var model = new Transformer(w);
        var tokens = TestModels.Tokens(40, 64, seed: 6);
        TestModels.AssertClose(model.ForwardSequence(tokens), model.DecodeSequence(tokens, kind), 1e-4, $"{kind} decode");
    }

    [Fact]
    public void DecodeSequence_TinyConfig_AbsorbedEqualsNaive()
    {
        var w = TestModels.Weights(TestModels.Tiny(), std: 0.05);
        var model = new Transformer(w);
        var tokens = TestModels.Tokens(140, 2048, seed: 7); // prefill: 560 expert assignments, parallel heads and experts
        var full = model.ForwardSequence(tokens);
        TestModels.AssertClose(full, model.DecodeSequence(tokens, KvCacheKind.Absorbed), 1e-4, "absorbed");
        TestModels.AssertClose(full, model.DecodeSequence(tokens, KvCacheKind.Naive), 1e-4, "naive");
    }

    [Theory]
    [InlineData(KvCacheKind.Absorbed)]
    [InlineData(KvCacheKind.Naive)]
    public void Forward_BatchOfDifferentLengths_EqualsEachAlone(KvCacheKind kind)
    {
        var w = TestModels.Weights(TestModels.Micro());
        var model = new Transformer(w);
        var v = w.Config.VocabSize;
        int[][] seqs = [TestModels.Tokens(3, v, 1), TestModels.Tokens(17, v, 2), TestModels.Tokens(9, v, 3)];
        var alone = seqs.Select(s => model.DecodeSequence(s, kind)).ToArray();

        // Prefill the first 2 tokens of every sequence in one call, then decode one row per live sequence per step.
        var cache = model.CreateCache(kind, seqs.Length, 32);
        var prefillTokens = seqs.SelectMany(s => s.Take(2)).ToArray();
        var prefillPos = seqs.SelectMany(_ => new[] { 0, 1 }).ToArray();
        var prefillSlots = seqs.SelectMany((_, i) => new[] { i, i }).ToArray();
        var rows = Enumerable.Range(0, prefillTokens.Length).ToArray();
        var logits = new float[rows.Length * v];
        model.Forward(prefillTokens, prefillPos, prefillSlots, cache, rows, logits);
        for (var i = 0; i < seqs.Length; i++)
        {
            TestModels.AssertClose(alone[i].AsSpan(0, 2 * v), logits.AsSpan(2 * i * v, 2 * v), 1e-4, $"prefill of sequence {i}");
        }

        for (var p = 2; p < 17; p++)
        {
            var live = Enumerable.Range(0, seqs.Length).Where(i => p < seqs[i].Length).ToArray();
            var step = new float[live.Length * v];
            model.Forward(live.Select(i => seqs[i][p]).ToArray(), live.Select(_ => p).ToArray(), live, cache, Enumerable.Range(0, live.Length).ToArray(), step);
            for (var j = 0; j < live.Length; j++)
            {
                TestModels.AssertClose(alone[live[j]].AsSpan(p * v, v), step.AsSpan(j * v, v), 1e-4, $"sequence {live[j]} position {p}");
            }
        }
    }

    [Fact]
    public void ForwardMtp_MicroModel_MatchesNaiveReference()
    {
        var w = TestModels.Weights(TestModels.Micro(yarn: true));
        var model = new Transformer(w);
        var tokens = TestModels.Tokens(12, 64, seed: 8);
        var reference = new ReferenceForward(w);
        var (_, hidden) = reference.Main(tokens);
        var next = tokens.Skip(1).Append(5).ToArray();
        var expected = reference.Mtp(hidden, next).SelectMany(r => r).Select(x => (float)x).ToArray();

        var t = tokens.Length;
        var cache = model.CreateCache(KvCacheKind.Absorbed, 1, t);
        var positions = Enumerable.Range(0, t).ToArray();
        var h = new float[t * w.Config.HiddenSize];
        model.Forward(tokens, positions, new int[t], cache, [], [], h);
        var mtpCache = model.CreateMtpCache(KvCacheKind.Naive, 1, t);
        var logits = new float[t * 64];
        model.ForwardMtp(next, h, positions, new int[t], mtpCache, positions, logits);
        TestModels.AssertClose(expected, logits, 1e-4, "MTP logits");
    }

    [Fact]
    public void Forward_MultiTokenCallAfterPrefill_UsesGeneralCausalMask()
    {
        var w = TestModels.Weights(TestModels.Micro());
        var model = new Transformer(w);
        var v = w.Config.VocabSize;
        var tokens = TestModels.Tokens(10, v, seed: 9);
        var full = model.ForwardSequence(tokens);
        var cache = model.CreateCache(KvCacheKind.Absorbed, 1, 10);
        model.Forward(tokens.AsSpan(0, 6), [0, 1, 2, 3, 4, 5], new int[6], cache, [], []);
        var logits = new float[4 * v];
        model.Forward(tokens.AsSpan(6, 4), [6, 7, 8, 9], new int[4], cache, [0, 1, 2, 3], logits);
        TestModels.AssertClose(full.AsSpan(6 * v, 4 * v), logits, 1e-4, "chunked prefill");
    }

    [Theory]
    [InlineData(KvCacheKind.Absorbed)]
    [InlineData(KvCacheKind.Naive)]
    public void Forward_DecodeSteps_AllocateNothing(KvCacheKind kind)
    {
        var w = TestModels.Weights(TestModels.Tiny(), std: 0.05);
        var model = new Transformer(w);
        const int b = 4;
        var cache = model.CreateCache(kind, b, 40);
        var tokens = new int[b];
        var positions = new int[b];
        int[] slots = [0, 1, 2, 3];
        var logits = new float[b * w.Config.VocabSize];
        // Three windows of 10 decode steps after 8 warm-up steps. The runtime itself may allocate on this thread
        // while tiered compilation swaps in optimised code (a few hundred bytes, once); a per-token allocation would
        // show in every window, so the quietest window must be exactly zero.
        var windows = new long[3];
        var p = 0;
        for (var window = -1; window < windows.Length; window++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var step = 0; step < (window < 0 ? 8 : 10); step++, p++)
            {
                for (var i = 0; i < b; i++)
                {
                    (tokens[i], positions[i]) = ((p * 7 + i) % 2048, p);
                }

                model.Forward(tokens, positions, slots, cache, slots, logits);
            }

            if (window >= 0)
            {
                windows[window] = GC.GetAllocatedBytesForCurrentThread() - before;
            }
        }

        Assert.True(windows.Min() == 0, $"decode allocated {string.Join(", ", windows)} bytes in three windows of 10 steps");
    }

    [Fact]
    public void KvCache_FullV3Config_576Vs40960ValuesPerTokenPerLayer()
    {
        var v3 = TestModels.Micro() with
        {
            VocabSize = 129280, HiddenSize = 7168, NumAttentionHeads = 128, KvLoraRank = 512, QkRopeHeadDim = 64, QkNopeHeadDim = 128, VHeadDim = 128,
        };
        Assert.Equal(576, KvCache.EntryValues(v3, KvCacheKind.Absorbed));
        Assert.Equal(40960, KvCache.EntryValues(v3, KvCacheKind.Naive));
    }

    [Fact]
    public void Forward_TokenOutsideVocabulary_Throws()
    {
        var model = new Transformer(TestModels.Weights(TestModels.Micro()));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.ForwardSequence([1, 64]));
    }
}
