using System.Text.RegularExpressions;
using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Length;

/// <summary>
/// <c>reasoning_steps</c>: open-r1's <c>reasoning_steps_reward</c>, min(1, n / 3) where n counts the matches of
/// <c>(Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,)</c>. Range [0, 1]; higher is better.
/// </summary>
/// <remarks>
/// Reproduces open-r1's regex as it behaves (no MULTILINE flag): <c>^\d+\.</c> counts only a numbered item at the
/// very start of the text, and a bullet counts only after a line break (so a list starting the text loses its first
/// item). Matches do not overlap. Thread-safe.
/// </remarks>
[RewardRule("reasoning_steps")]
internal sealed partial class ReasoningStepsRule : IRewardRule
{
    private readonly int _full;
    private readonly ReasoningScope _scope;

    /// <summary>Creates the rule.</summary>
    /// <param name="options">Its options (validated).</param>
    public ReasoningStepsRule(ReasoningStepsRewardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _full = options.StepsForFullScore;
        _scope = options.Scope;
    }

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(RewardOutcome.Score(Score(args.Completion)));

    /// <summary>The score of one completion.</summary>
    /// <param name="completion">The completion.</param>
    /// <returns>min(1, steps / steps_for_full_score).</returns>
    public double Score(string completion) =>
        Math.Min(1.0, (double)Pattern().Count(ChainOfThought.Select(completion, _scope)) / _full);

    [GeneratedRegex(@"(Step \d+:|\A\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,)", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
