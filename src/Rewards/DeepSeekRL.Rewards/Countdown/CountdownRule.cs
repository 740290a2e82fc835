using System.Text.Json;

namespace DeepSeekRL.Rewards.Countdown;

/// <summary>
/// <c>countdown</c>: TinyZero's Countdown scorer. The equation is the last <c>&lt;answer&gt;...&lt;/answer&gt;</c>
/// (after the <c>Assistant:</c> marker when present; on the last line by default); it must use exactly the given
/// numbers, each once, and only digits, <c>+ - * / ( ) .</c> and spaces; it is evaluated with true division.
/// </summary>
/// <remarks>
/// <para>Scores (TinyZero's defaults): <see cref="CountdownRewardOptions.Score"/> (1.0) when |value − target| &lt; 1e-5;
/// <see cref="CountdownRewardOptions.FormatScore"/> (0.1) when an answer is present but uses other numbers, other
/// characters, does not parse, divides by zero or has another value; 0 when there is no answer.</para>
/// <para>Inputs: <c>target</c> (a number) and <c>numbers</c> (an array of integers) from the row's fields, or the same
/// two inside a <c>ground_truth</c> object field (TinyZero's layout). Missing or malformed fields give a missing score.</para>
/// <para>Differences from TinyZero: <c>**</c> and <c>//</c> are rejected unless
/// <see cref="CountdownRewardOptions.PythonOperators"/> (TinyZero's <c>eval</c> accepts them); the
/// <c>Assistant:</c> marker is optional unless <see cref="CountdownRewardOptions.RequireAssistantMarker"/>, because
/// completions here carry no prompt. Thread-safe; no allocation for up to 64 numbers.</para>
/// </remarks>
[RewardRule("countdown")]
internal sealed class CountdownRule : IRewardRule
{
    private const string AnswerOpen = "<answer>";
    private const string AnswerClose = "</answer>";

    private readonly CountdownRewardOptions _options;

