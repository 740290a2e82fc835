using System.Globalization;

namespace DeepSeekRL.Rewards.Reflection;

/// <summary>
/// What a completion's reasoning shows of self-verification, read from its lines (the R1 "aha" behaviour in a form a
/// small model can write): a <c>check:</c> line verifies an attempt and ends with its verdict, <c>yes</c> (or
/// <c>✓</c>) when the attempt holds and <c>no</c> (or <c>✗</c>) when it does not; a <c>wait</c> line starts another
/// attempt. A check that compares two integers (<c>... vs 25 yes</c>) holds when they are equal, whatever verdict it
/// states (a model can learn to write <c>yes</c> under any comparison). For Countdown: <c>8+4-7</c>, <c>check: 8+4=12 12-7=5 vs 25 no</c>, <c>wait</c>, <c>8*4-7</c>,
/// <c>check: 8*4=32 32-7=25 vs 25 yes</c>.
/// </summary>
/// <param name="Checks">Check lines with a verdict.</param>
/// <param name="FailedChecks">Check lines whose verdict is <c>no</c>.</param>
/// <param name="FirstCheckPassed">The first check's verdict; null without a check.</param>
/// <param name="PassedAfterFailure">A check passed after one had failed (the mistake was worked on, not only seen).</param>
public readonly record struct ReflectionTrace(int Checks, int FailedChecks, bool? FirstCheckPassed, bool PassedAfterFailure)
{
    /// <summary>The completion verifies: at least one check line with a verdict.</summary>
    public bool Verifies => Checks > 0;

    /// <summary>The completion detects a mistake: at least one check failed.</summary>
    public bool Detects => FailedChecks > 0;

    /// <summary>Reads the reflection lines of a reasoning text (the inside of the think block).</summary>
    /// <param name="reasoning">The reasoning; null or empty gives no checks.</param>
    /// <returns>The trace.</returns>
    public static ReflectionTrace Read(string? reasoning)
    {
        if (string.IsNullOrEmpty(reasoning))
        {
            return default;
        }

        int checks = 0, failed = 0;
        bool? first = null;
        var repaired = false;
        foreach (var raw in reasoning.AsSpan().EnumerateLines())
        {
            var line = raw.Trim();
            if (!line.StartsWith("check:", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (Verdict(line) is not bool passed)
            {
                continue;
            }

            // A check that compares two numbers ('... 25 vs 25 yes') holds when they are equal, whatever it says: a model
            // that writes 'check: 4606 vs 4906 yes' has not detected its mistake, and its first attempt was wrong.
            passed = Compared(line) ?? passed;
            checks++;
            first ??= passed;
            repaired |= passed && failed > 0;
            failed += passed ? 0 : 1;
        }

        return new ReflectionTrace(checks, failed, first, repaired);
    }

    /// <summary>A check line's stated verdict, its last word: <c>yes</c> or <c>✓</c>, <c>no</c> or <c>✗</c>; null for another word.</summary>
    /// <param name="line">The trimmed line.</param>
    /// <returns>The verdict.</returns>
    internal static bool? Verdict(ReadOnlySpan<char> line)
    {
        var verdict = line[(line.LastIndexOfAny(' ', '\t') + 1)..];
        return verdict.Equals("yes", StringComparison.OrdinalIgnoreCase) || verdict.SequenceEqual("\u2713") ? true
            : verdict.Equals("no", StringComparison.OrdinalIgnoreCase) || verdict.SequenceEqual("\u2717") ? false
            : null;
    }

    /// <summary>
    /// Whether the value before <c> vs </c> (the last number of the left side: after its last <c>=</c> or space) equals
    /// the first word after it; null when the line has no <c> vs </c> or either side is not an integer.
    /// </summary>
    /// <param name="line">The trimmed line.</param>
    /// <returns>The comparison.</returns>
    internal static bool? Compared(ReadOnlySpan<char> line)
    {
        var vs = line.LastIndexOf(" vs ", StringComparison.OrdinalIgnoreCase);
        if (vs < 0)
        {
            return null;
        }

        var left = line[..vs].TrimEnd();
        left = left[(left.LastIndexOfAny(' ', '=') + 1)..];
        var right = line[(vs + 4)..].TrimStart();
        var end = right.IndexOfAny(' ', '\t');
        right = end < 0 ? right : right[..end];
        return long.TryParse(left, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var a)
            && long.TryParse(right, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var b)
            ? a == b
            : null;
    }
}

/// <summary>
/// Reflection counts over a set of completions (a step's samples, an evaluation chunk), summed as they are and turned
/// into shares only when reported, so that chunks and reward items add up exactly.
/// </summary>
public sealed class ReflectionCounts
{
    /// <summary>Completions counted.</summary>
    public long Samples { get; set; }

    /// <summary>Completions judged correct.</summary>
    public long Correct { get; set; }

    /// <summary>Completions that verify (a check line).</summary>
    public long Verifying { get; set; }

    /// <summary>Completions that detect a mistake (a failed check).</summary>
    public long Detecting { get; set; }

    /// <summary>Completions that repair a mistake: a failed check, a later passing one, and a correct final answer.</summary>
    public long Repairing { get; set; }

    /// <summary>Correct completions among those that verify.</summary>
    public long CorrectWhenVerifying { get; set; }

    /// <summary>
    /// Completions whose first attempt is correct: the final answer is correct and the first check (if any) passed,
    /// so a first attempt that its own check rejected counts as wrong even when a repair made the answer right.
    /// </summary>
    public long FirstAttemptCorrect { get; set; }

    /// <summary>Counts one completion.</summary>
    /// <param name="trace">Its reflection.</param>
    /// <param name="correct">Whether its final answer is correct.</param>
    public void Add(ReflectionTrace trace, bool correct)
    {
        Samples++;
        Correct += correct ? 1 : 0;
        Verifying += trace.Verifies ? 1 : 0;
        Detecting += trace.Detects ? 1 : 0;
        Repairing += trace.PassedAfterFailure && correct ? 1 : 0;
        CorrectWhenVerifying += trace.Verifies && correct ? 1 : 0;
        FirstAttemptCorrect += correct && trace.FirstCheckPassed != false ? 1 : 0;
    }

    /// <summary>Adds another set's counts.</summary>
    /// <param name="other">The other counts.</param>
    public void Add(ReflectionCounts other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Samples += other.Samples;
        Correct += other.Correct;
        Verifying += other.Verifying;
        Detecting += other.Detecting;
        Repairing += other.Repairing;
        CorrectWhenVerifying += other.CorrectWhenVerifying;
        FirstAttemptCorrect += other.FirstAttemptCorrect;
    }

    /// <summary>
    /// The shares as metrics (null where nothing could be measured): <c>verify_fraction</c>, <c>detect_fraction</c>,
    /// <c>repair_fraction</c>, <c>accuracy_when_verifying</c>, <c>accuracy_without_verifying</c>,
    /// <c>accuracy_first_attempt</c> and <c>accuracy_final</c>.
    /// </summary>
    /// <returns>Name and value pairs, in that order.</returns>
    public IEnumerable<KeyValuePair<string, double?>> Metrics()
    {
        yield return new("verify_fraction", Share(Verifying, Samples));
        yield return new("detect_fraction", Share(Detecting, Samples));
        yield return new("repair_fraction", Share(Repairing, Samples));
        yield return new("accuracy_when_verifying", Share(CorrectWhenVerifying, Verifying));
        yield return new("accuracy_without_verifying", Share(Correct - CorrectWhenVerifying, Samples - Verifying));
        yield return new("accuracy_first_attempt", Share(FirstAttemptCorrect, Samples));
        yield return new("accuracy_final", Share(Correct, Samples));
    }

    private static double? Share(long part, long whole) => whole > 0 ? part / (double)whole : null;
}
