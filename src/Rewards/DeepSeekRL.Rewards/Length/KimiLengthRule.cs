using DeepSeekRL.Rewards.Accuracy;

namespace DeepSeekRL.Rewards.Length;

/// <summary>Options of the <c>kimi_length</c> rule (Kimi 1.5 length penalty, open-r1 <c>len_reward</c>).</summary>
public sealed class KimiLengthRewardOptions : IValidatableOptions
{
    /// <summary>Measure length in tokens (batch <c>MinTokens/MaxTokens</c>) instead of characters. Default false.</summary>
    public bool UseTokens { get; set; }

    /// <summary>Verifier settings used to decide correctness.</summary>
    public AccuracyRewardOptions Accuracy { get; set; } = new();

    /// <inheritdoc />
    public string? Validate() => Accuracy is null ? "accuracy must not be null" : Accuracy.Validate() is { } p ? "accuracy." + p : null;
}

/// <summary>Kimi 1.5 length reward: lambda = 0.5 - (len - min)/(max - min) over the batch (group); a correct answer
/// gets lambda, a wrong one min(0, lambda); 0 when all lengths are equal.</summary>
/// <remarks>Gold first in the verifier (open-r1 swaps the arguments); a gold that does not parse gives a missing
/// score where open-r1 counts the answer as correct.</remarks>
[RewardRule("kimi_length")]
internal sealed class KimiLengthRule(KimiLengthRewardOptions options) : IRewardRule
{
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken)
    {
        var check = AccuracyRule.Check(args, options.Accuracy, cancellationToken);
        if (check.Status is MathVerifyStatus.GoldUnparsable or MathVerifyStatus.TimedOut)
        {
            return ValueTask.FromResult(RewardOutcome.Missing(check.Reason));
        }

        double len, min, max;
        if (options.UseTokens)
        {
            if (args.CompletionTokens is not int t || args.Batch.MinTokens is not int lo || args.Batch.MaxTokens is not int hi)
            {
                return ValueTask.FromResult(RewardOutcome.Missing("use_tokens is set but token counts are missing"));
            }

            (len, min, max) = (t, lo, hi);
        }
        else
        {
            (len, min, max) = (args.Completion.Length, args.Batch.MinChars, args.Batch.MaxChars);
        }

        return ValueTask.FromResult(RewardOutcome.Score(Reward(check.IsEqual, len, min, max)));
    }

    internal static double Reward(bool correct, double len, double min, double max)
    {
        if (max <= min)
        {
            return 0.0;
        }

        var lambda = 0.5 - (len - min) / (max - min);
        return correct ? lambda : Math.Min(0.0, lambda);
    }
}

/// <summary>Registers the <c>kimi_length</c> rule.</summary>
public static class KimiLengthRewardBuilderExtensions
{
    /// <summary>Adds the Kimi 1.5 length reward.</summary>
    /// <param name="builder">The pipeline builder.</param>
    /// <param name="options">Rule options; null means defaults.</param>
    /// <param name="weight">Weight in the total reward. Default 1.0.</param>
    public static Pipeline.RewardPipelineBuilder AddKimiLengthReward(this Pipeline.RewardPipelineBuilder builder, KimiLengthRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        options ??= new();
        return options.Validate() is { } problem
            ? throw new ArgumentException(problem, nameof(options))
            : builder.AddRule("kimi_length", new KimiLengthRule(options), weight);
    }
}
