using System.Text.Json;
using DeepSeekRL.Rewards.Countdown;

namespace DeepSeekRL.Rewards.Tests;

public sealed class CountdownRuleTests
{
    private static readonly CountdownRule Rule = new(new());

    private static Dictionary<string, JsonElement> Problem(string target, string numbers) => new()
    {
        ["target"] = JsonDocument.Parse(target).RootElement.Clone(),
        ["numbers"] = JsonDocument.Parse(numbers).RootElement.Clone(),
    };

    [Theory]
    [InlineData("1 + 2 * 3", 7)]
    [InlineData("(1 + 2) * 3", 9)]
    [InlineData("8 / 4 / 2", 1)]
    [InlineData("7 / 2", 3.5)]
    [InlineData("2 - 3 - 4", -5)]
    [InlineData("-3 + 5", 2)]
    [InlineData("- - 3", 3)]
    [InlineData("((2))", 2)]
    [InlineData("1.5 * 2", 3)]
    [InlineData(".5 + 5.", 5.5)]
    [InlineData("00 + 1", 1)]
    public void TryEvaluate_ValidEquation_TrueDivisionAndPythonPrecedence(string equation, double expected)
    {
        Assert.True(CountdownEquation.TryEvaluate(equation, pythonOperators: false, out var value));
        Assert.Equal(expected, value, 12);
    }

    [Theory]
    [InlineData("")]
    [InlineData("()")]
    [InlineData("1 +")]
    [InlineData("(1 + 2")]
    [InlineData("1 + 2)")]
    [InlineData("2 3")]
    [InlineData("2(3)")]
    [InlineData("1.2.3")]
    [InlineData("05")]
    [InlineData("5 / 0")]
    [InlineData("5 / (2 - 2)")]
    [InlineData("2 ** 3")]
    [InlineData("7 // 2")]
    [InlineData("2 * * 3")]
    public void TryEvaluate_InvalidEquation_Fails(string equation) =>
        Assert.False(CountdownEquation.TryEvaluate(equation, pythonOperators: false, out _));

    [Theory]
    [InlineData("2 ** 3", 8)]
    [InlineData("-2 ** 2", -4)]
    [InlineData("2 ** 3 ** 2", 512)]
    [InlineData("7 // 2", 3)]
    [InlineData("-7 // 2", -4)]
    public void TryEvaluate_PythonOperators_EvaluatesAsPython(string equation, double expected)
    {
        Assert.True(CountdownEquation.TryEvaluate(equation, pythonOperators: true, out var value));
        Assert.Equal(expected, value, 12);
    }

    [Fact]
    public void TryEvaluate_DeepNesting_FailsWithoutStackOverflow() =>
        Assert.False(CountdownEquation.TryEvaluate(new string('(', 100_000) + "1" + new string(')', 100_000), false, out _));

    [Theory]
    [InlineData("<think>\nr\n</think>\n<answer>44 + 19 + 35</answer>", 1.0)]
    [InlineData("<answer> (44 + 35) + 19 </answer>", 1.0)]
    [InlineData("<answer>44 + 19 + 35</answer>\n", 0.0)]
    [InlineData("<answer>44 + 19 + 35 = 98</answer>", 0.1)]
    [InlineData("<answer>44 × 19</answer>", 0.1)]
    [InlineData("<answer></answer>", 0.1)]
    [InlineData("<answer>44 + 19 + 35", 0.0)]
    [InlineData("", 0.0)]
    public void Score_CompletionOnly_TinyZeroSemantics(string completion, double expected) =>
        Assert.Equal(expected, Rule.Run(completion, null, Problem("98", "[44, 19, 35]")));

    [Fact]
    public void Score_AnswerSpanningLinesWhenLastLineOff_Accepted()
    {
        var rule = new CountdownRule(new() { LastLineOnly = false });

        Assert.Equal(1.0, rule.Run("<answer>\n44 + 19 + 35\n</answer>\n", null, Problem("98", "[44, 19, 35]")));
    }

    [Fact]
    public void Score_GroundTruthObject_ReadsTargetAndNumbers()
    {
        var fields = new Dictionary<string, JsonElement> { ["ground_truth"] = JsonDocument.Parse("""{"target": 4, "numbers": [3, 5, 2]}""").RootElement.Clone() };

        Assert.Equal(1.0, Rule.Run("<answer>(3 + 5) / 2</answer>", null, fields));
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("\"98\"", "[44, 19, 35]")]
    [InlineData("98", "[44, 19.5]")]
    [InlineData("98", "\"44,19\"")]
    public void Score_MissingOrMalformedProblem_Missing(string? target, string? numbers)
    {
        var fields = target is null ? new Dictionary<string, JsonElement>() : Problem(target, numbers!);

        Assert.True(Rule.Outcome("<answer>44 + 19 + 35</answer>", null, fields).IsMissing);
    }

    [Fact]
    public void Validate_NonFiniteScore_NamesOption() =>
        Assert.StartsWith("format_score:", new CountdownRewardOptions { FormatScore = double.NaN }.Validate(), StringComparison.Ordinal);
}
