using System.Globalization;

namespace DeepSeekRL.Grains.Demo;

/// <summary>
/// One attempt at a small Countdown puzzle (<see cref="DemoTask.Small"/>): combine two of the three numbers, then the
/// result with the third, written as one trace line such as <c>5*3=15 15+4=19</c>.
/// </summary>
/// <param name="Line">The trace line: both operations, larger operand first for <c>-</c>, no spaces inside a step.</param>
/// <param name="Expression">The equation it makes, e.g. <c>5 * 3 + 4</c>.</param>
/// <param name="Value">Its value (a positive integer).</param>
internal sealed record CountdownTrial(string Line, CountdownExpression Expression, long Value)
{
    /// <summary>
    /// Every distinct attempt over three numbers with <c>+ - *</c> (each intermediate value a positive integer), in a
    /// fixed order: pair (0,1), (0,2), (1,2), then the first operation <c>+ - *</c>, then the second.
    /// </summary>
    /// <param name="numbers">Exactly three positive numbers.</param>
    /// <returns>The attempts, distinct by line.</returns>
    /// <exception cref="ArgumentException">Not three positive numbers.</exception>
    public static IReadOnlyList<CountdownTrial> All(IReadOnlyList<int> numbers)
    {
        ArgumentNullException.ThrowIfNull(numbers);
        if (numbers.Count != 3 || numbers.Any(n => n <= 0))
        {
            throw new ArgumentException($"numbers [{string.Join(", ", numbers)}]: expected three positive integers", nameof(numbers));
        }

        var trials = new List<CountdownTrial>();
        var lines = new HashSet<string>(StringComparer.Ordinal);
        (int I, int J, int K)[] pairs = [(0, 1, 2), (0, 2, 1), (1, 2, 0)];
        foreach (var (i, j, k) in pairs)
        {
            var (x, y) = numbers[i] >= numbers[j] ? (numbers[i], numbers[j]) : (numbers[j], numbers[i]);
            foreach (var op1 in "+-*")
            {
                if (CountdownExpression.Apply(op1, x, y) is not { } v || v <= 0)
                {
                    continue;
                }

                var first = CountdownExpression.Binary(op1, CountdownExpression.Leaf(x), CountdownExpression.Leaf(y));
                var step1 = string.Create(CultureInfo.InvariantCulture, $"{x}{op1}{y}={v}");
                long z = numbers[k];
                foreach (var op2 in "+-*")
                {
                    var leftIsFirst = op2 != '-' || v > z;
                    var (a, b) = leftIsFirst ? (v, z) : (z, v);
                    if (CountdownExpression.Apply(op2, a, b) is not { } w || w <= 0)
                    {
                        continue;
                    }

                    var expression = leftIsFirst
                        ? CountdownExpression.Binary(op2, first, CountdownExpression.Leaf(z))
                        : CountdownExpression.Binary(op2, CountdownExpression.Leaf(z), first);
                    var line = string.Create(CultureInfo.InvariantCulture, $"{step1} {a}{op2}{b}={w}");
                    if (lines.Add(line))
                    {
                        trials.Add(new CountdownTrial(line, expression, w));
                    }
                }
            }
        }

        return trials;
    }
}
