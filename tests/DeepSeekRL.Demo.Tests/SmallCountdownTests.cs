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

public sealed partial class SmallCountdownTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TaskMix Small = TaskMix.CountdownOnly with { SmallCountdown = true };

    private static readonly RewardPipeline Rules = new RewardPipelineBuilder()
        .AddFormatR1Reward()
        .AddAccuracyReward()
        .AddLanguageConsistencyReward()
        .AddCountdownReward()
        .Build();

    [GeneratedRegex(@"^Using the numbers (\d+), (\d+), (\d+) in this order, make (\d+) with \+ - \* \(each number exactly once\)\.$")]
    private static partial Regex PromptRegex();

    [GeneratedRegex(@"^(\d+)([-+*])(\d+)=(\d+) (\d+)([-+*])(\d+)=(\d+)$")]
    private static partial Regex LineRegex();

    [Fact]
    public void Generate_SmallCountdown_ThreeNumbersTwoToNineAndASolutionThatMakesTheTarget()
    {
        var tasks = DemoTaskGenerator.Generate(7, 400, Small);

        Assert.Equal(400, tasks.Count);
        Assert.Equal(tasks.Count, tasks.Select(t => t.Prompt).Distinct(StringComparer.Ordinal).Count());
        foreach (var t in tasks)
        {
            Assert.Equal(DemoTask.Countdown, t.Kind);
            Assert.True(t.Small, t.Prompt);
            var numbers = t.Numbers!;
            Assert.Equal(3, numbers.Length);
            Assert.All(numbers, n => Assert.InRange(n, DemoTaskGenerator.SmallMin, DemoTaskGenerator.SmallMax));
            Assert.Equal(2, DemoTaskGenerator.SmallMin);
            Assert.Equal(9, DemoTaskGenerator.SmallMax);
            var target = t.Target!.Value;
            Assert.DoesNotContain(target, numbers);
            Assert.True(target > 0, t.Prompt);
            Assert.Equal(
                string.Create(CultureInfo.InvariantCulture, $"Using the numbers {numbers[0]}, {numbers[1]}, {numbers[2]} in this order, make {target} with + - * (each number exactly once)."),
                t.Prompt);
            Assert.Matches(PromptRegex(), t.Prompt);
            var solution = CountdownExpression.Parse(t.Solution!);
            Assert.Equal(target, solution.Evaluate());
            Assert.Equal(numbers.Select(n => (long)n), solution.Leaves()); // in the order given
            Assert.DoesNotContain('/', t.Solution!);
        }

        Assert.Equal(tasks.Select(t => t.Prompt), DemoTaskGenerator.Generate(7, 400, Small).Select(t => t.Prompt));
        Assert.Equal(tasks.Select(t => t.Solution), DemoTaskGenerator.Generate(7, 400, Small).Select(t => t.Solution));
        Assert.NotEqual(tasks.Select(t => t.Prompt), DemoTaskGenerator.Generate(8, 400, Small).Select(t => t.Prompt));

        // The ordinary Countdown puzzles are not small.
        Assert.All(DemoTaskGenerator.Generate(7, 50, TaskMix.CountdownOnly), t => Assert.False(t.Small));
    }

    [Fact]
    public void Search_IsEveryAttemptInOrderUpToTheFirstThatMakesTheTarget()
    {
        var tasks = DemoTaskGenerator.Generate(12, 300, Small);
        var lengths = new HashSet<int>();
        foreach (var task in tasks)
        {
            var completion = DemoTraces.Search(task);
            var attempts = completion.Split('\n')[1..^2];
            lengths.Add(attempts.Length);
            AssertSearchTrace(task, completion);

            // The attempts are the first ones of the fixed order, and the first that makes the target ends them.
            var all = CountdownTrial.All(task.Numbers!);
            Assert.Equal(all.Take(attempts.Length).Select(t => t.Line), attempts);
            Assert.Equal(attempts.Length - 1, all.ToList().FindIndex(t => t.Value == task.Target));
            Assert.Equal(completion, DemoTraces.Search(task));
        }

        // Searches of one attempt up to six occur.
        Assert.Equal([1, 2, 3, 4, 5, 6], lengths.Order());
        Assert.Equal(
            "<think>\n8+4=12 12+7=19\n8+4=12 12-7=5\n8-4=4 4+7=11\n8*4=32 32+7=39\n8*4=32 32-7=25\n</think>\n<answer>8 * 4 - 7</answer>",
            DemoTraces.Search(new DemoTask(DemoTask.Countdown, "Using the numbers 8, 4, 7 in this order, make 25 with + - * (each number exactly once).", "25")
            {
                Numbers = [8, 4, 7], Target = 25, Solution = "8 * 4 - 7", Small = true,
            }));
    }

    [Fact]
    public async Task Search_ScoresOneOnCountdownAndFormat_AccuracyIsMissing()
    {
        var tasks = DemoTaskGenerator.Generate(13, 300, Small);
        var dataset = new DatasetSpec { Path = "demo.jsonl" };
        var inputs = tasks.Select((t, i) =>
        {
            // Through the campaign's own row parser, as a campaign would pass the row to the rules.
            Assert.Null(CampaignCreator.ParseRow(DemoDataset.ToJsonLine(t), dataset, out var row));
            Assert.Null(row!.Answer);
            return new RewardInput(row.Prompt, DemoTraces.Search(t), row.Answer, Fields: row.Fields);
        }).ToList();

        var results = await Rules.ScoreAsync(inputs, Ct);

        Assert.All(results, r =>
        {
            Assert.Equal(1.0, r["countdown"]);
            Assert.Equal(1.0, r["format_r1"]);
            Assert.Null(r["accuracy"]);
            Assert.Contains("accuracy", r.Missing);
        });
    }

    [Fact]
    public void Search_NotASmallCountdownTask_Throws()
    {
        var large = DemoTaskGenerator.Generate(14, 1, TaskMix.CountdownOnly)[0];
        var arithmetic = DemoTaskGenerator.Generate(14, 1, TaskMix.ArithmeticOnly)[0];
        var small = DemoTaskGenerator.Generate(14, 1, Small)[0];

        Assert.Throws<ArgumentException>(() => DemoTraces.Search(large));
        Assert.Throws<ArgumentException>(() => DemoTraces.Search(arithmetic));
        Assert.Throws<ArgumentException>(() => DemoTraces.Search(small with { Small = false }));
        Assert.Throws<ArgumentException>(() => DemoTraces.Search(small with { Target = null }));
    }

    [Fact]
    public void SftMix_SmallCountdown_GivesSearchTracesWhateverTheFractions()
    {
        var tasks = DemoTaskGenerator.Generate(15, 200, Small);

        foreach (var fractions in new[] { SftFractions.Default, new SftFractions(0, 0.5, 0.5), new SftFractions(0, 1, 0) })
        {
            var mix = DemoTraces.SftMix(tasks, 3, fractions);

            Assert.Equal(tasks.Count, mix.Count);
            for (var i = 0; i < tasks.Count; i++)
            {
                Assert.Equal(TraceVariant.Full, mix[i].Variant);
                Assert.Same(tasks[i], mix[i].Task);
                Assert.Equal(tasks[i].Prompt, mix[i].Prompt);
                AssertSearchTrace(tasks[i], mix[i].Completion);
            }
        }

        // Other tasks in the same mix still follow the fractions.
        var mixed = DemoTaskGenerator.Generate(16, 400, TaskMix.Default with { SmallCountdown = true });
        var examples = DemoTraces.SftMix(mixed, 3, new SftFractions(0, 1, 0));
        Assert.Contains(mixed, t => t.Small);
        Assert.All(examples.Where(e => !e.Task.Small), e => Assert.Equal(TraceVariant.EmptyThink, e.Variant));
        Assert.All(examples.Where(e => e.Task.Small), e => AssertSearchTrace(e.Task, e.Completion));
    }

    // Checks one Search trace of a small task and returns its number of failed attempts.
    private static int AssertSearchTrace(DemoTask task, string completion)
    {
        var lines = completion.Split('\n');
        Assert.Equal("<think>", lines[0]);
        Assert.Equal("</think>", lines[^2]);
        var attempts = lines[1..^2];
        Assert.InRange(attempts.Length, 1, 6);
        var target = task.Target!.Value;
        var numbers = task.Numbers!.Select(n => (long)n).Order().ToList();
        var values = attempts.Select(line => AttemptValue(line, numbers, completion)).ToList();
        Assert.All(values[..^1], v => Assert.True(v != target, $"a failed attempt makes the target: {completion}"));
        Assert.True(values[^1] == target, $"the last attempt does not make the target: {completion}");
        Assert.Equal(attempts.Length, attempts.Distinct(StringComparer.Ordinal).Count());

        var m = Regex.Match(lines[^1], "^<answer>(.+)</answer>$");
        Assert.True(m.Success, $"last line '{lines[^1]}'");
        var equation = CountdownExpression.Parse(m.Groups[1].Value);
        Assert.Equal(target, equation.Evaluate());
        Assert.Equal(numbers, equation.Leaves().Order());

        // The answer is the last attempt's equation.
        Assert.Contains(CountdownTrial.All(task.Numbers!), t => t.Line == attempts[^1] && t.Expression.ToString() == m.Groups[1].Value);
        return attempts.Length - 1;
    }

    // Checks that an attempt line's two steps hold and use exactly the numbers; returns its value.
    private static long AttemptValue(string line, List<long> numbers, string completion)
    {
        var m = LineRegex().Match(line);
        Assert.True(m.Success, $"'{line}' is not an attempt: {completion}");
        var g = Enumerable.Range(1, 8).Select(i => long.TryParse(m.Groups[i].Value, CultureInfo.InvariantCulture, out var n) ? n : m.Groups[i].Value[0]).ToArray();
        var (x, op1, y, v, p, op2, q, w) = (g[0], (char)g[1], g[2], g[3], g[4], (char)g[5], g[6], g[7]);
        Assert.True(Apply(op1, x, y) == v && Apply(op2, p, q) == w, $"'{line}' does not hold: {completion}");
        Assert.True(p == v || q == v, $"'{line}': the second step does not use the first's value");
        Assert.Equal(numbers, new[] { x, y, p == v ? q : p }.Order());
        Assert.True(op2 is '+' or '-', $"'{line}': the second operation is + or -");
        return w;
    }

    private static long Apply(char op, long a, long b) => op switch { '+' => a + b, '-' => a - b, _ => a * b };
}
