using System.Text.Json;
using DeepSeekRL.Rewards.CodeExecution;
using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Tests.CodeExecution;

public sealed class CodeExecRuleTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly Dictionary<string, JsonElement> SumTests = Fields("""
        {"test_cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "10 -4\n", "output": "6"}, {"input": "0 0", "output": "0\n\n"}]}
        """);

    private static Dictionary<string, JsonElement> Fields(string json) =>
        JsonDocument.Parse(json).RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());

    private static string Completion(string code) => $"<think>\nI add the numbers.\n</think>\n\nHere:\n```python\n{code}\n```\n";

    private static async Task<RewardOutcome> ScoreAsync(string completion, IReadOnlyDictionary<string, JsonElement> fields, CodeExecRewardOptions? options = null)
    {
        var rule = new CodeExecRule(options ?? new CodeExecRewardOptions { TimeoutMsPerTest = 3000 });
        return await rule.ScoreAsync(new RewardArguments("Add two numbers.", completion, null, fields: fields), Ct);
    }

    [Fact]
    public async Task ScoreAsync_CorrectProgram_PassesEveryTest()
    {
        var outcome = await ScoreAsync(Completion("a, b = map(int, input().split())\nprint(a + b)"), SumTests);
        Assert.Equal(1.0, outcome.Value);
        Assert.Equal("3/3 tests passed", outcome.Reason);
    }

    [Fact]
    public async Task ScoreAsync_ProgramWrongOnOneTest_ScoresTheFractionOrBinary()
    {
        const string Code = "a, b = map(int, input().split())\nprint(a + b if b >= 0 else 0)";
        Assert.Equal(2.0 / 3, (await ScoreAsync(Completion(Code), SumTests)).Value!.Value, 12);
        Assert.Equal(0.0, (await ScoreAsync(Completion(Code), SumTests, new CodeExecRewardOptions { Binary = true })).Value);
    }

    [Fact]
    public async Task ScoreAsync_InfiniteLoopOnOneInput_FailsThatTestOnly()
    {
        const string Code = "a, b = map(int, input().split())\nwhile a == 10: pass\nprint(a + b)";
        var outcome = await ScoreAsync(Completion(Code), SumTests, new CodeExecRewardOptions { TimeoutMsPerTest = 500, CpuSecondsPerTest = 1 });
        Assert.Equal(2.0 / 3, outcome.Value!.Value, 12);
        Assert.Contains("first failure: timed out after 500 ms", outcome.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScoreAsync_ProgramUsesTheNetwork_HasNone()
    {
        const string Code = """
            import socket
            try:
                socket.create_connection(("1.1.1.1", 80), timeout=2)
                print("online")
            except OSError:
                a, b = map(int, input().split())
                print(a + b)
            """;
        Assert.Equal(1.0, (await ScoreAsync(Completion(Code), SumTests)).Value);
    }

    [Fact]
    public async Task ScoreAsync_ProgramWritesOutsideTmpOrReadsSecrets_IsDenied()
    {
        const string Code = """
            import os
            denied = 0
            for attempt in (lambda: open("/usr/evil", "w"), lambda: open("/root/.bashrc"), lambda: open("/etc/shadow")):
                try:
                    attempt()
                except OSError:
                    denied += 1
            open("/tmp/scratch", "w").write("fine")
            a, b = map(int, input().split())
            print(a + b if denied == 3 and os.getuid() != 0 else "escaped")
            """;
        Assert.Equal(1.0, (await ScoreAsync(Completion(Code), SumTests)).Value);
    }

    [Fact]
    public async Task ScoreAsync_MemoryBomb_FailsWithoutHurtingTheHost()
    {
        const string Code = "x = bytearray(2 * 1024 * 1024 * 1024)\nprint(len(x))";
        var outcome = await ScoreAsync(Completion(Code), SumTests, new CodeExecRewardOptions { MemoryMb = 128 });
        Assert.Equal(0.0, outcome.Value);
        Assert.Contains("MemoryError", outcome.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScoreAsync_NoCodeOrNoTests_ScoresZeroOrMissing()
    {
        Assert.Equal(0.0, (await ScoreAsync("<think>\nhmm\n</think>\n\nprint(3)", SumTests)).Value);
        Assert.True((await ScoreAsync(Completion("print(1)"), new Dictionary<string, JsonElement>())).IsMissing);
        Assert.True((await ScoreAsync(Completion("print(1)"), Fields("""{"test_cases": [{"input": 1}]}"""))).IsMissing);
    }

    [Fact]
    public async Task ScoreAsync_OpenR1VerificationInfo_IsRead()
    {
        var fields = Fields("""{"verification_info": {"language": "python", "test_cases": [{"input": "", "output": "42"}]}}""");
        Assert.Equal(1.0, (await ScoreAsync(Completion("print(6 * 7)"), fields)).Value);
    }

    [Theory]
    [InlineData("```python\nprint(1)\n```\ntext\n```py\nprint(2)\n```", "print(2)\n")]
    [InlineData("<think>\n```python\nprint(0)\n```\n</think>\n```\nprint(3)\n```", "print(3)\n")]
    [InlineData("<think>\n```python\nprint(0)\n```\n</think>\nno code here", "print(0)\n")]
    [InlineData("no fences at all", null)]
    public void ExtractLastCodeBlock_Completion_TakesTheLastFencedBlockOfTheAnswer(string completion, string? expected)
    {
        Assert.Equal(expected, CodeExecRule.ExtractLastCodeBlock(completion));
    }

    [Fact]
    public async Task Pipeline_CodeExecFromRulesJson_Scores()
    {
        using var document = JsonDocument.Parse("""{"rules": [{"rule": "code_exec", "options": {"timeout_ms_per_test": 3000}}]}""");
        using var plugins = new Plugins.PluginLoader();
        var (pipeline, error) = RulesFile.Build(document.RootElement, ".", plugins);
        Assert.Null(error);

        var results = await pipeline!.ScoreAsync([new RewardInput("q", Completion("a, b = map(int, input().split())\nprint(a + b)"), null, Fields: SumTests)], Ct);

        Assert.Equal(1.0, results[0]["code_exec"]);
    }
}
