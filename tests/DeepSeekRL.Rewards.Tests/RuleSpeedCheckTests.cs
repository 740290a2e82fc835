using System.Diagnostics;
using System.Globalization;
using DeepSeekRL.Rewards.Format;
using DeepSeekRL.Rewards.Language;

namespace DeepSeekRL.Rewards.Tests;

/// <summary>
/// A micro-check of the per-call cost of the cheap rules on a ~1 KB completion. It reports microseconds per call in
/// the test output and asserts only the scores, never timings (shared machines make timings noisy).
/// </summary>
public sealed class RuleSpeedCheckTests
{
    internal static readonly string Completion = BuildCompletion();

    private static string BuildCompletion()
    {
        const string Paragraph = "We need the number of ways to choose two items from the set, so we compute $\\binom{n}{2}$ "
            + "for n = 12, which gives 66. Let me double-check with the formula n(n-1)/2 = 12 * 11 / 2 = 66. ";
        var text = "<think>\n";
        while (text.Length < 900)
        {
            text += Paragraph;
        }

        return text + "\n</think>\n\nThe answer is $\\boxed{66}$.";
    }

    [Fact]
    public void ScoreAsync_OneKilobyteCompletion_ReportsMicrosecondsPerCall()
    {
        Assert.InRange(Completion.Length, 950, 1200);
        var format = new FormatR1Rule(new());
        var language = new LanguageConsistencyRule(new());
        Assert.Equal(1.0, format.Run(Completion));
        Assert.Equal(1.0, language.Run(Completion));

        var formatUs = Measure(format, Completion);
        var languageUs = Measure(language, Completion);

        var chinese = "<think>\n" + string.Concat(Enumerable.Repeat("我们需要从集合中选出两个元素，所以计算 $\\binom{n}{2}$，当 n = 12 时得到 66。", 20)) + "\n</think>\n答案是 66。";
        var chineseUs = Measure(new LanguageConsistencyRule(new() { Language = "zh" }), chinese);

        TestContext.Current.TestOutputHelper?.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Completion.Length} chars: format_r1 {formatUs:F2} us/call, language_consistency {languageUs:F2} us/call; {chinese.Length} chars of Chinese: language_consistency(zh) {chineseUs:F2} us/call"));
    }

    private static double Measure(IRewardRule rule, string completion)
    {
        var args = new RewardArguments(string.Empty, completion, null);
        var token = TestContext.Current.CancellationToken;
        const int Calls = 200_000;
        for (var i = 0; i < 10_000; i++)
        {
            _ = rule.ScoreAsync(args, token);
        }

        var best = double.MaxValue;
        for (var round = 0; round < 3; round++)
        {
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < Calls; i++)
            {
                _ = rule.ScoreAsync(args, token);
            }

            best = Math.Min(best, watch.Elapsed.TotalMicroseconds / Calls);
        }

        return best;
    }
}
