using System.Globalization;
using System.Text;

namespace DeepSeekRL.Demo;

/// <summary>The kinds of completion in the cold-start SFT mix.</summary>
public enum TraceVariant
{
    /// <summary>The full worked reasoning and the right answer.</summary>
    Full,

    /// <summary>An empty think block (<c>&lt;think&gt;\n&lt;/think&gt;\n</c>) then <c>\boxed{ANSWER}</c>: no reasoning.</summary>
    EmptyThink,

    /// <summary>A full trace in which one step has a wrong digit, carried through to a wrong final answer.</summary>
    OneDigitWrong,

    /// <summary>Guess and check: one attempt and its check, which passes (<see cref="DemoTraces.GuessAndCheck"/>,
    /// <see cref="DemoTraces.ArithmeticGuessAndCheck"/>); an attempt answered unchecked is <see cref="EmptyThink"/> in
    /// those mixes.</summary>
    Checked,

    /// <summary>Guess and check: an attempt whose check fails, then <c>wait</c> and one whose check passes.</summary>
    Repaired,
}

/// <summary>
/// The fractions of each kind of guess-and-check trace in <see cref="DemoTraces.ArithmeticMix"/> and
/// <see cref="DemoTraces.CountdownMix"/>.
/// </summary>
/// <param name="Direct">Fraction that answer their one attempt unchecked.</param>
/// <param name="Checked">Fraction with one attempt whose check passes.</param>
/// <param name="Repaired">Fraction with an attempt whose check fails, then <c>wait</c> and one whose check passes.</param>
/// <remarks>Each in [0, 1]; they must sum to 1 (within 1e-9).</remarks>
public sealed record CheckFractions(double Direct, double Checked, double Repaired);

/// <summary>The fractions of each variant in <see cref="DemoTraces.SftMix"/>.</summary>
/// <param name="Full">Fraction of <see cref="TraceVariant.Full"/>.</param>
/// <param name="EmptyThink">Fraction of <see cref="TraceVariant.EmptyThink"/>.</param>
/// <param name="OneDigitWrong">Fraction of <see cref="TraceVariant.OneDigitWrong"/>.</param>
/// <remarks>Each in [0, 1]; they must sum to 1 (within 1e-9).</remarks>
public sealed record SftFractions(double Full, double EmptyThink, double OneDigitWrong)
{
    /// <summary>80% full, 10% empty think, 10% one digit wrong.</summary>
    public static SftFractions Default { get; } = new(0.8, 0.1, 0.1);
}

/// <summary>One supervised example: a prompt and the completion to learn.</summary>
/// <param name="Prompt">The task's prompt (no chat template).</param>
/// <param name="Completion">The R1-format completion.</param>
/// <param name="Variant">Which variant the completion is.</param>
/// <param name="Task">The task.</param>
public sealed record SftExample(string Prompt, string Completion, TraceVariant Variant, DemoTask Task);

/// <summary>
/// Compact DeepSeek-R1-format chain-of-thought completions for the demo tasks, short enough for a tiny
/// character-level model: <c>&lt;think&gt;\n</c>, the worked steps one per line, <c>&lt;/think&gt;\n</c>, then
/// <c>\boxed{ANSWER}</c>. For 607 + 844: <c>&lt;think&gt;\n7+4=11 1\n0+4+1=5 51\n6+8=14 1451\n&lt;/think&gt;\n\boxed{1451}</c>.
/// </summary>
/// <remarks>
/// <para>Arithmetic traces show one line per column, ones first, without words (<c>0+4+1=5</c> with a carry in,
/// <c>13-1-7=5</c> for a borrow, <c>4*6+4=28</c>), each followed by the running result: the digits written so far,
/// the newest first, so the last line's running result is the answer and the model never reverses digits. They score
/// 1 on <c>format_r1</c>, <c>accuracy</c> and <c>language_consistency</c> (no words scores 1). Countdown traces show one
/// line per operation (<c>25-5=20</c>); their last line is <c>\boxed{EQ} &lt;answer&gt;EQ&lt;/answer&gt;</c>, where the
/// <c>countdown</c> rule reads the equation (last line only, all numbers exactly once), so full traces score 1 there.</para>
/// <para>Deterministic for a seed; thread-safe.</para>
/// </remarks>
public static class DemoTraces
{
    /// <summary>The full trace.</summary>
    /// <param name="task">The task.</param>
    /// <returns>The completion.</returns>
    public static string Full(DemoTask task) => Compose(WorkedSteps(task), FinalLine(task, task.Kind == DemoTask.Countdown ? task.Solution! : task.Answer));

