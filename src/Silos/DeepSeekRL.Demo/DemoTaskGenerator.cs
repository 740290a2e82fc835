using System.Globalization;

namespace DeepSeekRL.Demo;

/// <summary>
/// Seeded generator of the <c>demo</c> tasks (the DeepSeek-R1 recipe on a tiny model): column arithmetic with
/// operands of <see cref="TaskMix.MinOperandDigits"/> to <see cref="TaskMix.MaxOperandDigits"/> digits (2–3 by
/// default), biased towards carries and borrows, and Countdown puzzles that are solvable by construction.
/// </summary>
/// <remarks>Deterministic: the same seed, count and mix give the same tasks, in the same order, on every machine
/// (<see cref="Random"/> with an explicit seed). Prompts are distinct within one call. Thread-safe (no shared state).</remarks>
public static class DemoTaskGenerator
{
    /// <summary>The fraction of additions and subtractions drawn until they have a carry or borrow.</summary>
    /// <remarks>The rest are drawn freely and have one about half the time, so well over half have one.</remarks>
    public const double ForcedCarryFraction = 0.75;

    /// <summary>The largest Countdown target.</summary>
    public const int MaxTarget = 1000;

    private static readonly int[] LargeNumbers = [50, 75, 100];

    /// <summary>Generates <paramref name="count"/> distinct tasks.</summary>
    /// <param name="seed">The seed.</param>
    /// <param name="count">How many tasks; 0 or more.</param>
    /// <param name="mix">The relative weights of the kinds.</param>
    /// <returns>The tasks.</returns>
    /// <exception cref="ArgumentException">The mix has a negative, non-finite or all-zero weights.</exception>
    public static IReadOnlyList<DemoTask> Generate(int seed, int count, TaskMix mix)
    {
        ArgumentNullException.ThrowIfNull(mix);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (mix.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(mix));
        }

        var rng = new Random(seed);
        var tasks = new List<DemoTask>(count);
        var prompts = new HashSet<string>(StringComparer.Ordinal);
        var total = mix.Addition + mix.Subtraction + mix.Multiplication + mix.Countdown;
        var attempts = 0;
        while (tasks.Count < count)
        {
            // The space of distinct prompts is large (hundreds of thousands); this only guards a pathological mix.
            if (++attempts > (count * 100) + 1000)
            {
                throw new InvalidOperationException($"could not draw {count} distinct tasks with this mix");
            }

            var pick = rng.NextDouble() * total;
            var task = pick < mix.Addition ? Addition(rng, mix)
                : pick < mix.Addition + mix.Subtraction ? Subtraction(rng, mix)
                : pick < mix.Addition + mix.Subtraction + mix.Multiplication ? Multiplication(rng, mix)
                : mix.SmallCountdown ? SmallCountdown(rng) : Countdown(rng);
            if (prompts.Add(task.Prompt))
            {
                tasks.Add(task);
            }
        }

