using System.Text.Json;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Plugins;

namespace DeepSeekRL.Rewards.SamplePlugin.Tests;

public sealed class KeywordRuleTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string PluginDirectory(string project) =>
        Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", project, "release"));

    [Fact]
    public async Task RulesFile_SamplePluginDirectory_LoadsAndScoresTheKeywordRule()
    {
        using var plugins = new PluginLoader();
        var (pipeline, error) = Build(Rules(PluginDirectory("DeepSeekRL.Rewards.SamplePlugin"),
            """[{"rule": "keyword", "weight": 2.0, "options": {"keywords": ["boxed", "answer"]}}]"""), plugins);

        Assert.Null(error);
        var results = await pipeline!.ScoreAsync(
        [
            new RewardInput("q", "<think>the answer</think> \\boxed{4} is the answer", "4"),
            new RewardInput("q", "<think>boxed answer</think> 4", "4"),
            new RewardInput("q", "The BOXED value", "4"),
        ], Ct);

        Assert.Equal([1.0, 0.0, 0.5], results.Select(r => r["keyword"]!.Value));
        Assert.Equal([2.0, 0.0, 1.0], results.Select(r => r.Reward));
        Assert.Equal("1 of 2 keywords", results[2].Reasons["keyword"]);
    }

    [Fact]
    public void RulesFile_PluginOptionsInvalid_NamesTheOption()
    {
        using var plugins = new PluginLoader();
        var (_, unknown) = Build(Rules(PluginDirectory("DeepSeekRL.Rewards.SamplePlugin"), """[{"rule": "keyword", "options": {"keywordz": ["x"]}}]"""), plugins);
        var (_, empty) = Build(Rules(PluginDirectory("DeepSeekRL.Rewards.SamplePlugin"), """[{"rule": "keyword", "options": {"keywords": []}}]"""), plugins);

        Assert.Contains("keywordz", unknown, StringComparison.Ordinal);
        Assert.StartsWith("rules[0].options", unknown, StringComparison.Ordinal);
        Assert.Equal("rules[0].options: keywords: expected at least one keyword (rule 'keyword')", empty);
    }

    [Fact]
    public void RulesFile_TypeNotImplementingTheContract_NamesFileAndType()
    {
        using var plugins = new PluginLoader();
        var (_, error) = Build(Rules(PluginDirectory("BrokenPlugin.NotARule"), """[{"rule": "x"}]"""), plugins);

        Assert.NotNull(error);
        Assert.Contains("BrokenPlugin.NotARule.dll", error, StringComparison.Ordinal);
        Assert.Contains("BrokenPlugin.NotARule.NotARule", error, StringComparison.Ordinal);
        Assert.Contains("does not implement DeepSeekRL.Rewards.IRewardRule", error, StringComparison.Ordinal);
    }

    [Fact]
    public void RulesFile_ConstructorThrows_NamesFileTypeAndMessage()
    {
        using var plugins = new PluginLoader();
        var (_, error) = Build(Rules(PluginDirectory("BrokenPlugin.ThrowingConstructor"), """[{"rule": "throwing_ctor"}]"""), plugins);

        Assert.NotNull(error);
        Assert.Contains("BrokenPlugin.ThrowingConstructor.ThrowingRule", error, StringComparison.Ordinal);
        Assert.Contains("BrokenPlugin.ThrowingConstructor.dll", error, StringComparison.Ordinal);
        Assert.Contains("model weights not found", error, StringComparison.Ordinal);
    }

    [Fact]
    public void RulesFile_MissingDirectoryOrGarbageAssembly_ClearError()
    {
        using var plugins = new PluginLoader();
        var (_, missing) = Build("""{"plugins": "/nonexistent/plugins", "rules": [{"rule": "x"}]}""", plugins);
        Assert.Equal("plugins: directory '/nonexistent/plugins' does not exist", missing);

        var dir = Directory.CreateTempSubdirectory("deepseekrl-plugins-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "garbage.dll"), "this is not an assembly");
            var (_, garbage) = Build(Rules(dir.FullName, """[{"rule": "x"}]"""), plugins);
            Assert.NotNull(garbage);
            Assert.StartsWith($"plugins: {Path.Combine(dir.FullName, "garbage.dll")} is not a loadable .NET assembly", garbage, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static string Rules(string pluginDirectory, string rules) =>
        "{\"plugins\": " + JsonSerializer.Serialize(pluginDirectory) + ", \"rules\": " + rules + "}";

    private static (RewardPipeline? Pipeline, string? Error) Build(string json, PluginLoader plugins)
    {
        using var document = JsonDocument.Parse(json);
        return RulesFile.Build(document.RootElement, Directory.GetCurrentDirectory(), plugins);
    }
}