    /// <summary>No reasoning: an empty think block, then the right answer.</summary>
    /// <param name="task">The task.</param>
    /// <returns>The completion.</returns>
    public static string EmptyThink(DemoTask task) => Compose([], FinalLine(task, task.Kind == DemoTask.Countdown ? task.Solution! : task.Answer));

    /// <summary>
    /// A full trace with one wrong digit carried through: for arithmetic one column writes another digit (the carry
    /// is kept), so the answer is wrong; for Countdown one number has its last digit misread, the steps are redone
    /// with it, and the equation ends on another value and uses a number that was not given.
    /// </summary>
    /// <param name="task">The task.</param>
    /// <param name="seed">Chooses the column (or number) and the wrong digit.</param>
    /// <returns>The completion.</returns>
    public static string OneDigitWrong(DemoTask task, int seed)
    {
        ArgumentNullException.ThrowIfNull(task);
        var rng = new Random(seed);
        if (task.Kind == DemoTask.Countdown)
        {
            var wrong = MisreadNumber(task, rng);
            return Compose(wrong.Steps(), FinalLine(task, wrong.ToString()));
        }

        var right = ColumnArithmetic.Work(task.Left, task.Operator, task.Right, -1, 0);
        var column = rng.Next(right.Digits.Count);
        var digit = rng.Next(9);
        digit += digit >= right.Digits[column] ? 1 : 0;
        var work = ColumnArithmetic.Work(task.Left, task.Operator, task.Right, column, digit);
        return Compose(work.Lines, FinalLine(task, work.Answer.ToString(CultureInfo.InvariantCulture)));
    }

    /// <summary>
    /// The cold-start trace of a small Countdown puzzle (<see cref="DemoTask.Small"/>): a systematic search. Every
    /// attempt of <see cref="CountdownTrial.All"/> in its fixed order, one per line (<c>5+8=13 13+5=18</c>), up to and
    /// including the first that makes the target, then <c>&lt;answer&gt;EQ&lt;/answer&gt;</c>, which the
    /// <c>countdown</c> rule reads. The model cannot know the solution before trying: it learns to enumerate, compute
    /// each step and stop when the value is the target, so what RL can improve here is the reasoning itself (right
    /// steps, the right stop), not whether it reasons.
    /// </summary>
    /// <param name="task">A small Countdown task.</param>
    /// <returns>The completion.</returns>
    /// <exception cref="ArgumentException">The task is not a small Countdown puzzle, or no attempt makes its target.</exception>
    public static string Search(DemoTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (!task.Small || task.Numbers is null || task.Target is null)
        {
            throw new ArgumentException($"'{task.Prompt}': expected a small Countdown task", nameof(task));
        }

        var trials = CountdownTrial.All(task.Numbers);
        var hit = -1;
        for (var i = 0; i < trials.Count && hit < 0; i++)
        {
            hit = trials[i].Value == task.Target ? i : -1;
        }

        if (hit < 0)
        {
            throw new ArgumentException($"'{task.Prompt}': no attempt with the numbers in their order makes {task.Target}", nameof(task));
        }

        return Compose(trials.Take(hit + 1).Select(t => t.Line).ToList(), $"<answer>{trials[hit].Expression}</answer>");
    }

