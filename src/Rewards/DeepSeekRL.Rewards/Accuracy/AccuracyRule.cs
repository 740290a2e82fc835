namespace DeepSeekRL.Rewards.Accuracy;

/// <summary>R1's rule-based accuracy reward: 1 when the completion's final answer equals the gold answer, else 0.</summary>
/// <remarks>A gold that does not parse, a missing gold and a comparison that times out give a missing score (the
/// sample is skipped), never 1 (open-r1 issues #215/#293). GSM8K golds (<c>#### 18</c>) are read after the marker.</remarks>
[RewardRule("accuracy")]
internal sealed class AccuracyRule(AccuracyRewardOptions options) : IRewardRule
{
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken)
    {
        var result = Check(args, options, cancellationToken);
        var outcome = result.Status switch
        {
            MathVerifyStatus.Equal => RewardOutcome.Score(options.CorrectValue),
            MathVerifyStatus.NotEqual or MathVerifyStatus.NoAnswer => RewardOutcome.Score(options.WrongValue, result.Reason),
            _ => RewardOutcome.Missing(result.Reason),
        };
        return ValueTask.FromResult(outcome);
    }

    /// <summary>Verifies <paramref name="args"/>' completion against its gold; shared with the length rules.</summary>
    internal static MathVerifyResult Check(in RewardArguments args, AccuracyRewardOptions options, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(args.Answer))
        {
            return new(MathVerifyStatus.GoldUnparsable, "the sample has no gold answer");
        }

        var verify = options.ToVerifyOptions(args);
        var gold = args.Answer.Contains("####", StringComparison.Ordinal) ? MathVerifier.Gsm8kGold(args.Answer) : args.Answer;
        return MathVerifier.Verify(gold, args.Completion, verify, cancellationToken);
    }
}