    /// <summary>Creates the rule.</summary>
    /// <param name="options">Its options (validated).</param>
    public CountdownRule(CountdownRewardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _options = options;
    }

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken)
    {
        if (!TryReadProblem(args.Fields, out var target, out var numbers, out var problem))
        {
            return ValueTask.FromResult(RewardOutcome.Missing(problem));
        }

        return ValueTask.FromResult(Score(args.Completion, target, numbers));
    }

    /// <summary>Scores a completion against a problem.</summary>
    /// <param name="completion">The completion.</param>
    /// <param name="target">The target value.</param>
    /// <param name="numbers">The numbers to use, each once.</param>
    /// <returns>The outcome, with a short reason.</returns>
    public RewardOutcome Score(string completion, double target, ReadOnlySpan<long> numbers)
    {
        if (!TryExtractEquation(completion, out var equation))
        {
            return RewardOutcome.Score(0, "no <answer>");
        }

        if (!UsesExactly(equation, numbers))
        {
            return RewardOutcome.Score(_options.FormatScore, "numbers not used exactly once each");
        }

        if (!CountdownEquation.HasOnlyAllowedCharacters(equation)
            || !CountdownEquation.TryEvaluate(equation, _options.PythonOperators, out var value))
        {
            return RewardOutcome.Score(_options.FormatScore, "invalid equation");
        }

        return Math.Abs(value - target) < 1e-5
            ? RewardOutcome.Score(_options.Score)
            : RewardOutcome.Score(_options.FormatScore, "wrong value");
    }

    /// <summary>Finds the equation: the stripped content of the last answer block.</summary>
    /// <param name="completion">The completion.</param>
    /// <param name="equation">The equation.</param>
    /// <returns>Whether an answer block was found.</returns>
    public bool TryExtractEquation(string completion, out ReadOnlySpan<char> equation)
    {
        equation = default;
        var text = completion.AsSpan();
        var marker = text.IndexOf("Assistant:", StringComparison.Ordinal);
        var markerLength = "Assistant:".Length;
        if (marker < 0)
        {
            marker = text.IndexOf("<|im_start|>assistant", StringComparison.Ordinal);
            markerLength = "<|im_start|>assistant".Length;
        }

        if (marker >= 0)
        {
            text = text[(marker + markerLength)..];
        }
        else if (_options.RequireAssistantMarker)
        {
            return false;
        }

        if (_options.LastLineOnly)
        {
            text = text[(text.LastIndexOf('\n') + 1)..];
        }

        // re.finditer(r"<answer>(.*?)</answer>"): leftmost opening, nearest closing, resume after it; keep the last.
        var found = false;
        var position = 0;
        while (true)
        {
            var open = text[position..].IndexOf(AnswerOpen, StringComparison.Ordinal);
            if (open < 0)
            {
                break;
            }

            var contentStart = position + open + AnswerOpen.Length;
            var close = text[contentStart..].IndexOf(AnswerClose, StringComparison.Ordinal);
            if (close < 0)
            {
                break;
            }

            equation = text.Slice(contentStart, close);
            found = true;
            position = contentStart + close + AnswerClose.Length;
        }

        equation = equation.Trim();
        return found;
    }

    // TinyZero: sorted(int(n) for n in re.findall(r"\d+", equation)) == sorted(numbers).
    private static bool UsesExactly(ReadOnlySpan<char> equation, ReadOnlySpan<long> numbers)
    {
        if (numbers.Length > 64)
        {
            return UsesExactlySlow(equation, numbers);
        }

        Span<long> used = stackalloc long[numbers.Length];
        var count = 0;
        for (var i = 0; i < equation.Length;)
        {
            if (!char.IsAsciiDigit(equation[i]))
            {
                i++;
                continue;
            }

            long n = 0;
            var overflow = false;
            for (; i < equation.Length && char.IsAsciiDigit(equation[i]); i++)
            {
                overflow |= n > (long.MaxValue - 9) / 10;
                n = overflow ? 0 : (n * 10) + (equation[i] - '0');
            }

            if (overflow || count == numbers.Length)
            {
                return false;
            }

            used[count++] = n;
        }

        if (count != numbers.Length)
        {
            return false;
        }

        Span<long> given = stackalloc long[numbers.Length];
        numbers.CopyTo(given);
        given.Sort();
        used.Sort();
        return used.SequenceEqual(given);
    }

    private static bool UsesExactlySlow(ReadOnlySpan<char> equation, ReadOnlySpan<long> numbers)
    {
        var used = new List<long>();
        for (var i = 0; i < equation.Length;)
        {
            if (!char.IsAsciiDigit(equation[i]))
            {
                i++;
                continue;
            }

            var start = i;
            while (i < equation.Length && char.IsAsciiDigit(equation[i]))
            {
                i++;
            }

            if (!long.TryParse(equation[start..i], out var n))
            {
                return false;
            }

            used.Add(n);
        }

        var given = numbers.ToArray();
        Array.Sort(given);
        used.Sort();
        return used.Count == given.Length && System.Runtime.InteropServices.CollectionsMarshal.AsSpan(used).SequenceEqual(given);
    }

    /// <summary>Reads <c>target</c> and <c>numbers</c> from the fields, or from a <c>ground_truth</c> object.</summary>
    /// <param name="fields">The row's fields.</param>
    /// <param name="target">The target.</param>
    /// <param name="numbers">The numbers.</param>
    /// <param name="problem">Why they could not be read.</param>
    /// <returns>Whether both were read.</returns>
    internal static bool TryReadProblem(IReadOnlyDictionary<string, JsonElement> fields, out double target, out long[] numbers, out string problem)
    {
        target = 0;
        numbers = [];
        JsonElement targetElement;
        JsonElement numbersElement;
        if (fields.TryGetValue("target", out targetElement) && fields.TryGetValue("numbers", out numbersElement))
        {
            // both at the top level
        }
        else if (fields.TryGetValue("ground_truth", out var truth) && truth.ValueKind == JsonValueKind.Object
            && truth.TryGetProperty("target", out targetElement) && truth.TryGetProperty("numbers", out numbersElement))
        {
            // TinyZero's reward_model.ground_truth layout
        }
        else
        {
            problem = "fields 'target' and 'numbers' (or a 'ground_truth' object holding them) are missing";
            return false;
        }

        if (targetElement.ValueKind != JsonValueKind.Number || !targetElement.TryGetDouble(out target) || !double.IsFinite(target))
        {
            problem = $"field 'target': expected a number, got {targetElement.ValueKind}";
            return false;
        }

        if (numbersElement.ValueKind != JsonValueKind.Array)
        {
            problem = $"field 'numbers': expected an array of integers, got {numbersElement.ValueKind}";
            return false;
        }

        numbers = new long[numbersElement.GetArrayLength()];
        var i = 0;
        foreach (var item in numbersElement.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out numbers[i]) || numbers[i] < 0)
            {
                problem = $"field 'numbers': item {i} is {item.GetRawText()}, expected a non-negative integer";
                return false;
            }

            i++;
        }

        problem = string.Empty;
        return true;
    }
}
