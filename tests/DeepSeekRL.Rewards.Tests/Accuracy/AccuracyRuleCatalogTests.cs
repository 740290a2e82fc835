using System.Text.Json;
using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Tests.Accuracy;

public sealed class AccuracyRuleCatalogTests
{
    [Theory]
    [InlineData("accuracy", """{"precision": 4, "time_limit_seconds": 0.5}""")]
    [InlineData("cosine", """{"max_length": 2048, "clamp": true, "accuracy": {"precision": 6}}""")]
    [InlineData("kimi_length", """{"use_tokens": true}""")]
    public void Create_BuiltInRuleWithSnakeCaseOptions_Binds(string name, string json)
    {
        var descriptor = RewardRuleCatalog.BuiltIn[name];
        var (rule, error) = descriptor.Create(JsonDocument.Parse(json).RootElement, "$.rules[0]");
        Assert.Null(error);
        Assert.NotNull(rule);
    }

    [Theory]
    [InlineData("accuracy", """{"precision": 99}""", "precision")]
    [InlineData("accuracy", """{"bogus": 1}""", "bogus")]
    [InlineData("cosine", """{"max_length": 0}""", "max_length")]
    public void Create_BadOptions_ReportsTheOption(string name, string json, string mentioned)
    {
        var (rule, error) = RewardRuleCatalog.BuiltIn[name].Create(JsonDocument.Parse(json).RootElement, "$.rules[0]");
        Assert.Null(rule);
        Assert.Contains(mentioned, error, StringComparison.Ordinal);
    }
}
