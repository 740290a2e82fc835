using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Rewards.Accuracy;

namespace DeepSeekRL.Rewards.Tests.Accuracy;

public sealed class MathVerifierTests(ITestOutputHelper output)
{
    private static MathVerifyOptions OptionsFor(JsonElement row)
    {
        var extraction = AnswerExtraction.All;
        if (row.TryGetProperty("extraction", out var ex) && ex.ValueKind == JsonValueKind.Array)
        {
            extraction = 0;
            foreach (var e in ex.EnumerateArray())
            {
                extraction |= e.GetString() == "latex" ? AnswerExtraction.Latex : AnswerExtraction.Expression;
            }
        }

        return new MathVerifyOptions
        {
            Extraction = extraction,
            Precision = row.TryGetProperty("precision", out var p) && p.ValueKind == JsonValueKind.Number ? p.GetInt32() : 6,
            Strict = !row.TryGetProperty("strict", out var s) || s.ValueKind != JsonValueKind.False,
            AllowSetRelationComparison = row.TryGetProperty("allow_set_relation_comp", out var a) && a.ValueKind == JsonValueKind.True,
            TimeLimit = TimeSpan.FromSeconds(5),
        };
    }

    [Fact]
    public void Verify_MathVerifyCases_AgreesOnAtLeast95PercentAndDisagreementsAreTheDocumentedSet()
    {
        var rows = TestData.ReadJsonLines("math-verify-cases.jsonl");
        var perCategory = new SortedDictionary<string, (int Agree, int Total)>(StringComparer.Ordinal);
        var disagreements = new List<(int Row, string Category, bool Expected, string Reason)>();
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            if (row.Str("kind") != "verify")
            {
                continue;
            }

            var expected = row.GetProperty("expected").GetBoolean();
            var result = MathVerifier.Verify(row.Str("gold") ?? string.Empty, row.Str("pred") ?? string.Empty, OptionsFor(row), TestContext.Current.CancellationToken);
            var category = row.Str("category")!;
            var agree = result.IsEqual == expected;
            var (a, t) = perCategory.GetValueOrDefault(category);
            perCategory[category] = (a + (agree ? 1 : 0), t + 1);
            if (!agree)
            {
                disagreements.Add((i, category, expected, result.Status + ": " + result.Reason));
            }
        }

