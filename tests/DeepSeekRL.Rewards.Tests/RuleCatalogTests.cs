using System.Text.Json;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Plugins;

namespace DeepSeekRL.Rewards.Tests;

/// <summary>Each rule of this family is discoverable by name and buildable from the rules JSON.</summary>
public sealed class RuleCatalogTests
{
    public static TheoryData<string, string> RulesWithAnOption() => new()
    {
        { "format_r1", """{"completion_includes_open_tag": false, "require_non_empty_reasoning": false}""" },
        { "format_r1_zero", """{"completion_includes_open_tag": false}""" },
        { "format_strict", "{}" },
        { "tag_count", "{}" },
        { "check_consistency", """{"quote_attempt": false}""" },
        { "code_format", """{"language": "javascript"}""" },
        { "countdown", """{"score": 1.0, "format_score": 0.1, "last_line_only": false, "require_assistant_marker": true, "python_operators": true}""" },
        { "language_consistency", """{"language": "zh", "scope": "completion", "no_words_score": 0.0}""" },
        { "mixed_language", """{"language": "ja", "tolerance": 0.1, "scope": "reasoning"}""" },
        { "repetition", """{"ngram_size": 2, "max_penalty": -0.5, "scope": "completion"}""" },
        { "paragraph_length", """{"max_words": 120}""" },
        { "code_in_reasoning", """{"max_blocks": 1}""" },
        { "markdown_in_reasoning", """{"allow_headings": true, "allow_tables": false, "max_bullet_fraction": 0.3, "min_lines": 5}""" },
        { "soft_overlong", """{"max_completion_len": 4096, "soft_punish_cache": 512}""" },
        { "reasoning_steps", """{"steps_for_full_score": 4}""" },
    };

    [Theory]
    [MemberData(nameof(RulesWithAnOption))]
    public void BuiltIn_Rule_Discoverable(string name, string options)
    {
        Assert.True(RewardRuleCatalog.BuiltIn.ContainsKey(name), $"{name} is not in the catalog");
        Assert.NotEmpty(options);
    }

    [Theory]
    [MemberData(nameof(RulesWithAnOption))]
    public void Build_RuleWithOptions_BuildsPipeline(string name, string options)
    {
        var (pipeline, error) = Build("{\"rules\": [{\"rule\": \"" + name + "\", \"weight\": 0.5, \"options\": " + options + "}]}");

        Assert.Null(error);
        Assert.Equal(name, Assert.Single(pipeline!.Rules).Name);
    }

    [Theory]
    [MemberData(nameof(RulesWithAnOption))]
    public void Build_UnknownOption_ErrorNamesIt(string name, string options)
    {
        _ = options;
        var (pipeline, error) = Build("{\"rules\": [{\"rule\": \"" + name + "\", \"options\": {\"no_such_option\": 1}}]}");

        Assert.Null(pipeline);
        Assert.Contains("no_such_option", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("language_consistency", """{"language": "xx"}""", "language:")]
    [InlineData("repetition", """{"max_penalty": 1.0}""", "max_penalty: 1 should not be positive")]
    [InlineData("soft_overlong", """{"max_completion_len": 100, "soft_punish_cache": 200}""", "soft_punish_cache:")]
    [InlineData("mixed_language", """{"tolerance": 1.5}""", "tolerance:")]
    [InlineData("markdown_in_reasoning", """{"max_bullet_fraction": -1}""", "max_bullet_fraction:")]
    public void Build_InvalidOptionValue_ErrorNamesOption(string name, string options, string expected)
    {
        var (pipeline, error) = Build("{\"rules\": [{\"rule\": \"" + name + "\", \"options\": " + options + "}]}");

        Assert.Null(pipeline);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScoreAsync_PipelineOfTheseRules_ScoresWithoutMissing()
    {
        var (pipeline, error) = Build("""{"rules": [{"rule": "format_r1"}, {"rule": "language_consistency"}, {"rule": "tag_count"}, {"rule": "repetition"}]}""");
        Assert.Null(error);

        var results = await pipeline!.ScoreAsync([new RewardInput("p", "<think>\nreasoning here\n</think>\nanswer", null)], TestContext.Current.CancellationToken);

        var result = Assert.Single(results);
        Assert.Equal(1.0, result["format_r1"]);
        Assert.Equal(1.0, result["language_consistency"]);
    }

    private static (RewardPipeline? Pipeline, string? Error) Build(string json)
    {
        using var plugins = new PluginLoader();
        using var document = JsonDocument.Parse(json);
        return RulesFile.Build(document.RootElement, AppContext.BaseDirectory, plugins);
    }
}
