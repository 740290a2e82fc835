using System.Security.Cryptography;
using System.Runtime.InteropServices;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Tests.Checkpoints;

public sealed class ModelInitTests
{
    private static DeepSeekV3Config Tiny() =>
        DeepSeekV3Config.Load(Path.Combine(TestModels.RepositoryRoot(), "examples", "models", "tiny.json")).Config!;

    private static string Sha256(float[] data) => Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(data.AsSpan())));

    [Fact]
    public void Create_SameSeed_IdenticalBytes()
    {
        var a = ModelInit.Create(TestModels.Micro(), 7);
        var b = ModelInit.Create(TestModels.Micro(), 7);
        var c = ModelInit.Create(TestModels.Micro(), 8);

        Assert.Equal(a.Data, b.Data);
        Assert.NotEqual(a.Data, c.Data);
    }

    [Fact]
    public void Create_TinySeed1_MatchesCommittedChecksum()
    {
        // Catches any change of the generator, the normal method, the draw order or ParameterLayout: golden data and
        // every stored `model init` checkpoint depend on these bytes.
        var store = ModelInit.Create(Tiny(), 1);
        var biased = ModelInit.Create(Tiny(), 1, new ModelInitOptions { Std = 0.25, BiasStd = 0.3 });

        Assert.Equal("0449c4e1238ccbdfa01694ee47aa914a5b3a2721c5286b9cbb07ad1f059750c9", Sha256(store.Data));
        Assert.Equal("372151c28fb3318e07e416929d5508ed11a15bfd20cfb38f2adbd9d472a833c8", Sha256(biased.Data));
    }

    [Fact]
    public void Create_Tiny_NormsOneBiasZeroWeightsHaveTheStd()
    {
        var store = ModelInit.Create(Tiny(), 3);

        foreach (var (spec, i) in store.Specs.Select((s, i) => (s, i)))
        {
            var w = store[i].ToArray();
            switch (spec.Init)
            {
                case ParameterInit.Ones:
                    Assert.All(w, v => Assert.Equal(1f, v));
                    break;
                case ParameterInit.Zeros:
                    Assert.All(w, v => Assert.Equal(0f, v));
                    break;
                default:
                    var mean = w.Average(v => (double)v);
                    var std = Math.Sqrt(w.Average(v => (v - mean) * (v - mean)));
                    Assert.InRange(mean, -4 * 0.02 / Math.Sqrt(w.Length), 4 * 0.02 / Math.Sqrt(w.Length));
                    Assert.InRange(std, 0.02 * (1 - (6 / Math.Sqrt(w.Length))), 0.02 * (1 + (6 / Math.Sqrt(w.Length))));
                    break;
            }
        }
    }

    [Fact]
    public void Create_BiasStd_DrawsANonZeroBiasAndStd()
    {
        var store = ModelInit.Create(TestModels.Micro(), 3, new ModelInitOptions { Std = 0.25, BiasStd = 0.5 });

        var bias = store["model.layers.1.mlp.gate.e_score_correction_bias"].ToArray();
        var embed = store["model.embed_tokens.weight"].ToArray();

        Assert.Equal(8, bias.Distinct().Count());
        Assert.InRange(Math.Sqrt(embed.Average(v => (double)v * v)), 0.23, 0.27);
    }

    [Fact]
    public void Create_NegativeStd_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ModelInit.Create(TestModels.Micro(), 1, new ModelInitOptions { Std = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ModelInit.Create(TestModels.Micro(), 1, new ModelInitOptions { BiasStd = double.NaN }));
    }

    [Fact]
    public void NormalGenerator_ManyDraws_StandardNormalMoments()
    {
        var rng = new ModelInit.NormalGenerator(42);
        const int N = 200_000;
        double sum = 0, sum2 = 0, sum4 = 0;
        for (var i = 0; i < N; i++)
        {
            var x = rng.NextNormal();
            sum += x;
            sum2 += x * x;
            sum4 += x * x * x * x;
        }

        Assert.InRange(sum / N, -0.01, 0.01);
        Assert.InRange(sum2 / N, 0.99, 1.01);
        Assert.InRange(sum4 / N, 2.9, 3.1);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.5)]
    [InlineData(0.7071)]
    [InlineData(0.123456789)]
    [InlineData(1e-3)]
    [InlineData(3e-12)]
    [InlineData(0.9999999)]
    public void Log_AgreesWithMathLog(double x)
    {
        var ours = ModelInit.NormalGenerator.Log(x);

        Assert.Equal(Math.Log(x), ours, Math.Abs(Math.Log(x)) * 1e-15 + 1e-16);
    }
}