    /// <summary>
    /// A guess-and-check trace of a small Countdown puzzle: each attempt is an equation over the numbers in their order
    /// (<c>8+4-7</c>) followed by its check, the attempt's steps and the verdict against the target
    /// (<c>check: 8+4=12 12-7=5 vs 25 no</c>); a failed check is followed by <c>wait</c> and another attempt; the last
    /// attempt makes the target (<c>check: 8*4=32 32-7=25 vs 25 yes</c>) and is the answer. With no failed attempt and
    /// <paramref name="check"/> false the attempt is answered unchecked (<c>8*4-7</c> alone in the think block: every
    /// kind reasons, so <c>format_r1</c> pays them alike and only correctness rewards checking). Checking costs two small
    /// steps, a first guess is often wrong, and a caught mistake is repaired in the same response: RL, not the cold
    /// start, has to make checking common (the reflection metrics read the check lines: DeepSeekRL.Rewards.Reflection).
    /// </summary>
    /// <param name="task">A small Countdown task.</param>
    /// <param name="failedAttempts">Attempts that miss the target before the right one (0 to the number of misses).</param>
    /// <param name="check">Whether the right attempt is written and checked (true whenever an attempt failed).</param>
    /// <param name="rng">Chooses the failed attempts and, among several, the right one.</param>
    /// <returns>The completion.</returns>
    /// <exception cref="ArgumentException">The task is not a small Countdown puzzle, or no attempt makes its target.</exception>
    public static string GuessAndCheck(DemoTask task, int failedAttempts, bool check, Random rng)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(rng);
        if (!task.Small || task.Numbers is null || task.Target is null)
        {
            throw new ArgumentException($"'{task.Prompt}': expected a small Countdown task", nameof(task));
        }

        var trials = CountdownTrial.All(task.Numbers);
        var hits = trials.Where(t => t.Value == task.Target).ToList();
        var misses = trials.Where(t => t.Value != task.Target).ToArray();
        if (hits.Count == 0)
        {
            throw new ArgumentException($"'{task.Prompt}': no attempt with the numbers in their order makes {task.Target}", nameof(task));
        }

        rng.Shuffle(misses);
        var right = hits[rng.Next(hits.Count)];
        var lines = new List<string>();
        foreach (var miss in misses.Take(failedAttempts))
        {
            lines.Add(Attempt(miss));
            lines.Add(Check(miss, task.Target.Value));
            lines.Add("wait");
        }

        lines.Add(Attempt(right));
        if (check || failedAttempts > 0)
        {
            lines.Add(Check(right, task.Target.Value));
        }

        return Compose(lines, $"<answer>{right.Expression}</answer>");

        static string Attempt(CountdownTrial t) => t.Expression.ToString().Replace(" ", string.Empty, StringComparison.Ordinal);

