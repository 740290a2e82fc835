using System.Globalization;
using System.Text.RegularExpressions;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Grains.Demo;
using DeepSeekRL.Rewards.Accuracy;
using DeepSeekRL.Rewards.Countdown;
using DeepSeekRL.Rewards.Format;
using DeepSeekRL.Rewards.Language;
using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Grains.Tests.Demo;

public sealed partial class DemoTracesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly RewardPipeline Rules = new RewardPipelineBuilder()
        .AddFormatR1Reward()
        .AddAccuracyReward()
        .AddLanguageConsistencyReward()
        .AddCountdownReward()
        .Build();

    [GeneratedRegex(@"(\d+(?: [-+*/] \d+)+) = (\d+)")]
    private static partial Regex EquationRegex();

    [GeneratedRegex(@"write (?:the carry )?(\d)")]
    private static partial Regex WriteRegex();

    [Fact]
    public void Full_Addition_MatchesTheWorkedExample()
    {
        var task = new DemoTask(DemoTask.Arithmetic, "What is 347 + 289?", "636") { Left = 347, Operator = '+', Right = 289 };

        Assert.Equal(
            "<think>\nWe add 347 + 289 column by column, starting from the ones.\n"
            + "ones: 7 + 9 = 16, write 6 carry 1\ntens: 4 + 8 + 1 = 13, write 3 carry 1\nhundreds: 3 + 2 + 1 = 6, write 6\n"
            + "So 347 + 289 = 636.\n</think>\nThe answer is \\boxed{636}.",
            DemoTraces.Full(task));
    }

    [Fact]
    public void Full_SubtractionAndMultiplication_ShowBorrowsAndCarries()
    {
        var sub = new DemoTask(DemoTask.Arithmetic, "What is 503 - 78?", "425") { Left = 503, Operator = '-', Right = 78 };
        var mul = new DemoTask(DemoTask.Arithmetic, "What is 347 * 6?", "2082") { Left = 347, Operator = '*', Right = 6 };

        Assert.Equal(
            ["We subtract 503 - 78 column by column, starting from the ones.",
             "ones: 3 is less than 8, borrow 10: 13 - 8 = 5, write 5 borrow 1",
             "tens: 0 - 1 = -1 is less than 7, borrow 10: 9 - 7 = 2, write 2 borrow 1",
             "hundreds: 5 - 1 - 0 = 4, write 4",
             "So 503 - 78 = 425."],
            DemoTraces.WorkedSteps(sub));
        Assert.Equal(
            ["We multiply 347 * 6 column by column, starting from the ones.",
             "ones: 7 * 6 = 42, write 2 carry 4",
             "tens: 4 * 6 + 4 = 28, write 8 carry 2",
             "hundreds: 3 * 6 + 2 = 20, write 0 carry 2",
             "thousands: write the carry 2",
             "So 347 * 6 = 2082."],
            DemoTraces.WorkedSteps(mul));
    }

    [Fact]
    public void Full_Arithmetic_EveryStepIsRightAndTheDigitsMakeTheAnswer()
    {
        foreach (var task in DemoTaskGenerator.Generate(21, 1500, TaskMix.ArithmeticOnly))
        {
            var steps = DemoTraces.WorkedSteps(task);
            var columns = steps.Skip(1).Take(steps.Count - 2).ToList();
            Assert.All(columns, line => AssertEquationsHold(line, task.Prompt));
            var digits = columns.Select(line => WriteRegex().Match(line)).Where(m => m.Success).Select(m => m.Groups[1].Value).Reverse();
            Assert.Equal(task.Answer, string.Concat(digits).TrimStart('0'));
            Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"So {task.Left} {task.Operator} {task.Right} = {task.Answer}."), steps[^1]);
        }
    }

    [Fact]
    public void Full_Countdown_EveryStepIsRightAndReachesTheTarget()
    {
        foreach (var task in DemoTaskGenerator.Generate(22, 500, TaskMix.CountdownOnly))
        {
            var steps = DemoTraces.WorkedSteps(task);
            var operations = steps.Skip(1).Take(steps.Count - 2).ToList();
            Assert.Equal(task.Numbers!.Length - 1, operations.Count);
            Assert.All(operations, line => AssertEquationsHold(line, task.Prompt));
            Assert.EndsWith(string.Create(CultureInfo.InvariantCulture, $" = {task.Target}"), operations[^1], StringComparison.Ordinal);
            Assert.EndsWith(string.Create(CultureInfo.InvariantCulture, $"<answer>{task.Solution}</answer>"), DemoTraces.Full(task), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Full_Arithmetic_ScoresOneOnFormatAccuracyAndLanguage()
    {
        var tasks = DemoTaskGenerator.Generate(31, 300, TaskMix.ArithmeticOnly);

        var results = await Score(tasks, DemoTraces.Full);

        Assert.All(results, r =>
        {
            Assert.Equal(1.0, r["format_r1"]);
            Assert.Equal(1.0, r["accuracy"]);
            Assert.Equal(1.0, r["language_consistency"]);
        });
    }

    [Fact]
    public async Task OneDigitWrong_Arithmetic_ScoresZeroOnAccuracyAndOneOnFormat()
    {
        var tasks = DemoTaskGenerator.Generate(32, 300, TaskMix.ArithmeticOnly);

        var results = await Score(tasks, t => DemoTraces.OneDigitWrong(t, seed: 5));

        Assert.All(results, r =>
        {
            Assert.Equal(1.0, r["format_r1"]);
            Assert.Equal(0.0, r["accuracy"]);
            Assert.Equal(1.0, r["language_consistency"]);
        });
    }

    [Fact]
    public void OneDigitWrong_Arithmetic_DiffersFromFullInExactlyOneColumn()
    {
        foreach (var task in DemoTaskGenerator.Generate(33, 500, TaskMix.ArithmeticOnly))
        {
            var full = DemoTraces.Full(task).Split('\n');
            var wrong = DemoTraces.OneDigitWrong(task, seed: task.Left).Split('\n');
            Assert.Equal(full.Length, wrong.Length);
            var differing = Enumerable.Range(0, full.Length).Where(i => full[i] != wrong[i]).ToList();

            // The column, the "So ..." line and the boxed answer; the carry written on the column is unchanged.
            Assert.Equal(3, differing.Count);
            Assert.Equal(WriteRegex().Match(full[differing[0]]).Index, WriteRegex().Match(wrong[differing[0]]).Index);
            Assert.Equal(Carry(full[differing[0]]), Carry(wrong[differing[0]]));
            Assert.NotEqual(task.Answer, BoxedOf(wrong[^1]));
        }

        static string Carry(string line) => line.Contains(" carry ", StringComparison.Ordinal) || line.Contains(" borrow 1", StringComparison.Ordinal) ? line[^1..] : "";
    }

    [Fact]
    public async Task EmptyThink_ScoresOneOnAccuracyAndZeroOnFormatR1()
    {
        var tasks = DemoTaskGenerator.Generate(34, 200, TaskMix.ArithmeticOnly);

        var results = await Score(tasks, DemoTraces.EmptyThink);

        Assert.StartsWith("<think>\n</think>\nThe answer is \\boxed{", DemoTraces.EmptyThink(tasks[0]), StringComparison.Ordinal);
        // format_r1 requires non-empty reasoning by default (RequireNonEmptyReasoning), so an empty think block fails it.
        Assert.All(results, r =>
        {
            Assert.Equal(1.0, r["accuracy"]);
            Assert.Equal(0.0, r["format_r1"]);
        });
    }

    [Fact]
    public async Task Countdown_FullScoresOneOnCountdownAndFormat_WrongDoesNot()
    {
        var tasks = DemoTaskGenerator.Generate(35, 300, TaskMix.CountdownOnly);

        var full = await Score(tasks, DemoTraces.Full);
        var empty = await Score(tasks, DemoTraces.EmptyThink);
        var wrong = await Score(tasks, t => DemoTraces.OneDigitWrong(t, seed: 3));

        Assert.All(full, r =>
        {
            Assert.Equal(1.0, r["countdown"]);
            Assert.Equal(1.0, r["format_r1"]);
            Assert.Equal(1.0, r["language_consistency"]);
        });
        Assert.All(empty, r => Assert.Equal(1.0, r["countdown"]));
        Assert.All(wrong, r =>
        {
            Assert.Equal(0.1, r["countdown"]); // an answer that is present but wrong gets the format score
            Assert.Equal(1.0, r["format_r1"]);
        });
    }

    [Fact]
    public void OneDigitWrong_Countdown_StepsStayRightButMisreadOneNumber()
    {
        foreach (var task in DemoTaskGenerator.Generate(36, 300, TaskMix.CountdownOnly))
        {
            var completion = DemoTraces.OneDigitWrong(task, seed: 9);
            var lines = completion.Split('\n');
            var operations = lines.Skip(2).TakeWhile(l => !l.StartsWith("So ", StringComparison.Ordinal)).ToList();
            Assert.All(operations, line => AssertEquationsHold(line, task.Prompt));
            var equation = Regex.Match(lines[^1], "<answer>(.*)</answer>").Groups[1].Value;
            var misread = CountdownExpression.Parse(equation);
            Assert.NotEqual(task.Target, misread.Evaluate());
            var given = task.Numbers!.Select(n => (long)n).ToList();
            var misreadNumbers = misread.Leaves().ToList();
            foreach (var n in given)
            {
                misreadNumbers.Remove(n);
            }

            Assert.Single(misreadNumbers); // exactly one number is not one of the given ones
        }
    }

    [Fact]
    public void SftMix_FractionsAndDeterminism()
    {
        var tasks = DemoTaskGenerator.Generate(41, 1000, TaskMix.Default);
        var fractions = new SftFractions(0.7, 0.2, 0.1);

        var a = DemoTraces.SftMix(tasks, 5, fractions);
        var b = DemoTraces.SftMix(tasks, 5, fractions);
        var c = DemoTraces.SftMix(tasks, 6, fractions);

        Assert.Equal(1000, a.Count);
        Assert.Equal(700, a.Count(e => e.Variant == TraceVariant.Full));
        Assert.Equal(200, a.Count(e => e.Variant == TraceVariant.EmptyThink));
        Assert.Equal(100, a.Count(e => e.Variant == TraceVariant.OneDigitWrong));
        Assert.Equal(a.Select(e => e.Completion), b.Select(e => e.Completion));
        Assert.NotEqual(a.Select(e => e.Variant), c.Select(e => e.Variant));
        Assert.Equal(tasks.Select(t => t.Prompt), a.Select(e => e.Prompt));
        Assert.All(a.Where(e => e.Variant == TraceVariant.Full), e => Assert.Equal(DemoTraces.Full(e.Task), e.Completion));
        Assert.All(a.Where(e => e.Variant == TraceVariant.EmptyThink), e => Assert.Equal(DemoTraces.EmptyThink(e.Task), e.Completion));
        Assert.All(a.Where(e => e.Variant == TraceVariant.OneDigitWrong), e => Assert.NotEqual(DemoTraces.Full(e.Task), e.Completion));
        Assert.Throws<ArgumentException>(() => DemoTraces.SftMix(tasks, 5, new SftFractions(0.5, 0.2, 0.1)));
    }

    private static async Task<IReadOnlyList<RewardResult>> Score(IReadOnlyList<DemoTask> tasks, Func<DemoTask, string> completion)
    {
        var dataset = new DatasetSpec { Path = "demo.jsonl" };
        var inputs = tasks.Select(t =>
        {
            // Through the campaign's own row parser, so the rules see the fields a campaign would pass them.
            Assert.Null(CampaignRepository.ParseRow(DemoDataset.ToJsonLine(t), dataset, out var row));
            return new RewardInput(row!.Prompt, completion(t), row.Answer, Fields: row.Fields);
        }).ToList();
        return await Rules.ScoreAsync(inputs, Ct);
    }

    private static string BoxedOf(string line) => Regex.Match(line, @"\\boxed\{([^}]*)\}").Groups[1].Value;

    private static void AssertEquationsHold(string line, string prompt)
    {
        var matches = EquationRegex().Matches(line);
        Assert.True(matches.Count > 0 || line.Contains("write the carry", StringComparison.Ordinal), $"no equation in '{line}' ({prompt})");
        foreach (Match m in matches)
        {
            Assert.True(Evaluate(m.Groups[1].Value) == long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), $"'{m.Value}' in '{line}' ({prompt})");
        }
    }

    // Integers with + - * (and / for Countdown steps), * and / before + and -, left to right.
    private static long Evaluate(string expression)
    {
        var tokens = expression.Split(' ');
        var terms = new List<long> { long.Parse(tokens[0], CultureInfo.InvariantCulture) };
        var signs = new List<char> { '+' };
        for (var i = 1; i < tokens.Length; i += 2)
        {
            var op = tokens[i][0];
            var n = long.Parse(tokens[i + 1], CultureInfo.InvariantCulture);
            if (op is '*' or '/')
            {
                terms[^1] = op == '*' ? terms[^1] * n : terms[^1] / n;
            }
            else
            {
                terms.Add(n);
                signs.Add(op);
            }
        }

        return terms.Select((t, i) => signs[i] == '-' ? -t : t).Sum();
    }
}
