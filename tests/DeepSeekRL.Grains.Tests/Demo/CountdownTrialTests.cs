using System.Globalization;
using System.Text.RegularExpressions;
using DeepSeekRL.Grains.Demo;

namespace DeepSeekRL.Grains.Tests.Demo;

public sealed partial class CountdownTrialTests
{
    // Two compact steps: "x op y=v v op z=w" (or "z op v=w"), no spaces inside a step.
    [GeneratedRegex(@"^(\d+)([-+*])(\d+)=(\d+) (\d+)([-+*])(\d+)=(\d+)$")]
    private static partial Regex LineRegex();

    [Fact]
    public void All_ThreeFiveFour_PinsTheOrderAndTheLines()
    {
        var trials = CountdownTrial.All([3, 5, 4]);

        // Pair (0,1) = 5,3 first, + then - then *, each followed by + - *; then pair (0,2) = 4,3; then (1,2) = 5,4.
        Assert.Equal(27, trials.Count);
        Assert.Equal(["5+3=8 8+4=12", "5+3=8 8-4=4", "5+3=8 8*4=32", "5-3=2 2+4=6", "5-3=2 4-2=2", "5-3=2 2*4=8"], trials.Take(6).Select(t => t.Line));
        Assert.Equal("5*3=15 15+4=19", trials[6].Line);
        Assert.Equal(19, trials[6].Value);
        Assert.Equal("5 * 3 + 4", trials[6].Expression.ToString());
        Assert.Equal("4-3=1 5-1=4", trials[13].Line); // the third number is larger: it comes first
        Assert.Equal("5*4=20 20*3=60", trials[^1].Line);
        Assert.Equal(60, trials[^1].Value);
    }

    [Theory]
    [InlineData(3, 5, 4)]
    [InlineData(2, 2, 3)]
    [InlineData(9, 9, 9)]
    [InlineData(7, 2, 8)]
    [InlineData(6, 3, 2)]
    public void All_EveryLineHoldsAndItsExpressionUsesExactlyTheNumbers(int a, int b, int c)
    {
        int[] numbers = [a, b, c];

        var trials = CountdownTrial.All(numbers);

        Assert.NotEmpty(trials);
        Assert.Equal(trials.Count, trials.Select(t => t.Line).Distinct(StringComparer.Ordinal).Count());
        foreach (var trial in trials)
        {
            var m = LineRegex().Match(trial.Line);
            Assert.True(m.Success, $"'{trial.Line}' is not two steps");
            var g = Enumerable.Range(1, 8).Select(i => m.Groups[i].Value).ToArray();
            long x = Num(g[0]), y = Num(g[2]), v = Num(g[3]), p = Num(g[4]), q = Num(g[6]), w = Num(g[7]);
            Assert.True(Apply(g[1][0], x, y) == v, trial.Line);
            Assert.True(Apply(g[5][0], p, q) == w, trial.Line);
            Assert.True(x >= y, $"larger operand first: {trial.Line}");
            Assert.True(v > 0 && w > 0, trial.Line);
            if (g[5][0] == '-')
            {
                Assert.True(p > q, trial.Line);
            }

            // The second step combines the first step's value with the remaining number.
            var rest = p == v ? q : p;
            Assert.True(p == v || q == v, trial.Line);
            Assert.Equal(numbers.Order(), new[] { x, y, rest }.Select(n => (int)n).Order());
            Assert.Equal(w, trial.Value);
            Assert.Equal(trial.Value, trial.Expression.Evaluate());
            Assert.Equal(numbers.Select(n => (long)n).Order(), trial.Expression.Leaves().Order());
            Assert.Equal(trial.Value, CountdownExpression.Parse(trial.Expression.ToString()).Evaluate());
        }
    }

    [Fact]
    public void All_RepeatedNumbers_GivesEachLineOnce()
    {
        // Pairs (0,2) and (1,2) of [2, 2, 3] write the same lines: 6 from (2,2) (2-2 is not positive) + 9 from (3,2).
        var trials = CountdownTrial.All([2, 2, 3]);

        Assert.Equal(15, trials.Count);
        Assert.Contains(trials, t => t.Line == "3-2=1 2-1=1");
        Assert.Contains(trials, t => t.Line == "2*2=4 4*3=12");
    }

    [Fact]
    public void All_WrongInput_Throws()
    {
        Assert.Throws<ArgumentException>(() => CountdownTrial.All([3, 5]));
        Assert.Throws<ArgumentException>(() => CountdownTrial.All([3, 5, 4, 2]));
        Assert.Throws<ArgumentException>(() => CountdownTrial.All([3, 0, 4]));
        Assert.Throws<ArgumentException>(() => CountdownTrial.All([3, -5, 4]));
    }

    private static long Num(string s) => long.Parse(s, CultureInfo.InvariantCulture);

    private static long Apply(char op, long a, long b) => op switch { '+' => a + b, '-' => a - b, _ => a * b };
}
