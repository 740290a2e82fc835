// Public entry point of the math-answer verifier: extraction, normalisation, parsing and equivalence, under a time
// limit. Used by the accuracy rule, the correctness-aware length rules and the rejection-sampling filter.
namespace DeepSeekRL.Rewards.Accuracy;

/// <summary>How a comparison ended.</summary>
public enum MathVerifyStatus
{
    /// <summary>The prediction is equivalent to the gold answer.</summary>
    Equal,

    /// <summary>The prediction has an answer that is not equivalent to the gold answer.</summary>
    NotEqual,

    /// <summary>No answer could be extracted from, or parsed in, the gold text: the sample cannot be scored.</summary>
    GoldUnparsable,

    /// <summary>The prediction contains no answer.</summary>
    NoAnswer,

    /// <summary>The time limit passed before a decision.</summary>
    TimedOut,
}

/// <summary>The result of <see cref="MathVerifier.Verify"/>: a status and a short reason for logs and reports.</summary>
/// <param name="Status">How the comparison ended.</param>
/// <param name="Reason">A short human-readable reason (never null).</param>
public readonly record struct MathVerifyResult(MathVerifyStatus Status, string Reason)
{
    /// <summary>True when the prediction matched the gold answer.</summary>
    public bool IsEqual => Status == MathVerifyStatus.Equal;
}

/// <summary>Settings of one comparison.</summary>
public sealed class MathVerifyOptions
{
    /// <summary>Shared default options (precision 6, strict, 1 s limit, system clock).</summary>
    public static MathVerifyOptions Default { get; } = new();

    /// <summary>Decimal places numbers are rounded to when a decimal literal takes part. Default 6; range 0..15.</summary>
    public int Precision { get; init; } = 6;

    /// <summary>Strict variable matching: <c>f(x)</c> differs from <c>f(y)</c>. Default true.</summary>
    public bool Strict { get; init; } = true;

    /// <summary>Lets a gold interval match a predicted inequality chain (<c>[-2,7]</c> vs <c>-2 ≤ x ≤ 7</c>). Default false.</summary>
    public bool AllowSetRelationComparison { get; init; }

    /// <summary>Where answers are looked for. Default <see cref="AnswerExtraction.All"/>.</summary>
    public AnswerExtraction Extraction { get; init; } = AnswerExtraction.All;

