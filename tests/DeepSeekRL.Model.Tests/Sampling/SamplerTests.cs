using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Kernels;
using DeepSeekRL.Model.Sampling;
using DeepSeekRL.Model.Tests.Inference;

namespace DeepSeekRL.Model.Tests.Sampling;

public sealed class SamplerTests
{
    private static GenerationResult Gen(Generator generator, int[][] prompts, SamplingOptions options, KvCacheKind kind = KvCacheKind.Absorbed) =>
        generator.Generate(prompts, options, kind, TestContext.Current.CancellationToken);

    private static readonly float[] Logits = [0.5f, 2f, -1f, 1.5f, 0f, 3f, -2f, 1f];

    [Fact]
    public void Sample_TemperatureZero_IsArgmax()
    {
        var rng = new SplitMix64(1);
        Assert.Equal(5, new Sampler(8).Sample(Logits, new SamplingOptions { Temperature = 0 }, ref rng));
    }

    [Fact]
    public void Sample_SameSeed_SameDraws()
    {
        var sampler = new Sampler(8);
        var options = new SamplingOptions { Temperature = 1.5f };
        var a = SplitMix64.ForSequence(42, 0);
        var b = SplitMix64.ForSequence(42, 0);
        var c = SplitMix64.ForSequence(43, 0);
        var da = Enumerable.Range(0, 50).Select(_ => sampler.Sample(Logits, options, ref a)).ToArray();
        var db = Enumerable.Range(0, 50).Select(_ => sampler.Sample(Logits, options, ref b)).ToArray();
        var dc = Enumerable.Range(0, 50).Select(_ => sampler.Sample(Logits, options, ref c)).ToArray();
        Assert.Equal(da, db);
        Assert.NotEqual(da, dc);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL)]
    [InlineData(42UL)]
    public void ForSequence_D8_StreamsOfOneSeedShareNoShiftedRun(ulong seed)
    {
        // Stream i against stream 0 at every shift -64..64: 64-bit draws of independent streams never coincide. The
        // old state seed ^ gamma * (i + 1) made stream i of seed 0 exactly stream 0 minus its first i draws.
        const int N = 512, MaxShift = 64;
        static ulong[] Draws(SplitMix64 s)
        {
            var draws = new ulong[N];
            for (var t = 0; t < N; t++)
            {
                draws[t] = s.NextUInt64();
            }

            return draws;
        }

        var first = Draws(SplitMix64.ForSequence(seed, 0));
        var plain = Draws(new SplitMix64(seed));
        for (var i = 1; i <= 16; i++)
        {
            var other = Draws(SplitMix64.ForSequence(seed, i));
            foreach (var reference in new[] { first, plain })
            {
                for (var shift = -MaxShift; shift <= MaxShift; shift++)
                {
                    var equal = 0;
                    for (var t = Math.Max(0, -shift); t < N && t + shift < N; t++)
                    {
                        equal += other[t] == reference[t + shift] ? 1 : 0;
                    }

                    Assert.True(equal == 0, $"seed {seed}: stream {i} equals a reference stream shifted by {shift} at {equal} draws");
                }
            }
        }
    }

    [Fact]
    public void Generate_D7_TopLogProbs_AreTheKMostLikelyTokensOfTheModel()
    {
        var model = new Transformer(TestModels.Weights(TestModels.Micro()));
        var prompt = TestModels.Tokens(5, 64, 1);
        var seq = Gen(new Generator(model), [prompt], new SamplingOptions { Temperature = 1.5f, TopP = 0.9f, Seed = 3, MaxTokens = 6, TopLogProbs = 4 }).Sequences[0];
        Assert.NotNull(seq.TopLogProbs);
        var logits = model.ForwardSequence([.. prompt, .. seq.Tokens]);
        for (var i = 0; i < seq.Tokens.Length; i++)
        {
            // The model's own log-probs (before temperature and top-p), as the sampled token's LogProbs are.
            var row = logits.AsSpan((prompt.Length - 1 + i) * 64, 64).ToArray();
            var expected = Enumerable.Range(0, 64).Select(t => (Id: t, LogProb: Ops.LogSoftmaxAt(row, t))).OrderByDescending(e => e.LogProb).ThenBy(e => e.Id).Take(4).ToArray();
            var top = seq.TopLogProbs[i];
            Assert.Equal(expected.Select(e => e.Id), top.Select(e => e.Id));
            for (var j = 0; j < 4; j++)
            {
                Assert.Equal(expected[j].LogProb, top[j].LogProb, 3);
            }

            if (Array.FindIndex(top, e => e.Id == seq.Tokens[i]) is var at and >= 0)
            {
                Assert.Equal(seq.LogProbs[i], top[at].LogProb);
            }
        }

        var plain = Gen(new Generator(model), [prompt], new SamplingOptions { Temperature = 1.5f, TopP = 0.9f, Seed = 3, MaxTokens = 6 }).Sequences[0];
        Assert.Null(plain.TopLogProbs);
        Assert.Equal(seq.Tokens, plain.Tokens);
    }

    [Fact]
    public void Sample_TopK_RestrictsSupportToKMostLikely()
    {
        var sampler = new Sampler(8);
        var options = new SamplingOptions { Temperature = 5f, TopK = 3 };
        var rng = new SplitMix64(7);
        var seen = Enumerable.Range(0, 2000).Select(_ => sampler.Sample(Logits, options, ref rng)).Distinct().Order().ToArray();
        Assert.Equal([1, 3, 5], seen);
    }

    [Fact]
    public void Distribution_TopP_KeepsSmallestNucleusAndRenormalises()
    {
        var sampler = new Sampler(8);
        var full = new float[8];
        sampler.Distribution(Logits, new SamplingOptions(), full);
        var probs = new float[8];
        sampler.Distribution(Logits, new SamplingOptions { TopP = 0.6f }, probs);

        // Sorted: 5 (0.47), 1 (0.17), 3 (0.10) ...: 0.47 < 0.6 ≤ 0.64, so {5, 1}.
        Assert.True(full[5] < 0.6f && full[5] + full[1] >= 0.6f);
        Assert.Equal(full[5] / (full[5] + full[1]), probs[5], 5);
        Assert.Equal(full[1] / (full[5] + full[1]), probs[1], 5);
        Assert.Equal(2, probs.Count(p => p > 0));
        var rng = new SplitMix64(3);
        var seen = Enumerable.Range(0, 1000).Select(_ => sampler.Sample(Logits, new SamplingOptions { TopP = 0.6f }, ref rng)).Distinct().Order().ToArray();
        Assert.Equal([1, 5], seen);
    }

    [Fact]
    public void Sample_Temperature1_FrequenciesFollowSoftmax()
    {
        var sampler = new Sampler(8);
        var full = new float[8];
        sampler.Distribution(Logits, new SamplingOptions(), full);
        var rng = new SplitMix64(9);
        var counts = new int[8];
        const int n = 40_000;
        for (var i = 0; i < n; i++)
        {
            counts[sampler.Sample(Logits, new SamplingOptions(), ref rng)]++;
        }

        for (var i = 0; i < 8; i++)
        {
            Assert.True(Math.Abs(counts[i] / (double)n - full[i]) < 0.01, $"token {i}: {counts[i] / (double)n} vs {full[i]}");
        }
    }

    [Fact]
    public void Generate_LogProbs_EqualLogSoftmaxOfLogitsAtSampledToken()
    {
        var w = TestModels.Weights(TestModels.Micro());
        var model = new Transformer(w);
        var prompt = TestModels.Tokens(5, 64, 1);
        var result = Gen(new Generator(model), [prompt], new SamplingOptions { Temperature = 1f, Seed = 5, MaxTokens = 6 });
        var seq = result.Sequences[0];
        Assert.Equal(6, seq.Tokens.Length);
        var all = prompt.Concat(seq.Tokens).ToArray();
        var logits = model.ForwardSequence(all);
        for (var i = 0; i < seq.Tokens.Length; i++)
        {
            var expected = Ops.LogSoftmaxAt(logits.AsSpan((prompt.Length - 1 + i) * 64, 64), seq.Tokens[i]);
            Assert.Equal(expected, seq.LogProbs[i], 3);
        }
    }

    [Fact]
    public void Generate_SameSeed_Deterministic_DifferentSeed_Differs()
    {
        var model = new Transformer(TestModels.Weights(TestModels.Micro()));
        var generator = new Generator(model);
        int[][] prompts = [TestModels.Tokens(4, 64, 1), TestModels.Tokens(7, 64, 2)];
        var a = Gen(generator, prompts, new SamplingOptions { Temperature = 1.2f, Seed = 1, MaxTokens = 20 });
        var b = Gen(generator, prompts, new SamplingOptions { Temperature = 1.2f, Seed = 1, MaxTokens = 20 });
        var c = Gen(generator, prompts, new SamplingOptions { Temperature = 1.2f, Seed = 2, MaxTokens = 20 });
        Assert.Equal(a.Sequences[1].Tokens, b.Sequences[1].Tokens);
        Assert.NotEqual(a.Sequences[1].Tokens, c.Sequences[1].Tokens);
    }

    [Fact]
    public void Generate_WithStreams_SamplesWhatEachRequestSamplesAlone()
    {
        var generator = new Generator(new Transformer(TestModels.Weights(TestModels.Micro())));
        int[] p = TestModels.Tokens(4, 64, 1), q = TestModels.Tokens(9, 64, 2);
        var options = new SamplingOptions { Temperature = 1.2f, MaxTokens = 20 };

        // Two requests: p with seed 11 (two samples), q with seed 12 (one sample), batched as p, p, q.
        var batched = generator.Generate([p, p, q], [(11UL, 0), (11UL, 1), (12UL, 0)], options, cancellationToken: TestContext.Current.CancellationToken);
        var aloneP = Gen(generator, [p, p], new SamplingOptions { Temperature = 1.2f, MaxTokens = 20, Seed = 11 });
        var aloneQ = Gen(generator, [q], new SamplingOptions { Temperature = 1.2f, MaxTokens = 20, Seed = 12 });
        Assert.Equal(aloneP.Sequences[0].Tokens, batched.Sequences[0].Tokens);
        Assert.Equal(aloneP.Sequences[1].Tokens, batched.Sequences[1].Tokens);
        Assert.Equal(aloneQ.Sequences[0].Tokens, batched.Sequences[2].Tokens);
        Assert.NotEqual(batched.Sequences[0].Tokens, batched.Sequences[1].Tokens);

        var error = Assert.Throws<ArgumentException>(() => generator.Generate([p, q], [(1UL, 0)], options, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("1 random streams for 2 prompts", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_MaxTokens_LimitsEveryCompletion()
    {
        var generator = new Generator(new Transformer(TestModels.Weights(TestModels.Micro())));
        int[][] prompts = [TestModels.Tokens(4, 64, 1), TestModels.Tokens(2, 64, 2)];
        Assert.All(Gen(generator, prompts, new SamplingOptions { MaxTokens = 0 }).Sequences, s => Assert.Empty(s.Tokens));
        Assert.All(Gen(generator, prompts, new SamplingOptions { MaxTokens = 7, Seed = 4 }).Sequences, s =>
        {
            Assert.Equal(7, s.Tokens.Length);
            Assert.Equal(FinishReason.Length, s.Finish);
        });
    }

    [Fact]
    public void Generate_StopTokenId_EndsSequenceAtThatToken()
    {
        var model = new Transformer(TestModels.Weights(TestModels.Micro()));
        var generator = new Generator(model);
        var prompt = TestModels.Tokens(4, 64, 3);
        var free = Gen(generator, [prompt], new SamplingOptions { Temperature = 0, MaxTokens = 12 }).Sequences[0];
        var stop = free.Tokens[4];
        var first = Array.IndexOf(free.Tokens, stop);
        var stopped = Gen(generator, [prompt], new SamplingOptions { Temperature = 0, MaxTokens = 12, StopTokenIds = [stop] }).Sequences[0];
        Assert.Equal(FinishReason.StopToken, stopped.Finish);
        Assert.Equal(free.Tokens.Take(first + 1), stopped.Tokens);
        Assert.Equal(FinishReason.Length, free.Finish);
    }

    [Fact]
    public void Generate_StopString_EndsSequenceWhenTextContainsIt()
    {
        var model = new Transformer(TestModels.Weights(TestModels.Micro()));
        var generator = new Generator(model);
        var prompt = TestModels.Tokens(4, 64, 3);
        static string Text(IReadOnlyList<int> ids) => string.Join(" ", ids.Select(i => $"<{i}>"));
        var free = Gen(generator, [prompt], new SamplingOptions { Temperature = 0, MaxTokens = 12 }).Sequences[0];
        var stop = $"<{free.Tokens[2]}> <{free.Tokens[3]}>";
        var stopped = Gen(generator, [prompt], new SamplingOptions { Temperature = 0, MaxTokens = 12, StopStrings = [stop], Detokenize = Text }).Sequences[0];
        Assert.Equal(FinishReason.StopString, stopped.Finish);
        Assert.Contains(stop, Text(stopped.Tokens), StringComparison.Ordinal);
        Assert.DoesNotContain(stop, Text(stopped.Tokens[..^1]), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(KvCacheKind.Absorbed)]
    [InlineData(KvCacheKind.Naive)]
    public void Generate_BatchOfDifferentLengths_EqualsEachAlone(KvCacheKind kind)
    {
        var model = new Transformer(TestModels.Weights(TestModels.Micro()));
        var generator = new Generator(model);
        int[][] prompts = [TestModels.Tokens(2, 64, 1), TestModels.Tokens(11, 64, 2), TestModels.Tokens(6, 64, 3)];
        var options = new SamplingOptions { Temperature = 0, MaxTokens = 15 };
        var batch = Gen(generator, prompts, options, kind);
        for (var i = 0; i < prompts.Length; i++)
        {
            var alone = Gen(generator, [prompts[i]], options, kind).Sequences[0];
            Assert.Equal(alone.Tokens, batch.Sequences[i].Tokens);
            for (var j = 0; j < alone.LogProbs.Length; j++)
            {
                Assert.Equal(alone.LogProbs[j], batch.Sequences[i].LogProbs[j], 3);
            }
        }
    }

    [Fact]
    public void Generate_SpeculativeMtpGreedy_SameTokensAsPlainGreedy_ReportsAcceptance()
    {
        var model = new Transformer(TestModels.Weights(TestModels.Micro()));
        var generator = new Generator(model);
        int[][] prompts = [TestModels.Tokens(3, 64, 1), TestModels.Tokens(9, 64, 2)];
        var plain = Gen(generator, prompts, new SamplingOptions { Temperature = 0, MaxTokens = 20 });
        var spec = Gen(generator, prompts, new SamplingOptions { Temperature = 0, MaxTokens = 20, SpeculativeMtp = true });
        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(plain.Sequences[i].Tokens, spec.Sequences[i].Tokens);
            for (var j = 0; j < plain.Sequences[i].LogProbs.Length; j++)
            {
                Assert.Equal(plain.Sequences[i].LogProbs[j], spec.Sequences[i].LogProbs[j], 3);
            }
        }

        Assert.True(spec.DraftsProposed > 0);
        Assert.InRange(spec.AcceptanceRate, 0, 1);
    }

    [Fact]
    public void Generate_SpeculativeMtpWithAgreeingDraft_AcceptsEveryDraftAndTakesTwoTokensPerStep()
    {
        // Zero final norms make every logit 0 for the main head and the MTP head alike: both predict token 0.
        var w = TestModels.Weights(TestModels.Micro());
        w.Get("model.norm.weight").Clear();
        w.Get($"model.layers.{w.Config.NumHiddenLayers}.shared_head.norm.weight").Clear();
        var result = Gen(new Generator(new Transformer(w)), [TestModels.Tokens(4, 64, 5)], new SamplingOptions { Temperature = 0, MaxTokens = 21, SpeculativeMtp = true });
        Assert.Equal(new int[21], result.Sequences[0].Tokens);
        Assert.Equal(10, result.DraftsProposed); // 1 token from the prefill, then 10 steps of 2
        Assert.Equal(1.0, result.AcceptanceRate);
    }

    [Fact]
    public void Generate_SpeculativeMtpSampling_ProducesMaxTokensWithinSupport()
    {
        var model = new Transformer(TestModels.Weights(TestModels.Micro()));
        var result = Gen(new Generator(model), [TestModels.Tokens(5, 64, 4)], new SamplingOptions { Temperature = 0.8f, TopK = 10, Seed = 3, MaxTokens = 25, SpeculativeMtp = true });
        Assert.Equal(25, result.Sequences[0].Tokens.Length);
        Assert.All(result.Sequences[0].LogProbs, lp => Assert.True(lp <= 0));
    }
}
