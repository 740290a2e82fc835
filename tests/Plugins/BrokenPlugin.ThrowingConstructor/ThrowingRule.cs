using DeepSeekRL.Rewards;

namespace BrokenPlugin.ThrowingConstructor;

[RewardRule("throwing_ctor")]
public sealed class ThrowingRule : IRewardRule
{
    public ThrowingRule() => throw new InvalidOperationException("model weights not found");

    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(RewardOutcome.Score(1));
}