        // The target is copied next to the value, so the verdict compares two adjacent numbers.
        static string Check(CountdownTrial t, int target) => string.Create(CultureInfo.InvariantCulture, $"check: {t.Line} vs {target} {(t.Value == target ? "yes" : "no")}");
    }

    /// <summary>
    /// The cold-start mix of small Countdown puzzles: with <paramref name="fractions"/> of each kind of
    /// <see cref="GuessAndCheck"/> trace (rounded; the direct answers take the remainder), assigned to tasks by a seeded
    /// shuffle; a repaired trace fails once (two failures made traces of up to 160 characters, over the demo's
    /// generation budget of a character-level model).
    /// </summary>
    /// <param name="tasks">Small Countdown tasks.</param>
    /// <param name="seed">The seed of the assignment and of the attempts.</param>
    /// <param name="fractions">The fractions of each kind.</param>
    /// <returns>The examples, in task order.</returns>
    /// <exception cref="ArgumentException">A fraction is outside [0, 1] or they do not sum to 1.</exception>
    public static IReadOnlyList<SftExample> CountdownMix(IReadOnlyList<DemoTask> tasks, int seed, CheckFractions fractions)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        var variants = CheckVariants(tasks.Count, seed, fractions);
        var rng = new Random(seed);
        var examples = new List<SftExample>(tasks.Count);
        for (var i = 0; i < tasks.Count; i++)
        {
            var misses = CountdownTrial.All(tasks[i].Numbers ?? []).Count(t => t.Value != tasks[i].Target);
            var failed = variants[i] == TraceVariant.Repaired ? Math.Min(misses, 1) : 0;
            var variant = variants[i] == TraceVariant.Repaired && failed == 0 ? TraceVariant.Checked : variants[i];
            examples.Add(new SftExample(tasks[i].Prompt, GuessAndCheck(tasks[i], failed, variant != TraceVariant.EmptyThink, rng), variant, tasks[i]));
        }

        return examples;
    }

    /// <summary>
    /// A guess-and-check trace of an arithmetic task (the family where checking pays): the first line of the think
    /// block is a guess at the answer, written at once; a checked trace then restates the operands, works the columns
    /// (with their running result) and compares the guess with the worked result (<c>check: 1461 vs 1451 no</c>); a
    /// failed check is followed by <c>wait</c>, the worked result as the next attempt and its own check, which passes.
    /// For 607 + 844 repaired: <c>&lt;think&gt;\n1461\n607+844\n7+4=11 1\n0+4+1=5 51\n6+8=14 1451\ncheck: 1461 vs 1451 no\nwait\n1451\ncheck: 1451 vs 1451 yes\n&lt;/think&gt;\n\boxed{1451}</c>.
    /// An unchecked trace is the guess alone (<c>&lt;think&gt;\n1451\n&lt;/think&gt;\n\boxed{1451}</c>): every kind writes
    /// reasoning, so <c>format_r1</c> pays them alike and only correctness can reward checking. A small model cannot add
    /// 3-4 digit numbers at once but works the columns reliably, so its first guesses are often wrong in a way the check
    /// catches and repairs in the same response.
    /// </summary>
    /// <param name="task">An arithmetic task.</param>
    /// <param name="variant"><see cref="TraceVariant.EmptyThink"/> (the right guess, unchecked), <see cref="TraceVariant.Checked"/>
    /// (the right guess, checked) or <see cref="TraceVariant.Repaired"/> (a wrong guess, caught and repaired).</param>
    /// <param name="rng">Chooses the wrong guess's digits (its length and leading digit are the answer's).</param>
    /// <returns>The completion.</returns>
    /// <exception cref="ArgumentException">The task is a Countdown puzzle, or the variant is another one.</exception>
    public static string ArithmeticGuessAndCheck(DemoTask task, TraceVariant variant, Random rng)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(rng);
        if (task.Kind != DemoTask.Arithmetic)
        {
            throw new ArgumentException($"'{task.Prompt}': expected an arithmetic task", nameof(task));
        }

        var work = ColumnArithmetic.Work(task.Left, task.Operator, task.Right, -1, 0);
        var answer = work.Answer.ToString(CultureInfo.InvariantCulture);

        // The check restates the operands before working them, so the column lines read the digits just written: without
        // the restatement (full preset, seed 1) they read the guess's digits as the operands' (904 + 752 under the guess
        // 1466 worked as 4+2, 0+6, 9+7) and 0.020 of the held-out sums were right after the cold start, against 0.060.
        var operands = string.Create(CultureInfo.InvariantCulture, $"{task.Left}{task.Operator}{task.Right}");
        var lines = new List<string>();
        switch (variant)
        {
            case TraceVariant.EmptyThink:
                lines.Add(answer);
                break;
            case TraceVariant.Checked:
                lines.Add(answer);
                lines.Add(operands);
                lines.AddRange(work.Lines);
                lines.Add($"check: {answer} vs {answer} yes");
                break;
            case TraceVariant.Repaired:
                var guess = WrongGuess(answer, rng);
                lines.Add(guess);
                lines.Add(operands);
                lines.AddRange(work.Lines);
                lines.Add($"check: {guess} vs {answer} no");
                lines.Add("wait");
                lines.Add(answer);
                lines.Add($"check: {answer} vs {answer} yes");
                break;
            default:
                throw new ArgumentException($"variant {variant}: expected EmptyThink, Checked or Repaired", nameof(variant));
        }

        return Compose(lines, FinalLine(task, answer));
    }

    /// <summary>
    /// The cold-start mix of arithmetic tasks in the guess-and-check form (<see cref="ArithmeticGuessAndCheck"/>): with
    /// <paramref name="fractions"/> of each kind (rounded; the unchecked guesses take the remainder), assigned to tasks
    /// by a seeded shuffle.
    /// </summary>
    /// <param name="tasks">Arithmetic tasks.</param>
    /// <param name="seed">The seed of the assignment and of the wrong guesses.</param>
    /// <param name="fractions">The fractions of each kind.</param>
    /// <returns>The examples, in task order.</returns>
    /// <exception cref="ArgumentException">A fraction is outside [0, 1] or they do not sum to 1.</exception>
    public static IReadOnlyList<SftExample> ArithmeticMix(IReadOnlyList<DemoTask> tasks, int seed, CheckFractions fractions)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        var variants = CheckVariants(tasks.Count, seed, fractions);
        var rng = new Random(seed + 1);
        return [.. tasks.Select((t, i) => new SftExample(t.Prompt, ArithmeticGuessAndCheck(t, variants[i], rng), variants[i], t))];
    }

    /// <summary>The completion of one variant.</summary>
    /// <param name="task">The task.</param>
    /// <param name="variant">The variant.</param>
    /// <param name="seed">The seed of <see cref="OneDigitWrong"/>.</param>
    /// <returns>The completion.</returns>
    public static string Render(DemoTask task, TraceVariant variant, int seed) => variant switch
    {
        TraceVariant.Full => Full(task),
        TraceVariant.EmptyThink => EmptyThink(task),
        TraceVariant.OneDigitWrong => OneDigitWrong(task, seed),
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, "unknown variant"),
    };

    /// <summary>
    /// The worked steps of the full trace, one per line, without tags or the answer line: one per column for
    /// arithmetic (<c>0+4+1=5 51</c>, with the running result), one per operation for Countdown (<c>25-5=20</c>).
    /// </summary>
    /// <param name="task">The task.</param>
    /// <returns>The lines.</returns>
    public static IReadOnlyList<string> WorkedSteps(DemoTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.Kind == DemoTask.Countdown
            ? CountdownExpression.Parse(task.Solution!).Steps()
            : ColumnArithmetic.Work(task.Left, task.Operator, task.Right, -1, 0).Lines;
    }

    /// <summary>
    /// The cold-start SFT mix: one example per task, with <paramref name="fractions"/> of each variant (rounded; the
    /// full traces take the remainder), the variants assigned to tasks by a seeded shuffle.
    /// </summary>
    /// <param name="tasks">The tasks.</param>
    /// <param name="seed">The seed of the assignment and of the wrong digits.</param>
    /// <param name="fractions">The fractions of each variant.</param>
    /// <returns>The examples, in task order.</returns>
    /// <exception cref="ArgumentException">A fraction is outside [0, 1] or they do not sum to 1.</exception>
    public static IReadOnlyList<SftExample> SftMix(IReadOnlyList<DemoTask> tasks, int seed, SftFractions fractions)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        ArgumentNullException.ThrowIfNull(fractions);
        double[] f = [fractions.Full, fractions.EmptyThink, fractions.OneDigitWrong];
        if (f.Any(x => !(x >= 0 && x <= 1)) || Math.Abs(f.Sum() - 1) > 1e-9)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"fractions {fractions.Full}, {fractions.EmptyThink}, {fractions.OneDigitWrong}: expected each in [0, 1] and a sum of 1"),
                nameof(fractions));
        }

        var n = tasks.Count;
        var empty = (int)Math.Round(n * fractions.EmptyThink, MidpointRounding.AwayFromZero);
        var wrong = Math.Min(n - empty, (int)Math.Round(n * fractions.OneDigitWrong, MidpointRounding.AwayFromZero));
        var order = Enumerable.Range(0, n).ToArray();
        var rng = new Random(seed);
        rng.Shuffle(order);
        var variants = new TraceVariant[n];
        for (var i = 0; i < n; i++)
        {
            variants[order[i]] = i < empty ? TraceVariant.EmptyThink : i < empty + wrong ? TraceVariant.OneDigitWrong : TraceVariant.Full;
        }

        var examples = new List<SftExample>(n);
        for (var i = 0; i < n; i++)
        {
            // Small Countdown puzzles always get a search trace: there is no honest direct answer to teach.
            var small = tasks[i].Small;
            var completion = small ? Search(tasks[i]) : Render(tasks[i], variants[i], rng.Next());
            examples.Add(new SftExample(tasks[i].Prompt, completion, small ? TraceVariant.Full : variants[i], tasks[i]));
        }

        return examples;
    }

    // Each task's kind in a guess-and-check mix: the checked and repaired counts rounded, the unchecked the remainder.
    private static TraceVariant[] CheckVariants(int n, int seed, CheckFractions fractions)
    {
        ArgumentNullException.ThrowIfNull(fractions);
        double[] f = [fractions.Direct, fractions.Checked, fractions.Repaired];
        if (f.Any(x => !(x >= 0 && x <= 1)) || Math.Abs(f.Sum() - 1) > 1e-9)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"fractions {fractions.Direct}, {fractions.Checked}, {fractions.Repaired}: expected each in [0, 1] and a sum of 1"),
                nameof(fractions));
        }

        var checkedCount = (int)Math.Round(n * fractions.Checked, MidpointRounding.AwayFromZero);
        var repaired = Math.Min(n - checkedCount, (int)Math.Round(n * fractions.Repaired, MidpointRounding.AwayFromZero));
        var order = Enumerable.Range(0, n).ToArray();
        new Random(seed).Shuffle(order);
        var variants = new TraceVariant[n];
        for (var i = 0; i < n; i++)
        {
            variants[order[i]] = i < checkedCount ? TraceVariant.Checked : i < checkedCount + repaired ? TraceVariant.Repaired : TraceVariant.EmptyThink;
        }

        return variants;
    }

    // A wrong guess as a quick head sum gives it: the answer's length and leading digit, the other digits at random. (A
    // guess one digit off let the cold-started model copy the guess's digits into the column work, which fitted 3 of 4
    // digits of every trace, instead of adding: with random digits only the work fits.)
    private static string WrongGuess(string answer, Random rng)
    {
        var digits = answer.ToCharArray();
        while (true)
        {
            for (var i = answer.Length > 1 ? 1 : 0; i < digits.Length; i++)
            {
                digits[i] = (char)('0' + rng.Next(10));
            }

            var guess = new string(digits);
            if (guess != answer)
            {
                return guess;
            }
        }
    }

    private static string Compose(IReadOnlyList<string> steps, string finalLine)
    {
        var sb = new StringBuilder("<think>\n");
        foreach (var line in steps)
        {
            sb.Append(line).Append('\n');
        }

        return sb.Append("</think>\n").Append(finalLine).ToString();
    }

    // The countdown rule reads <answer> on the last line only; the accuracy rule reads the boxed answer.
    private static string FinalLine(DemoTask task, string answer) => task.Kind == DemoTask.Countdown
        ? $"\\boxed{{{answer}}} <answer>{answer}</answer>"
        : $"\\boxed{{{answer}}}";

    private static CountdownExpression MisreadNumber(DemoTask task, Random rng) =>
        Misread(CountdownExpression.Parse(task.Solution!), task.Target!.Value, rng)
        ?? throw new InvalidOperationException($"no misreading of '{task.Solution}' keeps its steps whole"); // the generator rules these out

    /// <summary>
    /// Misreads one number of <paramref name="solution"/> (another last digit) and redoes it with that number: the
    /// first candidate, in a seeded order (or in order without <paramref name="rng"/>), whose steps stay positive
    /// integers and whose value is not <paramref name="target"/>; <see langword="null"/> when there is none.
    /// </summary>
    internal static CountdownExpression? Misread(CountdownExpression solution, long target, Random? rng)
    {
        var leaves = solution.Leaves();
        var candidates = new List<(int Leaf, long Number)>();
        for (var leaf = 0; leaf < leaves.Count; leaf++)
        {
            var n = leaves[leaf];
            for (var d = 0; d < 10; d++)
            {
                var m = n - (n % 10) + d;
                if (m != n && m > 0)
                {
                    candidates.Add((leaf, m));
                }
            }
        }

        rng?.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(candidates));
        foreach (var (leaf, number) in candidates)
        {
            var wrong = solution.WithLeaf(leaf, number);
            if (wrong.Evaluate() is { } value && value != target)
            {
                return wrong;
            }
        }

        return null;
    }
}
