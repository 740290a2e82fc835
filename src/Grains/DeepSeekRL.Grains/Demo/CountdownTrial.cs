using System.Globalization;

namespace DeepSeekRL.Grains.Demo;

/// <summary>
/// One attempt at a small Countdown puzzle (<see cref="DemoTask.Small"/>): the numbers in the order given, the first
/// two combined, then the result with the third, written as one trace line such as <c>5*3=15 15+4=19</c>.
/// </summary>
/// <param name="Line">The trace line: both operations, no spaces inside a step.</param>
/// <param name="Expression">The equation it makes, e.g. <c>5 * 3 + 4</c>.</param>
/// <param name="Value">Its value (a positive integer).</param>
/// <remarks>
/// Keeping the numbers in the prompt's order leaves only the two operations to choose (at most nine attempts), which
/// a 2.3 M-parameter character model can search; attempts that reorder the numbers (2,400 more distinct puzzles)
/// made it copy numbers that were not in the prompt.
/// </remarks>
internal sealed record CountdownTrial(string Line, CountdownExpression Expression, long Value)
{
    /// <summary>
    /// Every attempt over three numbers in their order with <c>+ - *</c> (each intermediate value a positive
    /// integer), in a fixed order: the first operation <c>+ - *</c>, then the second.
    /// </summary>
    /// <param name="numbers">Exactly three positive numbers.</param>
    /// <returns>The attempts (at most nine).</returns>
    /// <exception cref="ArgumentException">Not three positive numbers.</exception>
    public static IReadOnlyList<CountdownTrial> All(IReadOnlyList<int> numbers)
    {
        ArgumentNullException.ThrowIfNull(numbers);
        if (numbers.Count != 3 || numbers.Any(n => n <= 0))
        {
            throw new ArgumentException($"numbers [{string.Join(", ", numbers)}]: expected three positive integers", nameof(numbers));
        }

        var trials = new List<CountdownTrial>();
        long x = numbers[0], y = numbers[1], z = numbers[2];
        foreach (var op1 in "+-*")
        {
            if (CountdownExpression.Apply(op1, x, y) is not { } v)
            {
                continue;
            }

            var first = CountdownExpression.Binary(op1, CountdownExpression.Leaf(x), CountdownExpression.Leaf(y));
            foreach (var op2 in "+-*")
            {
                if (CountdownExpression.Apply(op2, v, z) is not { } w)
                {
                    continue;
                }

                var line = string.Create(CultureInfo.InvariantCulture, $"{x}{op1}{y}={v} {v}{op2}{z}={w}");
                trials.Add(new CountdownTrial(line, CountdownExpression.Binary(op2, first, CountdownExpression.Leaf(z)), w));
            }
        }

        return trials;
    }
}
