using System.Globalization;

namespace DeepSeekRL.Demo;

/// <summary>
/// One attempt at a small Countdown puzzle (<see cref="DemoTask.Small"/>): the numbers in the order given, the first
/// two combined, then the result with the third, written as one trace line such as <c>5*3=15 15+4=19</c>.
/// </summary>
/// <param name="Line">The trace line: both operations, no spaces inside a step.</param>
/// <param name="Expression">The equation it makes, e.g. <c>5 * 3 + 4</c>.</param>
/// <param name="Value">Its value (a positive integer).</param>
/// <remarks>
/// Keeping the numbers in the prompt's order and the second operation to <c>+ -</c> leaves at most six attempts whose
/// steps a 2.3 M-parameter character model can compute (a times-table fact, then a two-digit addition or subtraction).
/// Measured: with every order of the numbers and <c>*</c> in both steps the cold-started model copied numbers that were
/// not in the prompt and got products like <c>18*5</c> wrong (8% of held-out puzzles solved, 4.5% after GRPO).
/// </remarks>
internal sealed record CountdownTrial(string Line, CountdownExpression Expression, long Value)
{
    /// <summary>
    /// Every attempt over three numbers in their order, the first operation one of <c>+ - *</c> and the second
    /// <c>+</c> or <c>-</c> (each intermediate value a positive integer), in this fixed order: the first operation
    /// <c>+ - *</c>, then the second <c>+ -</c>.
    /// </summary>
    /// <param name="numbers">Exactly three positive numbers.</param>
    /// <returns>The attempts (at most six).</returns>
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
            foreach (var op2 in "+-")
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
