using DeepSeekRL.Rewards.Length;

namespace DeepSeekRL.Rewards.Tests;

public sealed class LengthRulesTests
{
    [Theory]
    [InlineData(0, 0.0)]
    [InlineData(80, 0.0)]
    [InlineData(81, -0.05)]
    [InlineData(100, -1.0)]
    [InlineData(101, -1.0)]
    public void Score_SoftOverlong_DapoEquation13(int tokens, double expected) =>
        Assert.Equal(expected, new SoftOverlongRule(new() { MaxCompletionLen = 100, SoftPunishCache = 20 }).Run("x", tokens), 12);

    [Fact]
    public void Score_SoftOverlongZeroCache_HardCutoff()
    {
        var rule = new SoftOverlongRule(new() { MaxCompletionLen = 100, SoftPunishCache = 0 });

        Assert.Equal(0.0, rule.Run("x", 100));
        Assert.Equal(-1.0, rule.Run("x", 101));
    }

    [Fact]
    public void Score_SoftOverlongUnknownLength_Missing() =>
        Assert.True(new SoftOverlongRule(new()).Outcome("some text").IsMissing);

    [Fact]
    public void Validate_SoftOverlongCacheAboveMax_NamesOption() =>
        Assert.StartsWith("soft_punish_cache:", new SoftOverlongRewardOptions { MaxCompletionLen = 10, SoftPunishCache = 11 }.Validate(), StringComparison.Ordinal);

    [Theory]
    [InlineData("", 0.0)]
    [InlineData("Step 1: a Step 2: b", 2.0 / 3.0)]
    [InlineData("Next, we go.\r\n- a", 2.0 / 3.0)]
    [InlineData("first, lower case does not count", 0.0)]
    public void Score_ReasoningSteps_OpenR1Regex(string completion, double expected) =>
        Assert.Equal(expected, new ReasoningStepsRule(new()).Run(completion), 12);

    [Fact]
    public void Score_ReasoningStepsReasoningScope_IgnoresAnswer() =>
        Assert.Equal(1.0 / 3.0, new ReasoningStepsRule(new() { Scope = Text.ReasoningScope.Reasoning }).Run("<think>\nFirst, x\n</think>\nSecond, Next, Finally,"), 12);
}