        var total = perCategory.Values.Sum(v => v.Total);
        var agreeAll = perCategory.Values.Sum(v => v.Agree);
        var report = new StringBuilder();
        foreach (var (category, (agree, count)) in perCategory)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"{category,-45} {agree,4}/{count,-4} {100.0 * agree / count,6:F1}%");
        }

        report.AppendLine(CultureInfo.InvariantCulture, $"{"overall",-45} {agreeAll,4}/{total,-4} {100.0 * agreeAll / total,6:F1}%");
        output.WriteLine(report.ToString());
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, "math-verify-agreement.txt"), report.ToString());

        var actual = new StringBuilder();
        foreach (var d in disagreements)
        {
            actual.AppendLine(JsonSerializer.Serialize(new { row = d.Row, category = d.Category, expected = d.Expected, ours = d.Reason }));
        }

        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, "math-verify-disagreements.actual.jsonl"), actual.ToString());
        foreach (var d in disagreements)
        {
            output.WriteLine($"disagree row {d.Row} [{d.Category}] expected {d.Expected}: {d.Reason}");
        }

        Assert.True(agreeAll >= 0.95 * total, $"agreement {agreeAll}/{total} is below 95%");
        var documented = TestData.ReadJsonLines("math-verify-disagreements.jsonl").Select(r => r.GetProperty("row").GetInt32()).Order().ToArray();
        Assert.Equal(documented, disagreements.Select(d => d.Row).Order().ToArray());
    }

    [Theory]
    [InlineData("\\boxed{1}", "1")]
    [InlineData("final answer is $9999$, \\boxed{1}", "9999")]
    [InlineData("The answer is A.", "A")]
    [InlineData("<think>so 3</think> The result is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}")]
    [InlineData("<answer>42</answer>", "42")]
    [InlineData("Janet makes 9 * 2 = $18.\n#### 18", "18")]
    [InlineData("No valid answer here", null)]
    [InlineData("<think>never closed 5", null)]
    public void ExtractAnswer_MathVerifyParseRowsAndAnchors_FindsTheFinalAnswer(string completion, string? expected)
    {
        Assert.Equal(expected, MathVerifier.ExtractAnswer(completion));
    }

    [Fact]
    public void VerifyAnswers_MalformedFrac12_IsRepairedToOneHalf()
    {
        Assert.True(MathVerifier.VerifyAnswers("1/2", "$\\frac12$", null, TestContext.Current.CancellationToken).IsEqual);
    }

    [Theory]
    [InlineData("10", "$\\sqrt{2}^{2} \\cdot 5$", true)]
    [InlineData("x^2+2x+1", "(x+1)^2", true)]
    [InlineData("x^2+2x+1", "(x-1)^2", false)]
    [InlineData("\\{1,2\\}", "\\{2,1\\}", true)]
    [InlineData("(1,2)", "(2,1)", false)]
    [InlineData("[0,1)", "[0,1]", false)]
    [InlineData("5", "x = 5", true)]
    [InlineData("a \\le b", "b \\ge a", true)]
    [InlineData("1.5e3", "1500", true)]
    [InlineData("\\frac{\\pi}{2}", "\\frac{1}{2}\\pi", true)]
    [InlineData("2\\sqrt{3}", "\\sqrt{12}", true)]
    [InlineData("7425000", "7{,}425{,}000", true)]
    [InlineData("30^\\circ", "30", true)]
    [InlineData("12 \\text{ cm}", "12", true)]
    public void VerifyAnswers_EquivalenceCases_MatchExpectation(string gold, string pred, bool expected)
    {
        Assert.Equal(expected, MathVerifier.VerifyAnswers(gold, pred, null, TestContext.Current.CancellationToken).IsEqual);
    }

    [Fact]
    public void Verify_HugeNestedExpression_TimesOutQuickly()
    {
        var huge = string.Concat(Enumerable.Repeat("x+", 400_000)) + "x";
        var options = new MathVerifyOptions { TimeLimit = TimeSpan.FromMilliseconds(20) };
        var sw = Stopwatch.StartNew();
        var result = MathVerifier.VerifyAnswers(huge, huge + "+1", options, TestContext.Current.CancellationToken);
        sw.Stop();
        Assert.Equal(MathVerifyStatus.TimedOut, result.Status);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"took {sw.Elapsed}");
    }

    [Fact]
    public void Verify_PowerTower_DoesNotHang()
    {
        var tower = string.Concat(Enumerable.Repeat("2^{", 300)) + "2" + new string('}', 300);
        var sw = Stopwatch.StartNew();
        var result = MathVerifier.VerifyAnswers(tower, "\\boxed{5}", null, TestContext.Current.CancellationToken);
        sw.Stop();
        Assert.NotEqual(MathVerifyStatus.Equal, result.Status);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"took {sw.Elapsed}");
    }

    [Fact]
    public void Verify_UnparsableGold_IsGoldUnparsable()
    {
        var result = MathVerifier.Verify("unparseable_latex", "\\boxed{answer}", null, TestContext.Current.CancellationToken);
        Assert.Equal(MathVerifyStatus.GoldUnparsable, result.Status);
    }

    [Fact]
    public void Verify_SimpleGsm8kCompletion_TakesMicroseconds()
    {
        var completion = string.Concat(Enumerable.Repeat("Janet sells 16 - 3 - 4 = 9 duck eggs a day. ", 22)) + "She makes 9 * 2 = $18 every day.\nThe answer is 18.";
        var ct = TestContext.Current.CancellationToken;
        for (var i = 0; i < 2000; i++)
        {
            MathVerifier.Verify("18", completion, null, ct);
        }

        const int N = 20000;
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < N; i++)
        {
            Assert.True(MathVerifier.Verify("18", completion, null, ct).IsEqual);
        }

        sw.Stop();
        var us = sw.Elapsed.TotalMicroseconds / N;
        output.WriteLine($"verify of a {completion.Length}-char GSM8K completion: {us:F2} µs");
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, "verify-timing.txt"), $"{us:F2} us per verify, {completion.Length} chars\n");
        Assert.True(us < 200, $"{us} µs per verify");
    }
}
