using System.Globalization;

namespace DeepSeekRL.Demo.Tests;

public sealed class DemoTaskGeneratorTests
{
    [Fact]
    public void Generate_SameSeed_GivesTheSameTasks()
    {
        var a = DemoTaskGenerator.Generate(42, 300, TaskMix.Default);
        var b = DemoTaskGenerator.Generate(42, 300, TaskMix.Default);

        Assert.Equal(300, a.Count);
        Assert.Equal(a.Select(Describe), b.Select(Describe));
    }

    [Fact]
    public void Generate_DifferentSeeds_GiveDifferentTasks()
    {
        var a = DemoTaskGenerator.Generate(1, 100, TaskMix.Default).Select(t => t.Prompt).ToHashSet(StringComparer.Ordinal);
        var b = DemoTaskGenerator.Generate(2, 100, TaskMix.Default).Select(t => t.Prompt).ToList();

        Assert.True(b.Count(a.Contains) < 10, $"{b.Count(a.Contains)} of 100 prompts shared");
    }

    [Fact]
    public void Generate_Prompts_AreDistinctAndFollowTheMix()
    {
        var tasks = DemoTaskGenerator.Generate(3, 2000, TaskMix.Default);

        Assert.Equal(tasks.Count, tasks.Select(t => t.Prompt).Distinct(StringComparer.Ordinal).Count());
        var countdown = tasks.Count(t => t.Kind == DemoTask.Countdown);
        Assert.InRange(countdown, 400, 600);
        foreach (var op in new[] { '+', '-', '*' })
        {
            Assert.InRange(tasks.Count(t => t.Operator == op), 400, 600);
        }

        Assert.All(DemoTaskGenerator.Generate(3, 50, TaskMix.CountdownOnly), t => Assert.Equal(DemoTask.Countdown, t.Kind));
        Assert.All(DemoTaskGenerator.Generate(3, 50, TaskMix.ArithmeticOnly), t => Assert.Equal(DemoTask.Arithmetic, t.Kind));
    }

