using System.Globalization;
using System.Text.RegularExpressions;

namespace DeepSeekRL.Demo.Tests;

public sealed partial class CountdownTrialTests
{
    // Two compact steps: "x op y=v v op z=w", no spaces inside a step.
    [GeneratedRegex(@"^(\d+)([-+*])(\d+)=(\d+) (\d+)([-+*])(\d+)=(\d+)$")]
    private static partial Regex LineRegex();

    [Fact]
    public void All_ThreeFiveFour_PinsTheOrderAndTheLines()
    {
        var trials = CountdownTrial.All([3, 5, 4]);

        // The numbers stay in their order: 3 ? 5, then + or - 4; 3 - 5 is not positive, so only + and * start a line.
        Assert.Equal(["3+5=8 8+4=12", "3+5=8 8-4=4", "3*5=15 15+4=19", "3*5=15 15-4=11"], trials.Select(t => t.Line));
        Assert.Equal(19, trials[2].Value);
        Assert.Equal("3 * 5 + 4", trials[2].Expression.ToString());
        Assert.Equal("3 + 5 - 4", trials[1].Expression.ToString());
    }

    [Theory]
    [InlineData(3, 5, 4, 4)]
    [InlineData(2, 2, 3, 4)]
    [InlineData(9, 9, 9, 4)]
    [InlineData(7, 2, 8, 5)]
    [InlineData(6, 3, 2, 6)]
    public void All_EveryLineHoldsAndKeepsTheNumbersInOrder(int a, int b, int c, int count)
    {
        int[] numbers = [a, b, c];

        var trials = CountdownTrial.All(numbers);

        Assert.Equal(count, trials.Count);
        Assert.Equal(trials.Count, trials.Select(t => t.Line).Distinct(StringComparer.Ordinal).Count());
        foreach (var trial in trials)
        {
            var m = LineRegex().Match(trial.Line);
            Assert.True(m.Success, $"'{trial.Line}' is not two steps");
            var g = Enumerable.Range(1, 8).Select(i => m.Groups[i].Value).ToArray();
            long x = Num(g[0]), y = Num(g[2]), v = Num(g[3]), p = Num(g[4]), q = Num(g[6]), w = Num(g[7]);
            Assert.Equal((a, b, c), ((int)x, (int)y, (int)q));
            Assert.Equal(v, p); // the second step starts from the first step's value
            Assert.True(Apply(g[1][0], x, y) == v, trial.Line);
            Assert.True(Apply(g[5][0], p, q) == w, trial.Line);
            Assert.True(v > 0 && w > 0, trial.Line);
            Assert.True(g[5][0] is '+' or '-', trial.Line);
            Assert.Equal(w, trial.Value);
            Assert.Equal(trial.Value, trial.Expression.Evaluate());
            Assert.Equal(numbers.Select(n => (long)n), trial.Expression.Leaves());
            Assert.Equal(trial.Value, CountdownExpression.Parse(trial.Expression.ToString()).Evaluate());
        }
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
