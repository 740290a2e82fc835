using System.Globalization;
using System.Text.RegularExpressions;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Rewards.Accuracy;
using DeepSeekRL.Rewards.Countdown;
using DeepSeekRL.Rewards.Format;
using DeepSeekRL.Rewards.Language;
using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Demo.Tests;

public sealed partial class DemoTracesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly RewardPipeline Rules = new RewardPipelineBuilder()
        .AddFormatR1Reward()
        .AddAccuracyReward()
        .AddLanguageConsistencyReward()
        .AddCountdownReward()
        .Build();

    // One compact step: an expression of integers and + - * / without spaces, then = and its value.
    [GeneratedRegex(@"^(\d+(?:[-+*/]\d+)+)=(\d+)$")]
    private static partial Regex StepRegex();

    [GeneratedRegex(@"\d+|[-+*/]")]
    private static partial Regex TokenRegex();

    [Fact]
    public void Full_PinsTheThreeWorkedExamples()
    {
        var add = new DemoTask(DemoTask.Arithmetic, "What is 607 + 844?", "1451") { Left = 607, Operator = '+', Right = 844 };
        var sub = new DemoTask(DemoTask.Arithmetic, "What is 530 - 472?", "58") { Left = 530, Operator = '-', Right = 472 };
        var mul = new DemoTask(DemoTask.Arithmetic, "What is 347 * 6?", "2082") { Left = 347, Operator = '*', Right = 6 };

        Assert.Equal("<think>\n7+4=11 1\n0+4+1=5 51\n6+8=14 1451\n</think>\n\\boxed{1451}", DemoTraces.Full(add));
        Assert.Equal("<think>\n10-2=8 8\n13-1-7=5 58\n5-1-4=0 58\n</think>\n\\boxed{58}", DemoTraces.Full(sub));
        Assert.Equal("<think>\n7*6=42 2\n4*6+4=28 82\n3*6+2=20 2082\n</think>\n\\boxed{2082}", DemoTraces.Full(mul));
    }

    [Fact]
    public void WorkedSteps_ShorterRightOperand_SubtractsZeroInTheHigherColumns()
    {
        var sub = new DemoTask(DemoTask.Arithmetic, "What is 503 - 78?", "425") { Left = 503, Operator = '-', Right = 78 };
        var add = new DemoTask(DemoTask.Arithmetic, "What is 995 + 7?", "1002") { Left = 995, Operator = '+', Right = 7 };

        Assert.Equal(["13-8=5 5", "10-1-7=2 25", "5-1-0=4 425"], DemoTraces.WorkedSteps(sub));
        Assert.Equal(["5+7=12 2", "9+0+1=10 02", "9+0+1=10 1002"], DemoTraces.WorkedSteps(add));
        Assert.Equal("<think>\n5+7=12 2\n9+0+1=10 02\n9+0+1=10 1002\n</think>\n\\boxed{1002}", DemoTraces.Full(add));
    }

    [Fact]
    public void Full_Arithmetic_EveryLineIsTheRecomputedColumnValueAndTheRunningResultAndTheBoxedAnswerIsRight()
    {
        foreach (var task in DemoTaskGenerator.Generate(1, 2000, TaskMix.ArithmeticOnly))
        {
            var lines = DemoTraces.Full(task).Split('\n');
            Assert.Equal("<think>", lines[0]);
            Assert.Equal("</think>", lines[^2]);
            Assert.Equal("\\boxed{" + task.Answer + "}", lines[^1]);
            var columns = lines[1..^2];
            Assert.Equal(columns, DemoTraces.WorkedSteps(task));
            var expected = ColumnValues(task.Left, task.Operator, task.Right);
            Assert.Equal(expected.Count, columns.Length);
            for (var i = 0; i < columns.Length; i++)
            {
                var value = AssertStepHolds(columns[i], task.Prompt);
                Assert.True(expected[i] == value, $"column {i} of {task.Prompt}: '{columns[i]}', expected the value {expected[i]}");
                Assert.Equal(DigitsOf(columns[..(i + 1)], i == columns.Length - 1), RunningResult(columns[i]));
            }

            Assert.Equal(task.Answer, DigitsOf(columns, complete: true));
            Assert.Equal(task.Answer, RunningResult(columns[^1]));
        }
    }

    [Fact]
    public void Full_Countdown_EveryStepIsRightAndReachesTheTarget()
    {
        foreach (var task in DemoTaskGenerator.Generate(22, 500, TaskMix.CountdownOnly))
        {
            var operations = DemoTraces.WorkedSteps(task);
            Assert.Equal(task.Numbers!.Length - 1, operations.Count);
            Assert.All(operations, line => AssertStepHolds(line, task.Prompt));
            Assert.EndsWith(string.Create(CultureInfo.InvariantCulture, $"={task.Target}"), operations[^1], StringComparison.Ordinal);
            var lines = DemoTraces.Full(task).Split('\n');
            string[] think = ["<think>", .. operations, "</think>"];
            Assert.Equal(think, lines[..^1]);
            Assert.Equal($"\\boxed{{{task.Solution}}} <answer>{task.Solution}</answer>", lines[^1]);
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
    public void OneDigitWrong_Arithmetic_DiffersFromFullInOneColumnValueAndTheAnswer()
    {
        foreach (var task in DemoTaskGenerator.Generate(33, 500, TaskMix.ArithmeticOnly))
        {
            var full = DemoTraces.Full(task).Split('\n');
            var wrong = DemoTraces.OneDigitWrong(task, seed: (int)task.Left).Split('\n');
            Assert.Equal(full.Length, wrong.Length);
            var differing = Enumerable.Range(0, full.Length).Where(i => full[i] != wrong[i]).ToList();

            // From the wrong column on: that column's value has another last digit (its left side and carry are
            // unchanged), the later columns' steps are unchanged, every running result from there on differs, and so
            // does the boxed answer.
            var first = differing[0];
            Assert.Equal(Enumerable.Range(first, full.Length - first - 2).Append(full.Length - 1), differing);
            var (right, bad) = (Step(full[first]), Step(wrong[first]));
            Assert.Equal(right.Length, bad.Length);
            Assert.Equal(right[..^1], bad[..^1]);
            Assert.NotEqual(right[^1], bad[^1]);
            Assert.All(Enumerable.Range(first + 1, full.Length - first - 3), i => Assert.Equal(Step(full[i]), Step(wrong[i])));

            // The boxed answer is the number the written digits make, the last running result, and it is wrong.
            var written = DigitsOf(wrong[1..^2], complete: true);
            Assert.Equal(written, RunningResult(wrong[^3]));
            Assert.Equal("\\boxed{" + written + "}", wrong[^1]);
            Assert.NotEqual(task.Answer, written);
        }
    }

    [Fact]
    public async Task EmptyThink_ScoresOneOnAccuracyAndZeroOnFormatR1()
    {
        var tasks = DemoTaskGenerator.Generate(34, 200, TaskMix.ArithmeticOnly);

        var results = await Score(tasks, DemoTraces.EmptyThink);

        Assert.All(tasks, t => Assert.Equal("<think>\n</think>\n\\boxed{" + t.Answer + "}", DemoTraces.EmptyThink(t)));
        var countdown = DemoTaskGenerator.Generate(34, 1, TaskMix.CountdownOnly)[0];
        Assert.Equal($"<think>\n</think>\n\\boxed{{{countdown.Solution}}} <answer>{countdown.Solution}</answer>", DemoTraces.EmptyThink(countdown));

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
            Assert.Equal("<think>", lines[0]);
            Assert.Equal("</think>", lines[^2]);
            var operations = lines[1..^2];
            Assert.Equal(task.Numbers!.Length - 1, operations.Length);
            Assert.All(operations, line => AssertStepHolds(line, task.Prompt));
            var equation = Regex.Match(lines[^1], "<answer>(.*)</answer>").Groups[1].Value;
            Assert.Equal($"\\boxed{{{equation}}} <answer>{equation}</answer>", lines[^1]);
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
            Assert.Null(CampaignCreator.ParseRow(DemoDataset.ToJsonLine(t), dataset, out var row));
            return new RewardInput(row!.Prompt, completion(t), row.Answer, Fields: row.Fields);
        }).ToList();
        return await Rules.ScoreAsync(inputs, Ct);
    }

    // The school column values, ones first, computed here independently of ColumnArithmetic.
    private static List<long> ColumnValues(long a, char op, long b)
    {
        var values = new List<long>();
        long carry = 0;
        for (long scale = 1; op == '*' ? scale <= a : scale <= Math.Max(a, b); scale *= 10)
        {
            var (da, db) = (a / scale % 10, b / scale % 10);
            var difference = da - carry - db;
            var value = op switch
            {
                '+' => da + db + carry,
                '*' => (da * b) + carry,
                _ => difference < 0 ? difference + 10 : difference,
            };
            carry = op == '-' ? (difference < 0 ? 1 : 0) : value / 10;
            values.Add(value);
        }

        return values;
    }

    // The digits the column lines have written: the last digit of each column's value, the newest first; complete,
    // the last line's whole value comes first instead and leading zeros are dropped (the number they make).
    private static string DigitsOf(IReadOnlyList<string> columns, bool complete)
    {
        var values = columns.Select(line => Step(line)[(Step(line).LastIndexOf('=') + 1)..]).ToList();
        if (!complete)
        {
            return string.Concat(values.AsEnumerable().Reverse().Select(v => v[^1]));
        }

        var digits = values[^1] + string.Concat(values.Take(values.Count - 1).Reverse().Select(v => v[^1]));
        return digits.TrimStart('0') is { Length: > 0 } n ? n : "0";
    }

    // An arithmetic line is the step, a space, and the running result.
    private static string Step(string line) => line.Split(' ')[0];

    private static string RunningResult(string line)
    {
        var parts = line.Split(' ');
        Assert.Equal(2, parts.Length);
        return parts[1];
    }

    // Checks one compact step (no spaces; an arithmetic line's running result is ignored) and returns its value.
    private static long AssertStepHolds(string line, string prompt)
    {
        var m = StepRegex().Match(Step(line));
        Assert.True(m.Success, $"'{line}' is not a step ({prompt})");
        var value = long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.True(Evaluate(m.Groups[1].Value) == value, $"'{line}' does not hold ({prompt})");
        return value;
    }

    // Integers with + - * (and / for Countdown steps), * and / before + and -, left to right.
    private static long Evaluate(string expression)
    {
        var tokens = TokenRegex().Matches(expression).Select(m => m.Value).ToList();
        var terms = new List<long> { long.Parse(tokens[0], CultureInfo.InvariantCulture) };
        var signs = new List<char> { '+' };
        for (var i = 1; i < tokens.Count; i += 2)
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
