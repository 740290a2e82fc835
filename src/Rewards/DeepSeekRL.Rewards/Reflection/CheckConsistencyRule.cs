using System.Globalization;
using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Reflection;

/// <summary>
/// <c>check_consistency</c>: 1 when every <c>check:</c> line of the reasoning is truthful, else 0; 1 without a check,
/// so nothing here pays for checking, only for checking honestly.
/// </summary>
/// <remarks>
/// <para>A check is truthful when (1) a comparison of two integers (<c>... X vs Y verdict</c>, read as
/// <see cref="ReflectionTrace"/> reads it) states <c>yes</c> exactly when they are equal, and (2) a check whose left
/// side is a bare integer (<c>check: 1461 vs 1451 no</c>, a quoted attempt rather than one computed on the line, as in
/// Countdown's <c>check: 8+4=12 12-7=5 vs 25 no</c>) quotes the latest attempt: the last line before it that is a bare
/// integer. Without (2) a policy learns to write the worked result on both sides (<c>check: 1451 vs 1451 yes</c> under
/// the guess 1461) and a wrong first attempt is replaced silently; without (1) it learns <c>check: 4606 vs 4906 yes</c>.
/// Check lines without a verdict are not checks and are ignored.</para>
/// <para>(2) applies only with <see cref="CheckConsistencyRewardOptions.QuoteAttempt"/>. Thread-safe; reads the chain of
/// thought (<see cref="ChainOfThought.Of"/>) line by line.</para>
/// </remarks>
[RewardRule("check_consistency")]
internal sealed class CheckConsistencyRule(CheckConsistencyRewardOptions options) : IRewardRule
{
    private readonly bool _quoteAttempt = options.QuoteAttempt;

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(RewardOutcome.Score(Consistent(ChainOfThought.Of(args.Completion), _quoteAttempt) ? 1 : 0));

    /// <summary>Whether every check line of a reasoning text is truthful.</summary>
    /// <param name="reasoning">The reasoning (the inside of the think block).</param>
    /// <param name="quoteAttempt">Whether a bare integer on a check's left side must be the latest attempt.</param>
    /// <returns><see langword="true"/> when every check is truthful, or there is none.</returns>
    public static bool Consistent(ReadOnlySpan<char> reasoning, bool quoteAttempt = true)
    {
        long? attempt = null;
        foreach (var raw in reasoning.EnumerateLines())
        {
            var line = raw.Trim();
            if (Integer(line) is long value)
            {
                attempt = value;
                continue;
            }

            if (!line.StartsWith("check:", StringComparison.OrdinalIgnoreCase) || ReflectionTrace.Verdict(line) is not bool stated)
            {
                continue;
            }

            if (ReflectionTrace.Compared(line) is bool equal && equal != stated)
            {
                return false;
            }

            var vs = line.LastIndexOf(" vs ", StringComparison.OrdinalIgnoreCase);
            if (quoteAttempt && vs >= 0 && Integer(line["check:".Length..vs].Trim()) is long quoted && quoted != attempt)
            {
                return false;
            }
        }

        return true;
    }

    private static long? Integer(ReadOnlySpan<char> text) =>
        !text.IsEmpty && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : null;
}