    [Fact]
    public void Generate_Arithmetic_OperandsInRangeAndAnswerRight()
    {
        foreach (var t in DemoTaskGenerator.Generate(5, 1500, TaskMix.ArithmeticOnly))
        {
            Assert.InRange(t.Left, 10, 999);
            if (t.Operator == '*')
            {
                Assert.InRange(t.Right, 2, 9);
            }
            else
            {
                Assert.InRange(t.Right, 10, 999);
            }

            var expected = t.Operator switch { '+' => t.Left + t.Right, '-' => t.Left - t.Right, _ => t.Left * t.Right };
            Assert.True(expected > 0, t.Prompt);
            Assert.Equal(expected.ToString(CultureInfo.InvariantCulture), t.Answer);
            Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"What is {t.Left} {t.Operator} {t.Right}?"), t.Prompt);
            Assert.Null(t.Numbers);
            Assert.Null(t.Target);
        }
    }

    [Fact]
    public void Generate_OperandDigits_EveryLengthInTheRangeAndNoOther()
    {
        var mix = TaskMix.ArithmeticOnly with { MinOperandDigits = 3, MaxOperandDigits = 4 };

        var tasks = DemoTaskGenerator.Generate(6, 1500, mix);

        var lengths = tasks.SelectMany(t => t.Operator == '*' ? new[] { t.Left } : new[] { t.Left, t.Right })
            .Select(n => n.ToString(CultureInfo.InvariantCulture).Length)
            .GroupBy(n => n)
            .ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal([3, 4], lengths.Keys.Order());
        Assert.InRange(lengths[3] / (double)(lengths[3] + lengths[4]), 0.4, 0.6);
        Assert.All(tasks, t =>
        {
            var expected = t.Operator switch { '+' => t.Left + t.Right, '-' => t.Left - t.Right, _ => t.Left * t.Right };
            Assert.Equal(expected.ToString(CultureInfo.InvariantCulture), t.Answer);
        });
    }

    [Fact]
    public void Generate_AdditionAndSubtraction_AtLeastHalfCarryOrBorrow()
    {
        var tasks = DemoTaskGenerator.Generate(11, 2000, new TaskMix(1, 1, 0, 0));

        foreach (var op in new[] { '+', '-' })
        {
            var some = tasks.Where(t => t.Operator == op).ToList();
            var withCarry = some.Count(DemoTaskGenerator.HasCarry);
            Assert.True(withCarry >= some.Count / 2 + some.Count / 5, $"{op}: {withCarry} of {some.Count} carry");
            Assert.True(withCarry < some.Count, $"{op}: every problem carries; the free draws should not always");
        }
    }

    [Theory]
    [InlineData(347, '+', 289, true)]
    [InlineData(123, '+', 456, false)]
    [InlineData(500, '-', 123, true)]
    [InlineData(987, '-', 654, false)]
    public void HasCarry_KnownProblems(int a, char op, int b, bool expected)
    {
        Assert.Equal(expected, DemoTaskGenerator.HasCarry(new DemoTask(DemoTask.Arithmetic, "q", "0") { Left = a, Operator = op, Right = b }));
    }

    [Fact]
    public void Generate_Countdown_AlwaysSolvableWithEveryNumberOnce()
    {
        var tasks = DemoTaskGenerator.Generate(9, 1000, TaskMix.CountdownOnly);

        Assert.Contains(tasks, t => t.Numbers!.Length == 3);
        Assert.Contains(tasks, t => t.Numbers!.Length == 4);
        Assert.Contains(tasks, t => t.Numbers!.Any(n => n > 25));
        foreach (var t in tasks)
        {
            Assert.InRange(t.Numbers!.Length, 3, 4);
            Assert.All(t.Numbers, n => Assert.True(n is >= 1 and <= 25 or 50 or 75 or 100, $"{n} in {t.Prompt}"));
            Assert.True(t.Numbers.Count(n => n > 25) <= 1, t.Prompt);
            Assert.InRange(t.Target!.Value, 1, 1000);
            Assert.Equal(t.Target.Value.ToString(CultureInfo.InvariantCulture), t.Answer);

            var solution = CountdownExpression.Parse(t.Solution!);
            Assert.Equal(t.Target.Value, solution.Evaluate());
            Assert.Equal(t.Numbers.Select(n => (long)n).Order(), solution.Leaves().Order());
            Assert.Equal(t.Solution, solution.ToString());
            Assert.Contains(string.Join(", ", t.Numbers), t.Prompt, StringComparison.Ordinal);
            Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"make {t.Target}"), t.Prompt, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(0.2)]
    [InlineData(0.0)]
    [InlineData(1.0)]
    public void Split_Fraction_NoPromptOnBothSides(double fraction)
    {
        var tasks = DemoTaskGenerator.Generate(4, 500, TaskMix.Default);
        var withDuplicates = tasks.Concat(tasks.Take(50)).ToList();

        var split = DemoTaskGenerator.Split(withDuplicates, fraction, seed: 7);

        var train = split.Train.Select(t => t.Prompt).ToList();
        var eval = split.Eval.Select(t => t.Prompt).ToList();
        Assert.Equal((int)Math.Round(500 * fraction), eval.Count);
        Assert.Equal(500, train.Count + eval.Count);
        Assert.Empty(train.Intersect(eval, StringComparer.Ordinal));
        Assert.Equal(train.Count, train.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(eval.Count, eval.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Split_Count_IsSeededAndExact()
    {
        var tasks = DemoTaskGenerator.Generate(4, 200, TaskMix.Default);

        var a = DemoTaskGenerator.Split(tasks, 30, seed: 1);
        var b = DemoTaskGenerator.Split(tasks, 30, seed: 1);
        var c = DemoTaskGenerator.Split(tasks, 30, seed: 2);

        Assert.Equal(30, a.Eval.Count);
        Assert.Equal(170, a.Train.Count);
        Assert.Equal(a.Eval.Select(t => t.Prompt), b.Eval.Select(t => t.Prompt));
        Assert.NotEqual(a.Eval.Select(t => t.Prompt), c.Eval.Select(t => t.Prompt));
        Assert.Throws<ArgumentOutOfRangeException>(() => DemoTaskGenerator.Split(tasks, 201));
    }

    [Fact]
    public void Generate_BadMix_Throws()
    {
        Assert.Throws<ArgumentException>(() => DemoTaskGenerator.Generate(1, 1, new TaskMix(0, 0, 0, 0)));
        Assert.Throws<ArgumentException>(() => DemoTaskGenerator.Generate(1, 1, new TaskMix(-1, 1, 0, 0)));
        var reversed = Assert.Throws<ArgumentException>(() => DemoTaskGenerator.Generate(1, 1, TaskMix.ArithmeticOnly with { MinOperandDigits = 4, MaxOperandDigits = 3 }));
        Assert.Contains("operand digits 4..3", reversed.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => DemoTaskGenerator.Generate(1, 1, TaskMix.ArithmeticOnly with { MinOperandDigits = 0 }));
        Assert.Throws<ArgumentException>(() => DemoTaskGenerator.Generate(1, 1, TaskMix.ArithmeticOnly with { MaxOperandDigits = 10 }));
    }

    private static string Describe(DemoTask t) =>
        $"{t.Kind}|{t.Prompt}|{t.Answer}|{t.Solution}|{(t.Numbers is null ? "" : string.Join(",", t.Numbers))}|{t.Target}";
}
