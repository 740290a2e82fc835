namespace DeepSeekRL.Rewards.Length;

/// <summary>
/// <c>soft_overlong</c>: DAPO eq. 13 over the completion length L in tokens: 0 when L ≤ L_max − L_cache;
/// (L_max − L_cache − L) / L_cache when L_max − L_cache &lt; L ≤ L_max; −1 beyond. Range [−1, 0]; higher is better.
/// </summary>
/// <remarks>
/// L is <see cref="RewardArguments.CompletionTokens"/>; when it is unknown the score is missing (characters are no
/// stand-in for tokens). Same as open-r1's <c>soft_overlong_punishment_reward</c>. Thread-safe.
/// </remarks>
[RewardRule("soft_overlong")]
internal sealed class SoftOverlongRule : IRewardRule
{
    private readonly int _maxLength;
    private readonly int _cache;

    /// <summary>Creates the rule.</summary>
    /// <param name="options">Its options (validated).</param>
    public SoftOverlongRule(SoftOverlongRewardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _maxLength = options.MaxCompletionLen;
        _cache = options.SoftPunishCache;
    }

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(args.CompletionTokens is int tokens
            ? RewardOutcome.Score(Score(tokens))
            : RewardOutcome.Missing("the completion length in tokens is unknown"));

    /// <summary>The score of a length.</summary>
    /// <param name="tokens">L, in tokens.</param>
    /// <returns>The score.</returns>
    public double Score(int tokens)
    {
        var expected = _maxLength - _cache;
        return tokens <= expected ? 0.0
            : tokens <= _maxLength ? (double)(expected - tokens) / _cache
            : -1.0;
    }
}