        return tasks;
    }

    /// <summary>Splits into train and a held-out eval set of about <paramref name="evalFraction"/> of the distinct prompts.</summary>
    /// <param name="tasks">The tasks.</param>
    /// <param name="evalFraction">The fraction held out, in [0, 1].</param>
    /// <param name="seed">The seed of the shuffle that picks the eval prompts.</param>
    /// <returns>The split; no prompt occurs on both sides, and duplicates within a side are dropped.</returns>
    public static DemoSplit Split(IReadOnlyList<DemoTask> tasks, double evalFraction, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        if (!(evalFraction >= 0 && evalFraction <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(evalFraction), evalFraction, "expected a fraction in [0, 1]");
        }

        var distinct = tasks.Select(t => t.Prompt).Distinct(StringComparer.Ordinal).Count();
        return Split(tasks, (int)Math.Round(distinct * evalFraction, MidpointRounding.AwayFromZero), seed);
    }

    /// <summary>Splits into train and a held-out eval set of <paramref name="evalCount"/> distinct prompts.</summary>
    /// <param name="tasks">The tasks.</param>
    /// <param name="evalCount">How many distinct prompts to hold out; at most the number of distinct prompts.</param>
    /// <param name="seed">The seed of the shuffle that picks the eval prompts.</param>
    /// <returns>The split, each side in the input order; no prompt occurs on both sides or twice on one side.</returns>
    public static DemoSplit Split(IReadOnlyList<DemoTask> tasks, int evalCount, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        var unique = new List<DemoTask>(tasks.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tasks)
        {
            if (seen.Add(t.Prompt))
            {
                unique.Add(t);
            }
        }

        ArgumentOutOfRangeException.ThrowIfNegative(evalCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(evalCount, unique.Count);
        var order = Enumerable.Range(0, unique.Count).ToArray();
        new Random(seed).Shuffle(order);
        var held = new bool[unique.Count];
        for (var i = 0; i < evalCount; i++)
        {
            held[order[i]] = true;
        }

        var train = new List<DemoTask>(unique.Count - evalCount);
        var eval = new List<DemoTask>(evalCount);
        for (var i = 0; i < unique.Count; i++)
        {
            (held[i] ? eval : train).Add(unique[i]);
        }

        return new DemoSplit(train, eval);
    }

    /// <summary>Whether the column addition or subtraction of the task carries or borrows at least once.</summary>
    /// <param name="task">An arithmetic task.</param>
    /// <returns><see langword="true"/> when some column carries (<c>+</c>, <c>*</c>) or borrows (<c>-</c>).</returns>
    public static bool HasCarry(DemoTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return ColumnArithmetic.Work(task.Left, task.Operator, task.Right, wrongColumn: -1, wrongDigit: 0).Carries > 0;
    }

    // The length first (uniform over the mix's range), then the value among the numbers of that length.
    private static int Operand(Random rng, TaskMix mix)
    {
        var digits = rng.Next(mix.MinOperandDigits, mix.MaxOperandDigits + 1);
        var low = (int)Math.Pow(10, digits - 1);
        return rng.Next(digits == 1 ? 0 : low, low * 10);
    }

    private static DemoTask Addition(Random rng, TaskMix mix)
    {
        var force = rng.NextDouble() < ForcedCarryFraction;
        while (true)
        {
            var a = Operand(rng, mix);
            var b = Operand(rng, mix);
            if (!force || ColumnArithmetic.Work(a, '+', b, -1, 0).Carries > 0)
            {
                return ArithmeticTask(a, '+', b, a + b);
            }
        }
    }

    private static DemoTask Subtraction(Random rng, TaskMix mix)
    {
        var force = rng.NextDouble() < ForcedCarryFraction;
        while (true)
        {
            var a = Operand(rng, mix);
            var b = Operand(rng, mix);
            if (a == b)
            {
                continue;
            }

            (a, b) = a > b ? (a, b) : (b, a);
            if (!force || ColumnArithmetic.Work(a, '-', b, -1, 0).Carries > 0)
            {
                return ArithmeticTask(a, '-', b, a - b);
            }
        }
    }

    private static DemoTask Multiplication(Random rng, TaskMix mix)
    {
        var a = Operand(rng, mix);
        var b = rng.Next(2, 10);
        return ArithmeticTask(a, '*', b, a * b);
    }

    private static DemoTask ArithmeticTask(int a, char op, int b, int result) =>
        new(DemoTask.Arithmetic,
            string.Create(CultureInfo.InvariantCulture, $"What is {a} {op} {b}?"),
            result.ToString(CultureInfo.InvariantCulture))
        {
            Left = a,
            Operator = op,
            Right = b,
        };

    /// <summary>The smallest number of a small Countdown puzzle.</summary>
    public const int SmallMin = 2;

    /// <summary>The largest number of a small Countdown puzzle.</summary>
    public const int SmallMax = 9;

    // Three numbers 2..9 used in their order; the target is the value of one random attempt over them (+ - * then
    // + -), never one of the numbers. Every such expression is a line of DemoTraces.Search, so the search can always
    // reach it.
    private static DemoTask SmallCountdown(Random rng)
    {
        while (true)
        {
            var numbers = new int[3];
            for (var i = 0; i < numbers.Length; i++)
            {
                numbers[i] = rng.Next(SmallMin, SmallMax + 1);
            }

            var trials = CountdownTrial.All(numbers);
            var pick = trials[rng.Next(trials.Count)];
            if (Array.IndexOf(numbers, (int)pick.Value) >= 0)
            {
                continue;
            }

            return new DemoTask(
                DemoTask.Countdown,
                string.Create(CultureInfo.InvariantCulture,
                    $"Using the numbers {string.Join(", ", numbers)} in this order, make {pick.Value} with + - * (each number exactly once)."),
                pick.Value.ToString(CultureInfo.InvariantCulture))
            {
                Numbers = numbers,
                Target = (int)pick.Value,
                Solution = pick.Expression.ToString(),
                Small = true,
            };
        }
    }

    private static DemoTask Countdown(Random rng)
    {
        while (true)
        {
            var numbers = new int[rng.Next(3, 5)];
            for (var i = 0; i < numbers.Length; i++)
            {
                numbers[i] = rng.Next(1, 26);
            }

            if (rng.Next(3) == 0)
            {
                numbers[rng.Next(numbers.Length)] = LargeNumbers[rng.Next(LargeNumbers.Length)];
            }

            // A puzzle is kept only when one digit of one number can be misread with every step still whole, so that
            // DemoTraces.OneDigitWrong exists for it.
            for (var attempt = 0; attempt < 50; attempt++)
            {
                if (RandomExpression(rng, numbers) is { } solution
                    && solution.Evaluate() is { } target and >= 1 and <= MaxTarget
                    && Array.IndexOf(numbers, (int)target) < 0
                    && DemoTraces.Misread(solution, target, rng: null) is not null)
                {
                    return new DemoTask(
                        DemoTask.Countdown,
                        string.Create(CultureInfo.InvariantCulture,
                            $"Using the numbers {string.Join(", ", numbers)}, make {target} with + - * / (each number exactly once)."),
                        target.ToString(CultureInfo.InvariantCulture))
                    {
                        Numbers = numbers,
                        Target = (int)target,
                        Solution = solution.ToString(),
                    };
                }
            }
        }
    }

    // Combines two random subtrees at a time until one is left, so every number is used exactly once (the countdown
    // rule demands all of them); each step stays a positive integer, so the trace can show it.
    private static CountdownExpression? RandomExpression(Random rng, int[] numbers)
    {
        var pool = numbers.Select(n => CountdownExpression.Leaf(n)).ToList();
        var values = numbers.Select(n => (long)n).ToList();
        Span<char> ops = stackalloc char[4];
        while (pool.Count > 1)
        {
            var i = rng.Next(pool.Count);
            var j = rng.Next(pool.Count - 1);
            j += j >= i ? 1 : 0;
            if (values[i] < values[j])
            {
                (i, j) = (j, i);
            }

            var (a, b) = (values[i], values[j]);
            var n = 0;
            ops[n++] = '+';
            if (a > b)
            {
                ops[n++] = '-';
            }

            if (a * b <= 10 * MaxTarget && b > 1)
            {
                ops[n++] = '*';
            }

            if (b > 1 && a % b == 0)
            {
                ops[n++] = '/';
            }

            var op = ops[rng.Next(n)];
            var node = CountdownExpression.Binary(op, pool[i], pool[j]);
            var value = CountdownExpression.Apply(op, a, b)!.Value;
            foreach (var k in new[] { i, j }.OrderDescending())
            {
                pool.RemoveAt(k);
                values.RemoveAt(k);
            }

            pool.Add(node);
            values.Add(value);
        }

        return pool[0];
    }
}
