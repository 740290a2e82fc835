namespace DeepSeekRL.Demo;

/// <summary>One seeded task of the <c>demo</c> command: a column-arithmetic question or a Countdown puzzle.</summary>
/// <param name="Kind"><see cref="DemoTask.Arithmetic"/> or <see cref="DemoTask.Countdown"/>.</param>
/// <param name="Prompt">The question text, e.g. <c>What is 347 + 289?</c>.</param>
/// <param name="Answer">The gold answer: the result for arithmetic, the target (as a string) for Countdown.</param>
public sealed record DemoTask(string Kind, string Prompt, string Answer)
{
    /// <summary>The kind of a column-arithmetic task.</summary>
    public const string Arithmetic = "arithmetic";

    /// <summary>The kind of a Countdown task.</summary>
    public const string Countdown = "countdown";

    /// <summary>Countdown only: the numbers to use, each exactly once (the <c>countdown</c> rule's <c>numbers</c>).</summary>
    public int[]? Numbers { get; init; }

    /// <summary>Countdown only: the positive target, at most 1000 (the <c>countdown</c> rule's <c>target</c>).</summary>
    public int? Target { get; init; }

    /// <summary>Countdown only: one solution, an equation over <see cref="Numbers"/> such as <c>(25 - 5) * 5</c>.</summary>
    public string? Solution { get; init; }

    /// <summary>
    /// Countdown only: a three-number puzzle of the demo's size (numbers 2–9, <c>+ - *</c>, two operations), whose
    /// cold-start trace searches (<see cref="DemoTraces.Search"/>) instead of stating the solution.
    /// </summary>
    public bool Small { get; init; }

    /// <summary>Arithmetic only: the left operand.</summary>
    public int Left { get; init; }

    /// <summary>Arithmetic only: <c>+</c>, <c>-</c> or <c>*</c>; <c>'\0'</c> for Countdown.</summary>
    public char Operator { get; init; }

    /// <summary>Arithmetic only: the right operand (one digit for <c>*</c>).</summary>
    public int Right { get; init; }
}

/// <summary>Relative weights of the task kinds that <see cref="DemoTaskGenerator"/> draws.</summary>
/// <param name="Addition">Weight of additions; non-negative.</param>
/// <param name="Subtraction">Weight of subtractions; non-negative.</param>
/// <param name="Multiplication">Weight of multiplications; non-negative.</param>
/// <param name="Countdown">Weight of Countdown puzzles; non-negative.</param>
/// <remarks>The weights need not sum to 1; at least one must be positive.</remarks>
public sealed record TaskMix(double Addition, double Subtraction, double Multiplication, double Countdown)
{
    /// <summary>All four kinds, equally often.</summary>
    public static TaskMix Default { get; } = new(1, 1, 1, 1);

    /// <summary>Arithmetic only (the three operations equally often).</summary>
    public static TaskMix ArithmeticOnly { get; } = new(1, 1, 1, 0);

    /// <summary>Countdown only.</summary>
    public static TaskMix CountdownOnly { get; } = new(0, 0, 0, 1);

    /// <summary>
    /// Whether Countdown puzzles are the small kind (<see cref="DemoTask.Small"/>: three numbers 2–9 in the order given, <c>+ - *</c>)
    /// instead of 3–4 numbers up to 25 (or 50/75/100) with all four operations.
    /// </summary>
    public bool SmallCountdown { get; init; }

    /// <summary>The fewest digits of an arithmetic operand (the one-digit factor of <c>*</c> aside); 1 to 9.</summary>
    public int MinOperandDigits { get; init; } = 2;

    /// <summary>The most digits of an arithmetic operand; <see cref="MinOperandDigits"/> to 9. Each operand's length is drawn uniformly.</summary>
    public int MaxOperandDigits { get; init; } = 3;

    /// <summary>What is wrong with the weights, or <see langword="null"/>.</summary>
    /// <returns>A one-line message naming the bad weight.</returns>
    public string? Validate()
    {
        double[] weights = [Addition, Subtraction, Multiplication, Countdown];
        foreach (var w in weights)
        {
            if (!double.IsFinite(w) || w < 0)
            {
                return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"task mix weight {w}: expected a finite non-negative number");
            }
        }

        if (MinOperandDigits is < 1 or > 9 || MaxOperandDigits < MinOperandDigits || MaxOperandDigits > 9)
        {
            return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"task mix operand digits {MinOperandDigits}..{MaxOperandDigits}: expected 1 <= min <= max <= 9");
        }

        return weights.Sum() > 0 ? null : "task mix: every weight is 0; expected at least one positive weight";
    }
}

/// <summary>A train / held-out evaluation split with no prompt on both sides.</summary>
/// <param name="Train">The training tasks.</param>
/// <param name="Eval">The held-out evaluation tasks.</param>
public sealed record DemoSplit(IReadOnlyList<DemoTask> Train, IReadOnlyList<DemoTask> Eval);
