using System.Text.Json;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Sampling;
using static TorchSharp.torch;
using Generator = DeepSeekRL.Model.Inference.Generator;

namespace DeepSeekRL.Model.TorchSharp.Tests;

/// <summary>
/// Decoding with the absorbed latent cache: token by token and as a batched prefill against the golden files, and
/// generation through the shared <see cref="Generator"/> against the native engine on the same weights and seeds.
/// </summary>
public sealed class DecodingTests
{
    [Theory]
    [MemberData(nameof(GoldenParityTests.Cases), MemberType = typeof(GoldenParityTests))]
    public void Golden_TokenByTokenAndPrefill_MatchPyTorchWithin1e4OfLargestLogit(string name)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "Data", "golden", name);
        using var golden = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "golden.json")));
        var weights = GoldenParityTests.LoadWeights(dir, golden.RootElement);
        using var model = new TorchDeepSeekV3(weights, CPU);
        var v = weights.Config.VocabSize;
        var sequences = golden.RootElement.GetProperty("sequences").EnumerateArray().ToList();
        var all = sequences.Select(s => s.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray()).ToList();
        var maxLength = all.Max(t => t.Length);

        // Token by token, one slot per sequence, all sequences in each call (rows of several slots at once).
        var byToken = all.Select(t => new float[t.Length * v]).ToList();
        var cache = (TorchLatentCache)model.CreateDecodingCache(KvCacheKind.Absorbed, all.Count, maxLength);
        for (var p = 0; p < maxLength; p++)
        {
            var live = Enumerable.Range(0, all.Count).Where(i => p < all[i].Length).ToArray();
            var logits = new float[live.Length * v];
            model.Decode(live.Select(i => all[i][p]).ToArray(), live.Select(_ => p).ToArray(), live, cache, Enumerable.Range(0, live.Length).ToArray(), logits);
            for (var j = 0; j < live.Length; j++)
            {
                logits.AsSpan(j * v, v).CopyTo(byToken[live[j]].AsSpan(p * v, v));
            }
        }

        cache.Dispose();

        // One batched prefill of every sequence, logits of every row.
        var tokens = all.SelectMany(t => t).ToArray();
        var positions = all.SelectMany(t => Enumerable.Range(0, t.Length)).ToArray();
        var slots = all.SelectMany((t, i) => Enumerable.Repeat(i, t.Length)).ToArray();
        var prefill = new float[tokens.Length * v];
        using (var prefillCache = (TorchLatentCache)model.CreateDecodingCache(KvCacheKind.Absorbed, all.Count, maxLength))
        {
            model.Decode(tokens, positions, slots, prefillCache, Enumerable.Range(0, tokens.Length).ToArray(), prefill);
        }

        var offset = 0;
        for (var i = 0; i < sequences.Count; i++)
        {
            var expected = Safetensors.ReadAll(Path.Combine(dir, sequences[i].GetProperty("file").GetString()!))["logits"].Data;
            TorchTestModels.AssertClose(expected, byToken[i], 1e-4, $"{name} sequence {i} token by token");
            TorchTestModels.AssertClose(expected, prefill.AsSpan(offset, all[i].Length * v), 1e-4, $"{name} sequence {i} prefill");
            offset += all[i].Length * v;
        }
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(1f)]
    public void Generate_SameWeightsAndSeeds_SameTokensAsNativeEngine(float temperature)
    {
        var config = TorchTestModels.Micro();
        var weights = TorchTestModels.Weights(config, seed: 21, std: 0.25);
        var prompts = new[] { TorchTestModels.Tokens(5, 64, 1), TorchTestModels.Tokens(9, 64, 2), TorchTestModels.Tokens(3, 64, 3) };
        var options = new SamplingOptions { Temperature = temperature, MaxTokens = 20, Seed = 7, StopTokenIds = [1], TopLogProbs = 3 };
        var native = new Generator(new Transformer(weights, new TransformerOptions { Threads = 1 })).Generate(prompts, options, cancellationToken: TestContext.Current.CancellationToken);
        using var model = new TorchDeepSeekV3(weights, CPU);
        var torch = new Generator(model).Generate(prompts, options, cancellationToken: TestContext.Current.CancellationToken);
        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(native.Sequences[i].Tokens, torch.Sequences[i].Tokens);
            Assert.Equal(native.Sequences[i].Finish, torch.Sequences[i].Finish);
            for (var k = 0; k < native.Sequences[i].LogProbs.Length; k++)
            {
                Assert.True(Math.Abs(native.Sequences[i].LogProbs[k] - torch.Sequences[i].LogProbs[k]) < 1e-4, $"sequence {i} token {k}: log-prob {torch.Sequences[i].LogProbs[k]} vs native {native.Sequences[i].LogProbs[k]}");
            }
        }

        Assert.Contains(native.Sequences, s => s.Tokens.Length > 5);
    }

    [Fact]
    public void Generate_Repeatedly_LeavesNoTensorAlive()
    {
        // Each generation's latent cache is native memory the GC does not see: a cache left to its finalizer piled up
        // by the gigabyte in the demo's rejection sampling (4.4 → 12.5 GB). Tensors this thread made and did not free:
        var config = TorchTestModels.Micro();
        using var model = new TorchDeepSeekV3(TorchTestModels.Weights(config, seed: 21, std: 0.25), CPU);
        var generator = new Generator(model);
        var prompts = new[] { TorchTestModels.Tokens(5, 64, 1), TorchTestModels.Tokens(9, 64, 2) };
        var options = new SamplingOptions { Temperature = 1, MaxTokens = 12, Seed = 7 };
        generator.Generate(prompts, options, cancellationToken: TestContext.Current.CancellationToken);
        var live = global::TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 3; i++)
        {
            Assert.NotEmpty(generator.Generate(prompts, options, cancellationToken: TestContext.Current.CancellationToken).Sequences[0].Tokens);
        }

        Assert.Equal(live, global::TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void CreateDecodingCache_NaiveKind_IsRefusedWithAClearMessage()
    {
        using var model = new TorchDeepSeekV3(TorchTestModels.Weights(TorchTestModels.Micro()), CPU);
        var error = Assert.Throws<ArgumentException>(() => model.CreateDecodingCache(KvCacheKind.Naive, 1, 8));
        Assert.Contains("absorbed latent cache only", error.Message, StringComparison.Ordinal);
    }
}
