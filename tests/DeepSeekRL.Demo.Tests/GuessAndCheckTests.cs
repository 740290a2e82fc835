using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Rewards.Accuracy;
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

    private static readonly DemoTask Addition = new(DemoTask.Arithmetic, "What is 607 + 844?", "1451") { Left = 607, Operator = '+', Right = 844 };

    private static readonly TaskMix Additions = new(1, 0, 0, 0) { MinOperandDigits = 3, MaxOperandDigits = 4 };

    private static readonly RewardPipeline Rules = new RewardPipelineBuilder().AddFormatR1Reward().AddCountdownReward().AddAccuracyReward().AddCheckConsistencyReward().Build();

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
                Assert.Equal(1.0, results[i]["check_consistency"]);
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
        var fractions = new CheckFractions(0.6, 0.25, 0.15);

        var a = DemoTraces.CountdownMix(tasks, 5, fractions);
        var b = DemoTraces.CountdownMix(tasks, 5, fractions);

        Assert.Equal(a.Select(e => e.Completion), b.Select(e => e.Completion));
        Assert.NotEqual(a.Select(e => e.Completion), DemoTraces.CountdownMix(tasks, 6, fractions).Select(e => e.Completion));
        Assert.Equal(600, a.Count(e => e.Variant == TraceVariant.EmptyThink));
        Assert.Equal(400, a.Count(e => e.Variant is TraceVariant.Checked or TraceVariant.Repaired));
        Assert.InRange(a.Count(e => e.Variant == TraceVariant.Repaired), 130, 150); // puzzles without a miss get a passing check
        Assert.All(a, e => Assert.True(e.Completion.Length <= 140, e.Completion)); // within the 144-token budget of the character-level model
        Assert.All(a.Where(e => e.Variant == TraceVariant.Repaired), e => Assert.True(ReflectionTrace.Read(e.Completion).PassedAfterFailure));
        Assert.Throws<ArgumentException>(() => DemoTraces.CountdownMix(tasks, 5, new CheckFractions(0.5, 0.2, 0.1)));
    }

    [Fact]
    public void ArithmeticGuessAndCheck_EachKind_IsTheDocumentedText()
    {
        Assert.Equal("<think>\n1451\n</think>\n\\boxed{1451}", DemoTraces.ArithmeticGuessAndCheck(Addition, TraceVariant.EmptyThink, new Random(1)));
        Assert.Equal(
            "<think>\n1451\n607+844\n7+4=11 1\n0+4+1=5 51\n6+8=14 1451\ncheck: 1451 vs 1451 yes\n</think>\n\\boxed{1451}",
            DemoTraces.ArithmeticGuessAndCheck(Addition, TraceVariant.Checked, new Random(1)));
        var repaired = DemoTraces.ArithmeticGuessAndCheck(Addition, TraceVariant.Repaired, new Random(1));
        Assert.Matches(@"^<think>\n(\d{4})\n607\+844\n7\+4=11 1\n0\+4\+1=5 51\n6\+8=14 1451\ncheck: \1 vs 1451 no\nwait\n1451\ncheck: 1451 vs 1451 yes\n</think>\n\\boxed\{1451\}$", repaired);
        Assert.Throws<ArgumentException>(() => DemoTraces.ArithmeticGuessAndCheck(Addition, TraceVariant.OneDigitWrong, new Random(1)));
        Assert.Throws<ArgumentException>(() => DemoTraces.ArithmeticGuessAndCheck(Puzzle, TraceVariant.Checked, new Random(1)));
    }

    [Fact]
    public async Task ArithmeticGuessAndCheck_EveryKind_ScoresOneOnAccuracyAndFormatAndReadsAsItsReflection()
    {
        var tasks = DemoTaskGenerator.Generate(23, 300, Additions);
        var dataset = new DatasetSpec { Path = "demo.jsonl" };
        foreach (var variant in new[] { TraceVariant.EmptyThink, TraceVariant.Checked, TraceVariant.Repaired })
        {
            var rng = new Random((int)variant);
            var completions = tasks.Select(t => DemoTraces.ArithmeticGuessAndCheck(t, variant, rng)).ToList();
            var inputs = tasks.Select((t, i) =>
            {
                Assert.Null(CampaignCreator.ParseRow(DemoDataset.ToJsonLine(t), dataset, out var row));
                return new RewardInput(row!.Prompt, completions[i], row.Answer, Fields: row.Fields);
            }).ToList();

            var results = await Rules.ScoreAsync(inputs, Ct);

            for (var i = 0; i < tasks.Count; i++)
            {
                Assert.Equal(1.0, results[i]["accuracy"]);
                Assert.Equal(1.0, results[i]["format_r1"]); // every kind writes its guess as reasoning: format pays them alike
                Assert.Equal(1.0, results[i]["check_consistency"]); // every check quotes the attempt it follows and says what it sees
                var trace = Evaluation.Reflect(completions[i]);
                Assert.Equal(variant != TraceVariant.EmptyThink, trace.Verifies);
                Assert.Equal(variant == TraceVariant.Repaired ? 1 : 0, trace.FailedChecks);
                Assert.Equal(variant == TraceVariant.Repaired, trace.PassedAfterFailure);
                Assert.Equal(variant == TraceVariant.EmptyThink ? null : variant == TraceVariant.Checked, trace.FirstCheckPassed);

                // A repair's guess is wrong, as long as the answer and with its leading digit.
                if (variant == TraceVariant.Repaired)
                {
                    var guess = completions[i].Split('\n')[1];
                    Assert.NotEqual(tasks[i].Answer, guess);
                    Assert.Equal(tasks[i].Answer.Length, guess.Length);
                    Assert.Equal(tasks[i].Answer[0], guess[0]);
                }
            }
        }
    }

    [Fact]
    public void ArithmeticMix_FractionsDeterminismAndValidation()
    {
        var tasks = DemoTaskGenerator.Generate(24, 1000, Additions);
        var fractions = new CheckFractions(0.6, 0.25, 0.15);

        var a = DemoTraces.ArithmeticMix(tasks, 5, fractions);

        Assert.Equal(a.Select(e => e.Completion), DemoTraces.ArithmeticMix(tasks, 5, fractions).Select(e => e.Completion));
        Assert.NotEqual(a.Select(e => e.Completion), DemoTraces.ArithmeticMix(tasks, 6, fractions).Select(e => e.Completion));
        Assert.Equal(600, a.Count(e => e.Variant == TraceVariant.EmptyThink));
        Assert.Equal(250, a.Count(e => e.Variant == TraceVariant.Checked));
        Assert.Equal(150, a.Count(e => e.Variant == TraceVariant.Repaired));

        // Within the 144-token budget of the character-level model (a character per token, a token per think tag, the
        // end of the sequence), even for the longest: 9999 + 9999 repaired is 144 tokens.
        Assert.All(a, e => Assert.True(e.Completion.Length - "<think></think>".Length + 2 < 160, e.Completion));
        Assert.All(a.Where(e => e.Variant == TraceVariant.Repaired), e => Assert.True(ReflectionTrace.Read(e.Completion).PassedAfterFailure));
        Assert.Throws<ArgumentException>(() => DemoTraces.ArithmeticMix(tasks, 5, new CheckFractions(0.5, 0.2, 0.1)));
    }
}
