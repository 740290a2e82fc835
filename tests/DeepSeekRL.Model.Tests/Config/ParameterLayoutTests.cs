using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Tests.Checkpoints;

namespace DeepSeekRL.Model.Tests.Config;

public sealed class ParameterLayoutTests
{
    private static DeepSeekV3Config Example(string file) =>
        DeepSeekV3Config.Load(Path.Combine(TestModels.RepositoryRoot(), "examples", "models", file)).Config!;

    [Theory]
    [InlineData("micro.json", false)]
    [InlineData("micro.json", true)]
    [InlineData("tiny.json", false)]
    [InlineData("tiny.json", true)]
    [InlineData("quick.json", false)]
    public void Count_ExampleConfig_EqualsTheLayoutsSum(string file, bool variant)
    {
        // The variant takes the other branch of every choice: q_proj instead of q LoRA, all layers MoE, no MTP block,
        // no shared expert.
        var config = variant
            ? Example(file) with { QLoraRank = null, FirstKDenseReplace = 0, NumNextnPredictLayers = 0, NSharedExperts = 0 }
            : Example(file);

        Assert.Equal(ParameterLayout.Parameters(config).Sum(s => s.Count), ParameterLayout.Count(config));
    }

    [Fact]
    public void Parameters_TinyConfig_MatchesTheReferenceCount()
    {
        // Reference doc §15.1: 2,755,104 trainable parameters plus 4 MoE layers × 16 expert-bias scalars.
        var specs = ParameterLayout.Parameters(Example("tiny.json"));

        Assert.Equal(2_755_104, specs.Where(s => s.Trainable).Sum(s => s.Count));
        Assert.Equal(64, specs.Where(s => !s.Trainable).Sum(s => s.Count));
        Assert.Equal(527_136, specs.Where(s => s.Trainable && s.Name.StartsWith("model.layers.4.", StringComparison.Ordinal)).Sum(s => s.Count));
    }

    [Fact]
    public void Parameters_MicroConfig_MatchesTheReferenceCount()
    {
        // Reference doc §15.2: main 47,768, MTP 19,336, total 67,104 trainable, plus 3 MoE layers × 8 expert-bias scalars.
        var specs = ParameterLayout.Parameters(Example("micro.json"));

        Assert.Equal(67_104, specs.Where(s => s.Trainable).Sum(s => s.Count));
        Assert.Equal(24, specs.Where(s => !s.Trainable).Sum(s => s.Count));
        Assert.Equal(19_336, specs.Where(s => s.Trainable && s.Name.StartsWith("model.layers.3.", StringComparison.Ordinal)).Sum(s => s.Count));
    }

    [Fact]
    public void Parameters_AnyConfig_NamesAreUniqueAndOrdered()
    {
        var specs = ParameterLayout.Parameters(Example("tiny.json"));

        Assert.Equal(specs.Count, specs.Select(s => s.Name).Distinct().Count());
        Assert.Equal("model.embed_tokens.weight", specs[0].Name);
        Assert.Equal("lm_head.weight", specs[^1].Name);
        Assert.Equal("model.norm.weight", specs[^2].Name);
        Assert.DoesNotContain(specs, s => s.Name.EndsWith("shared_head.head.weight", StringComparison.Ordinal) || s.Name == "model.layers.4.embed_tokens.weight");
    }

    [Fact]
    public void Parameters_NoQLora_UsesQProj()
    {
        var config = Example("micro.json") with { QLoraRank = null };

        var names = ParameterLayout.Parameters(config).Select(s => s.Name).ToHashSet();

        Assert.Contains("model.layers.0.self_attn.q_proj.weight", names);
        Assert.DoesNotContain("model.layers.0.self_attn.q_a_proj.weight", names);
    }
}