    /// <summary>Wall-clock limit of one comparison. Default 1 s; must be positive.</summary>
    public TimeSpan TimeLimit { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Clock for the time limit. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>Math-Verify-like answer checking: gold first, prediction second (asymmetric).</summary>
/// <remarks>Thread-safe: all state is per call. Deterministic: sample points come from a fixed seed.</remarks>
public static class MathVerifier
{
    /// <summary>Compares the answer in <paramref name="prediction"/> with the answer in <paramref name="gold"/>.</summary>
    /// <param name="gold">The reference answer or solution text (its answer is extracted as from a prediction).</param>
    /// <param name="prediction">The completion.</param>
    /// <param name="options">Comparison settings; null means <see cref="MathVerifyOptions.Default"/>.</param>
    /// <param name="cancellationToken">Cancels the comparison (throws <see cref="OperationCanceledException"/>).</param>
    public static MathVerifyResult Verify(string gold, string prediction, MathVerifyOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(gold);
        ArgumentNullException.ThrowIfNull(prediction);
        options ??= MathVerifyOptions.Default;
        var goldAnswer = AnswerExtractor.Extract(gold, options.Extraction);
        if (goldAnswer is null)
        {
            return new(MathVerifyStatus.GoldUnparsable, "no answer found in the gold text");
        }

        var predAnswer = AnswerExtractor.Extract(prediction, options.Extraction);
        if (predAnswer is null)
        {
            return new(MathVerifyStatus.NoAnswer, "no answer found in the completion");
        }

        return VerifyAnswers(goldAnswer, predAnswer, options, cancellationToken);
    }

    /// <summary>Compares two already extracted answers (e.g. a GSM8K gold after <c>####</c> and a boxed content).</summary>
    /// <param name="goldAnswer">The gold answer expression.</param>
    /// <param name="predictedAnswer">The predicted answer expression.</param>
    /// <param name="options">Comparison settings; null means <see cref="MathVerifyOptions.Default"/>.</param>
    /// <param name="cancellationToken">Cancels the comparison.</param>
    public static MathVerifyResult VerifyAnswers(string goldAnswer, string predictedAnswer, MathVerifyOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(goldAnswer);
        ArgumentNullException.ThrowIfNull(predictedAnswer);
        options ??= MathVerifyOptions.Default;

        // Fast path: two plain numbers (the GSM8K case) compare without the parser.
        if (TryPlainNumber(goldAnswer, out var g, out var gFloat) && TryPlainNumber(predictedAnswer, out var p, out var pFloat))
        {
            var equal = g == p || ((gFloat || pFloat) && g.RoundScaled(options.Precision) == p.RoundScaled(options.Precision));
            return equal ? new(MathVerifyStatus.Equal, "numbers equal") : new(MathVerifyStatus.NotEqual, "numbers differ");
        }

        var budget = new VerifyBudget(options.TimeProvider, options.TimeLimit, cancellationToken);
        try
        {
            var goldText = AnswerExtractor.Normalize(goldAnswer, options.Extraction, out var goldPlain);
            var predText = AnswerExtractor.Normalize(predictedAnswer, options.Extraction, out var predPlain);
            budget.Check();
            var goldNode = goldPlain is not null ? MathNode.Text(goldPlain) : MathParser.TryParse(goldText, budget);
            var predNode = predPlain is not null ? MathNode.Text(predPlain) : MathParser.TryParse(predText, budget);
            if (goldNode is null)
            {
                return Squash(goldText) == Squash(predText) && goldText.Length > 0
                    ? new(MathVerifyStatus.Equal, "gold not parsed; identical text")
                    : new(MathVerifyStatus.GoldUnparsable, "gold answer does not parse: " + Clip(goldText));
            }

            if (predNode is null)
            {
                return Squash(goldText) == Squash(predText)
                    ? new(MathVerifyStatus.Equal, "identical text")
                    : new(MathVerifyStatus.NotEqual, "predicted answer does not parse: " + Clip(predText));
            }

            var eq = new MathEquivalence(options, budget).Equal(goldNode, predNode);
            return eq ? new(MathVerifyStatus.Equal, "equivalent") : new(MathVerifyStatus.NotEqual, "not equivalent");
        }
        catch (VerifyTimeoutException)
        {
            return new(MathVerifyStatus.TimedOut, "time limit " + options.TimeLimit.TotalMilliseconds + " ms reached");
        }
    }

    /// <summary>Extracts the final answer of a completion (after <c>&lt;/think&gt;</c>), or null when there is none.</summary>
    /// <param name="completion">The completion or solution text.</param>
    /// <param name="extraction">Where to look; default both LaTeX and plain expressions.</param>
    public static string? ExtractAnswer(string completion, AnswerExtraction extraction = AnswerExtraction.All)
    {
        ArgumentNullException.ThrowIfNull(completion);
        return AnswerExtractor.Extract(completion, extraction);
    }

    /// <summary>The GSM8K gold answer: the text after the last <c>#### </c> with thousands commas removed.</summary>
    /// <param name="solution">A GSM8K answer field, or a bare answer (returned trimmed).</param>
    public static string Gsm8kGold(string solution)
    {
        ArgumentNullException.ThrowIfNull(solution);
        var i = solution.LastIndexOf("####", StringComparison.Ordinal);
        var s = i >= 0 ? solution[(i + 4)..] : solution;
        return s.Trim().Replace(",", string.Empty, StringComparison.Ordinal);
    }

    private static string Squash(string s) => s.Replace(" ", string.Empty, StringComparison.Ordinal);

    private static string Clip(string s) => s.Length <= 60 ? s : s[..60] + "…";

    /// <summary>ASCII integers/decimals with optional sign, optional thousands commas, optional $ and trailing period.</summary>
    private static bool TryPlainNumber(string s, out BigRational value, out bool isFloat)
    {
        value = default;
        isFloat = false;
        var span = s.AsSpan().Trim();
        if (span.EndsWith("."))
        {
            span = span[..^1];
        }

        if (span.Length == 0 || span.Length > 40)
        {
            return false;
        }

        Span<char> buf = stackalloc char[span.Length];
        var n = 0;
        for (var i = 0; i < span.Length; i++)
        {
            var c = span[i];
            if (char.IsAsciiDigit(c) || c == '.' || (c == '-' && n == 0))
            {
                buf[n++] = c;
            }
            else if (c == ',' && i > 0 && span[0] != '0' && !span.StartsWith("-0") && IsGroup(span, i))
            {
                // thousands separator
            }
            else
            {
                return false;
            }
        }

        return BigRational.TryParseDecimal(buf[..n], out value, out isFloat);
    }

    private static bool IsGroup(ReadOnlySpan<char> s, int comma) =>
        comma + 4 <= s.Length
        && char.IsAsciiDigit(s[comma + 1]) && char.IsAsciiDigit(s[comma + 2]) && char.IsAsciiDigit(s[comma + 3])
        && (comma + 4 == s.Length || !char.IsAsciiDigit(s[comma + 4]));
}
