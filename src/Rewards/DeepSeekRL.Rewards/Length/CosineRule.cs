using DeepSeekRL.Rewards.Accuracy;

namespace DeepSeekRL.Rewards.Length;

/// <summary>Cosine-scaled length reward (Yeo et al. 2025, open-r1): r = lo + (hi - lo)(1 + cos(pi L / Lmax)) / 2,
/// correct answers from <c>max_value_correct</c> (short) down to <c>min_value_correct</c>, wrong answers from
/// <c>min_value_wrong</c> (short) up to <c>max_value_wrong</c>.</summary>
/// <remarks>Correctness comes from <see cref="MathVerifier"/> with the gold first (open-r1 passes the arguments
/// swapped; Math-Verify is asymmetric, so we keep its documented order). A gold that does not parse gives a missing
/// score, where open-r1 gives 1.0.</remarks>
[RewardRule("cosine")]
internal sealed class CosineRule(CosineRewardOptions options) : IRewardRule
{
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken)
    {
        var check = AccuracyRule.Check(args, options.Accuracy, cancellationToken);
        if (check.Status is MathVerifyStatus.GoldUnparsable or MathVerifyStatus.TimedOut)
        {
            return ValueTask.FromResult(RewardOutcome.Missing(check.Reason));
        }

        double length = options.UseTokens
            ? args.CompletionTokens ?? -1
            : args.Completion.Length;
        if (length < 0)
        {
            return ValueTask.FromResult(RewardOutcome.Missing("use_tokens is set but the sample has no token count"));
        }

        return ValueTask.FromResult(RewardOutcome.Score(Reward(check.IsEqual, length, options)));
    }

    /// <summary>The formula alone (open-r1 <c>cosine_scaled_reward</c>).</summary>
    internal static double Reward(bool correct, double length, CosineRewardOptions o)
    {
        var progress = (o.Clamp ? Math.Min(length, o.MaxLength) : length) / o.MaxLength;
        var (lo, hi) = correct ? (o.MinValueCorrect, o.MaxValueCorrect) : (o.MaxValueWrong, o.MinValueWrong);
        return lo + 0.5 * (hi - lo) * (1.0 + Math.Cos(progress * Math.PI));
    }
}

/// <summary>Registers the <c>cosine</c> rule.</summary>
public static class CosineRewardBuilderExtensions
{
    /// <summary>Adds the cosine-scaled length reward.</summary>
    /// <param name="builder">The pipeline builder.</param>
    /// <param name="options">Rule options; null means defaults.</param>
    /// <param name="weight">Weight in the total reward. Default 1.0.</param>
    public static Pipeline.RewardPipelineBuilder AddCosineReward(this Pipeline.RewardPipelineBuilder builder, CosineRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        options ??= new();
        return options.Validate() is { } problem
            ? throw new ArgumentException(problem, nameof(options))
            : builder.AddRule("cosine", new CosineRule(options), weight);
    }
}
