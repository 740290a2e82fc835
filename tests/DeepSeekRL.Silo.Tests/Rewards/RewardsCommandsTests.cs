using System.Text.Json;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Rewards;

public sealed class RewardsCommandsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Score_MixedInput_WritesScoresRewardAndMissingAndSkipsBadLines()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-rewards-");
        try
        {
            var rules = Path.Combine(dir.FullName, "rules.json");
            var input = Path.Combine(dir.FullName, "in.jsonl");
            var output = Path.Combine(dir.FullName, "out.jsonl");
            await File.WriteAllTextAsync(rules, """
                {"rules": [
                  {"rule": "accuracy", "weight": 1.0},
                  {"rule": "format_r1", "weight": 0.5},
                  {"rule": "code_exec", "weight": 2.0}
                ]}
                """, Ct);
            await File.WriteAllLinesAsync(input,
            [
                """{"prompt": "What is 2+3?", "completion": "<think>\n2 plus 3 is 5.\n</think>\n\nThe answer is \\boxed{5}.", "answer": "5", "id": 1}""",
                "this is not json",
                """{"prompt": "What is 2+3?", "completion": "I think it is \\boxed{6}", "answer": 5, "id": 2}""",
                "",
                """{"prompt": "q", "answer": "5"}""",
                """{"prompt": "What is 1/2?", "completion": "<think>\nhalf\n</think>\n\n\\boxed{0.5}", "answer": "\\frac{1}{2}", "id": 3}""",
            ], Ct);

            var run = await CliProcess.RunAsync(["rewards", "score", "--rules", rules, "--input", input, "--out", output], null, Ct);

            Assert.True(run.ExitCode == 0, run.StandardError);
            Assert.Contains("in.jsonl line 2: invalid JSON", run.StandardError, StringComparison.Ordinal);
            Assert.Contains("in.jsonl line 5: field \"completion\" is missing or not a string", run.StandardError, StringComparison.Ordinal);
            Assert.Contains("scored 3 completions", run.StandardError, StringComparison.Ordinal);
            Assert.Contains("2 malformed lines skipped", run.StandardError, StringComparison.Ordinal);

            var rows = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal([1, 2, 3], rows.Select(r => r.GetProperty("id").GetInt32()));
            Assert.Equal(1.0, rows[0].GetProperty("scores").GetProperty("accuracy").GetDouble());
            Assert.Equal(1.0, rows[0].GetProperty("scores").GetProperty("format_r1").GetDouble());
            Assert.Equal(JsonValueKind.Null, rows[0].GetProperty("scores").GetProperty("code_exec").ValueKind);
            Assert.Equal(1.5, rows[0].GetProperty("reward").GetDouble());
            Assert.Equal(["code_exec"], rows[0].GetProperty("missing").EnumerateArray().Select(e => e.GetString()));
            Assert.Contains("test_cases", rows[0].GetProperty("missing_reasons").GetProperty("code_exec").GetString(), StringComparison.Ordinal);
            Assert.Equal(0.0, rows[1].GetProperty("scores").GetProperty("accuracy").GetDouble());
            Assert.Equal(0.0, rows[1].GetProperty("scores").GetProperty("format_r1").GetDouble());
            Assert.Equal(0.0, rows[1].GetProperty("reward").GetDouble());
            Assert.Equal(1.0, rows[2].GetProperty("scores").GetProperty("accuracy").GetDouble());
            Assert.Equal("What is 1/2?", rows[2].GetProperty("prompt").GetString());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Score_UnknownRuleOption_OneLineErrorNamingFileAndPath()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-rewards-");
        try
        {
            var rules = Path.Combine(dir.FullName, "rules.json");
            await File.WriteAllTextAsync(rules, """{"rules": [{"rule": "accuracy", "options": {"precison": 3}}]}""", Ct);
            var input = Path.Combine(dir.FullName, "in.jsonl");
            await File.WriteAllTextAsync(input, "{}\n", Ct);

            var run = await CliProcess.RunAsync(["rewards", "score", "--rules", rules, "--input", input, "--out", Path.Combine(dir.FullName, "o.jsonl")], null, Ct);

            Assert.Equal(1, run.ExitCode);
            var line = Assert.Single(CliProcess.Lines(run.StandardError));
            Assert.StartsWith($"deepseekrl: error: {rules}: rules[0].options", line, StringComparison.Ordinal);
            Assert.Contains("precison", line, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(dir.FullName, "o.jsonl")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
