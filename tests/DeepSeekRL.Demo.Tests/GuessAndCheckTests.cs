using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Rewards.Countdown;
using DeepSeekRL.Rewards.Format;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Reflection;

namespace DeepSeekRL.Demo.Tests;

public sealed class GuessAndCheckTests
{
    private static readonly TaskMix Small = TaskMix.CountdownOnly with { SmallCountdown = true };

    private static readonly DemoTask Puzzle = new(DemoTask.Countdown, "Using the numbers 8, 4, 7 in this order, make 25 with + - * (each number exactly once).", "25")
    {
        Numbers = [8, 4, 7], Target = 25, Solution = "8 * 4 - 7", Small = true,
    };

    private static readonly RewardPipeline Rules = new RewardPipelineBuilder().AddFormatR1Reward().AddCountdownReward().Build();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void GuessAndCheck_EachKind_IsTheDocumentedText()
    {
        Assert.Equal("<think>\n8*4-7\n</think>\n<answer>8 * 4 - 7</answer>", DemoTraces.GuessAndCheck(Puzzle, 0, false, new Random(1)));
        Assert.Equal("<think>\n8*4-7\ncheck: 8*4=32 32-7=25 vs 25 yes\n</think>\n<answer>8 * 4 - 7</answer>", DemoTraces.GuessAndCheck(Puzzle, 0, true, new Random(1)));
        var repaired = DemoTraces.GuessAndCheck(Puzzle, 1, false, new Random(1));
        Assert.Matches(@"^<think>\n\d[-+*]\d[-+]\d\ncheck: \d[-+*]\d=\d+ \d+[-+]\d=\d+ vs 25 no\nwait\n8\*4-7\ncheck: 8\*4=32 32-7=25 vs 25 yes\n</think>\n<answer>8 \* 4 - 7</answer>$", repaired);
    }

    [Fact]
    public async Task GuessAndCheck_EveryKind_ScoresOneOnCountdownAndFormatAndReadsAsItsReflection()
    {
        var tasks = DemoTaskGenerator.Generate(21, 200, Small);
        var dataset = new DatasetSpec { Path = "demo.jsonl" };
        foreach (var (failed, check) in new[] { (0, false), (0, true), (1, true), (2, true) })
        {
            var rng = new Random(failed * 10 + (check ? 1 : 0));
            var completions = tasks.Select(t => DemoTraces.GuessAndCheck(t, failed, check, rng)).ToList();
            var inputs = tasks.Select((t, i) =>
            {
                Assert.Null(CampaignCreator.ParseRow(DemoDataset.ToJsonLine(t), dataset, out var row));
                return new RewardInput(row!.Prompt, completions[i], row.Answer, Fields: row.Fields);
            }).ToList();

            var results = await Rules.ScoreAsync(inputs, Ct);

            for (var i = 0; i < tasks.Count; i++)
            {
                Assert.Equal(1.0, results[i]["countdown"]);
                Assert.Equal(1.0, results[i]["format_r1"]); // every kind reasons: format pays them alike
                var misses = CountdownTrial.All(tasks[i].Numbers!).Count(t => t.Value != tasks[i].Target);
                var expectedFailed = Math.Min(failed, misses);
                var trace = Evaluation.Reflect(completions[i]);
                Assert.Equal(check || expectedFailed > 0, trace.Verifies);
                Assert.Equal(expectedFailed, trace.FailedChecks);
                Assert.Equal(expectedFailed > 0, trace.PassedAfterFailure);
                Assert.Equal(check || expectedFailed > 0 ? expectedFailed == 0 : null, trace.FirstCheckPassed);
            }
        }
    }

    [Fact]
    public void CountdownMix_FractionsDeterminismAndValidation()
    {
        var tasks = DemoTaskGenerator.Generate(22, 1000, Small);
        var fractions = new CountdownFractions(0.6, 0.25, 0.15);

        var a = DemoTraces.CountdownMix(tasks, 5, fractions);
        var b = DemoTraces.CountdownMix(tasks, 5, fractions);

        Assert.Equal(a.Select(e => e.Completion), b.Select(e => e.Completion));
        Assert.NotEqual(a.Select(e => e.Completion), DemoTraces.CountdownMix(tasks, 6, fractions).Select(e => e.Completion));
        Assert.Equal(600, a.Count(e => e.Variant == TraceVariant.EmptyThink));
        Assert.Equal(400, a.Count(e => e.Variant is TraceVariant.Checked or TraceVariant.Repaired));
        Assert.InRange(a.Count(e => e.Variant == TraceVariant.Repaired), 130, 150); // puzzles without a miss get a passing check
        Assert.All(a, e => Assert.True(e.Completion.Length <= 140, e.Completion)); // within the 144-token budget of the character-level model
        Assert.All(a.Where(e => e.Variant == TraceVariant.Repaired), e => Assert.True(ReflectionTrace.Read(e.Completion).PassedAfterFailure));
        Assert.Throws<ArgumentException>(() => DemoTraces.CountdownMix(tasks, 5, new CountdownFractions(0.5, 0.2, 0.1)));
    }
}
