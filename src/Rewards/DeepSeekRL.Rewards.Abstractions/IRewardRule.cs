namespace DeepSeekRL.Rewards;

/// <summary>
/// A reward rule: scores one completion. This one method is the whole plugin contract.
/// </summary>
/// <remarks>
/// <para>Implementations must be deterministic (time from <see cref="RewardArguments.TimeProvider"/>, randomness from
/// <see cref="RewardArguments.Seed"/>) and thread-safe: the pipeline calls one instance from several threads at once.</para>
/// <para>Return <see cref="RewardOutcome.Missing"/> when the rule cannot judge (for example a gold answer that does not
/// parse); the sample is then skipped for this rule instead of being scored 0 or 1. An exception, a time-out or a NaN
/// also becomes a missing score, counted and reported by the pipeline.</para>
/// <para>A plugin is a public class implementing this interface with a <see cref="RewardRuleAttribute"/> naming it, and
/// a public constructor that takes either nothing or one options object (bound from the rule's <c>"options"</c> in the
/// rules JSON; unknown option names are an error).</para>
/// <example>
/// <code>
/// [RewardRule("exact_match")]
/// public sealed class ExactMatchRule(ExactMatchOptions options) : IRewardRule
/// {
///     public ValueTask&lt;RewardOutcome&gt; ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
///         ValueTask.FromResult(args.Answer is null
///             ? RewardOutcome.Missing("no gold answer")
///             : RewardOutcome.Score(string.Equals(args.Completion.Trim(), args.Answer.Trim(), options.Comparison) ? 1 : 0));
/// }
/// </code>
/// </example>
/// </remarks>
public interface IRewardRule
{
    /// <summary>Scores one completion.</summary>
    /// <param name="args">The prompt, completion, gold answer and context.</param>
    /// <param name="cancellationToken">Cancelled when the rule's time limit is reached or the batch is cancelled.</param>
    /// <returns>The score, or a missing score with the reason.</returns>
    ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken);
}
