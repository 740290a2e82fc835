namespace DeepSeekRL.Rewards;

/// <summary>
/// A reward rule that scores a whole batch at once (a remote reward model behind one HTTP call, say). The pipeline
/// prefers this method when a rule implements it.
/// </summary>
public interface IBatchRewardRule : IRewardRule
{
    /// <summary>Scores a batch.</summary>
    /// <param name="batch">The completions, with their context.</param>
    /// <param name="cancellationToken">Cancelled at the rule's time limit or when the batch is cancelled.</param>
    /// <returns>One outcome per input, in order.</returns>
    ValueTask<IReadOnlyList<RewardOutcome>> ScoreBatchAsync(IReadOnlyList<RewardArguments> batch, CancellationToken cancellationToken);
}
