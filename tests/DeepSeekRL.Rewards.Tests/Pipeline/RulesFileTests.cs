using System.Text.Json;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Plugins;

namespace DeepSeekRL.Rewards.Tests.Pipeline;

public sealed class RulesFileTests
{
    [Theory]
    [InlineData("[]", "expected a JSON object with \"rules\", got Array")]
    [InlineData("""{"rulez": []}""", "unknown key 'rulez' (expected one of: rules, plugins, parallelism)")]
    [InlineData("""{"rules": {}}""", "rules: expected an array of rule objects")]
    [InlineData("""{"rules": []}""", "rules: the list is empty; name at least one rule")]
    [InlineData("""{"rules": [42]}""", "rules[0]: expected an object like {\"rule\": \"accuracy\", \"weight\": 1.0}")]
    [InlineData("""{"rules": [{"weight": 1}]}""", "rules[0].rule: expected the rule name as a string")]
    [InlineData("""{"rules": [{"rule": "code_exec", "wieght": 1}]}""", "rules[0]: unknown key 'wieght' (expected one of: rule, name, weight, options, timeout_ms)")]
    [InlineData("""{"rules": [{"rule": "code_exec", "weight": "high"}]}""", "rules[0].weight: expected a finite number, got \"high\"")]
    [InlineData("""{"rules": [{"rule": "code_exec", "timeout_ms": 0}]}""", "rules[0].timeout_ms: expected an integer from 1 to 3600000, got 0")]
    [InlineData("""{"rules": [{"rule": "code_exec"}, {"rule": "code_exec"}]}""", "rules[1].name: 'code_exec' is already used by an earlier rule; give this one a different \"name\"")]
    [InlineData("""{"rules": [{"rule": "code_exec", "options": {"memory_mb": 1}}]}""", "rules[0].options: memory_mb = 1: expected 32 .. 65536 (rule 'code_exec')")]
    [InlineData("""{"rules": [{"rule": "code_exec", "options": {"memory_mb": "lots"}}]}""", "rules[0].options.memory_mb")]
    [InlineData("""{"rules": [{"rule": "code_exec", "options": {"memroy_mb": 64}}]}""", "memroy_mb")]
    [InlineData("""{"rules": [{"rule": "remote_reward_model", "options": {"url": "ftp://x"}}]}""", "rules[0].options: url = 'ftp://x': expected an absolute http:// or https:// URL (rule 'remote_reward_model')")]
    [InlineData("""{"parallelism": 0, "rules": [{"rule": "code_exec"}]}""", "parallelism: expected an integer from 1 to 1024, got 0")]
    public void Build_BadDocument_ErrorNamesThePath(string json, string expected)
    {
        using var document = JsonDocument.Parse(json);
        using var plugins = new PluginLoader();

        var (pipeline, error) = RulesFile.Build(document.RootElement, ".", plugins);

        Assert.Null(pipeline);
        Assert.NotNull(error);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error);
    }

    [Fact]
    public void Build_UnknownRule_ListsTheKnownOnes()
    {
        using var document = JsonDocument.Parse("""{"rules": [{"rule": "acuracy"}]}""");
        using var plugins = new PluginLoader();

        var (_, error) = RulesFile.Build(document.RootElement, ".", plugins);

        Assert.StartsWith("rules[0].rule: unknown rule 'acuracy' (known: ", error, StringComparison.Ordinal);
        Assert.Contains("code_exec", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_FileProblems_NameTheFile()
    {
        using var plugins = new PluginLoader();
        Assert.Equal("/nonexistent/rules.json: file not found", RulesFile.Load("/nonexistent/rules.json", plugins).Error);

        var path = Path.Combine(Path.GetTempPath(), $"rules-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, "{\"rules\": [\n{\"rule\": }");
            var (_, error) = RulesFile.Load(path, plugins);
            Assert.StartsWith($"{path}: invalid JSON at line 2", error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Build_SameRuleTwiceWithNames_BuildsBothWithTheirOwnOptionsAndTimeouts()
    {
        using var document = JsonDocument.Parse("""
            {"rules": [
              {"rule": "code_exec", "name": "tests_fraction", "weight": 1.0},
              {"rule": "code_exec", "name": "tests_binary", "weight": 0.5, "options": {"binary": true}, "timeout_ms": 1234}
            ]}
            """);
        using var plugins = new PluginLoader();

        var (pipeline, error) = RulesFile.Build(document.RootElement, ".", plugins);

        Assert.Null(error);
        Assert.Equal(["tests_fraction", "tests_binary"], pipeline!.Rules.Select(r => r.Name));
        Assert.Equal([1.0, 0.5], pipeline.Rules.Select(r => r.Weight));
        Assert.Equal(TimeSpan.FromMilliseconds(1234), pipeline.Rules[1].Timeout);
        Assert.Equal(TimeSpan.FromSeconds(100), pipeline.Rules[0].Timeout);
    }
}
