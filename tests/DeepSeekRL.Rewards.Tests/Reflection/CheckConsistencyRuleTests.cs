using DeepSeekRL.Rewards.Reflection;

namespace DeepSeekRL.Rewards.Tests.Reflection;

public sealed class CheckConsistencyRuleTests
{
    private static readonly CheckConsistencyRule Rule = new(new());
    private static readonly CheckConsistencyRule VerdictsOnly = new(new() { QuoteAttempt = false });

    [Theory]
    [InlineData("<think>\n1451\n</think>\n\\boxed{1451}", 1.0)] // no check: nothing to be untruthful about
    [InlineData("<think>\n1451\n607+844\n7+4=11 1\n0+4+1=5 51\n6+8=14 1451\ncheck: 1451 vs 1451 yes\n</think>\n\\boxed{1451}", 1.0)] // passes
    [InlineData("<think>\n1461\n607+844\n6+8=14 1451\ncheck: 1461 vs 1451 no\nwait\n1451\ncheck: 1451 vs 1451 yes\n</think>\n\\boxed{1451}", 1.0)] // fails, repaired
    [InlineData("<think>\n1461\n607+844\n6+8=14 1451\ncheck: 1461 vs 1451 no\n</think>\n\\boxed{1461}", 1.0)] // fails, not repaired: still truthful
    [InlineData("<think>\n1461\n607+844\n6+8=14 1451\ncheck: 1461 vs 1451 yes\n</think>\n\\boxed{1451}", 0.0)] // says yes to a mismatch
    [InlineData("<think>\n1451\n607+844\n6+8=14 1451\ncheck: 1451 vs 1451 no\n</think>\n\\boxed{1451}", 0.0)] // says no to a match
    [InlineData("<think>\n1461\n607+844\n6+8=14 1451\ncheck: 1451 vs 1451 yes\n</think>\n\\boxed{1451}", 0.0)] // the worked result on both sides, not the guess
    [InlineData("<think>\n1461\n607+844\n6+8=14 1451\ncheck: 1461 vs 1451 no\nwait\n1451\ncheck: 1461 vs 1461 yes\n</think>\n\\boxed{1451}", 0.0)] // quotes the rejected guess, not the new attempt
    [InlineData("<think>\n607+844\n6+8=14 1451\ncheck: 1451 vs 1451 yes\n</think>\n\\boxed{1451}", 0.0)] // quotes an attempt never made
    [InlineData("<think>\n8+4-7\ncheck: 8+4=12 12-7=5 vs 25 no\nwait\n8*4-7\ncheck: 8*4=32 32-7=25 vs 25 yes\n</think>\n<answer>8*4-7</answer>", 1.0)] // Countdown: computed on the line
    [InlineData("<think>\n8+4-7\ncheck: 8+4=12 12-7=5 vs 25 yes\n</think>\n<answer>8+4-7</answer>", 0.0)]
    [InlineData("<think>\n1461\ncheck: the sum looks fine\n</think>\n\\boxed{1461}", 1.0)] // no verdict: not a check
    [InlineData("1461\r\ncheck: 1461 vs 1451 no\r\nwait\r\n1451\r\ncheck: 1451 vs 1451 \u2713\r\n</think>\r\n\\boxed{1451}", 1.0)] // template-opened think, CRLF, tick
    [InlineData("", 1.0)]
    public void Score_CheckLines_OneOnlyWhenEveryCheckIsTruthful(string completion, double expected) =>
        Assert.Equal(expected, Rule.Run(completion));

    [Theory]
    [InlineData("<think>\n1461\n6+8=14 1451\ncheck: 1451 vs 1451 yes\n</think>\n\\boxed{1451}", 0.0, 1.0)] // quotes another number than the attempt
    [InlineData("<think>\n1461\n6+8=14 1451\ncheck: 1406 vs 1451 no\nwait\n1451\ncheck: 1451 vs 1451 yes\n</think>\n\\boxed{1451}", 0.0, 1.0)] // misquotes the guess, says no truthfully
    [InlineData("<think>\n1461\n6+8=14 1451\ncheck: 1406 vs 1451 yes\n</think>\n\\boxed{1451}", 0.0, 0.0)] // yes to a mismatch either way
    [InlineData("<think>\n1461\n6+8=14 1451\ncheck: 1461 vs 1451 no\nwait\n1451\ncheck: 1451 vs 1451 yes\n</think>\n\\boxed{1451}", 1.0, 1.0)]
    public void Score_WithoutQuoteAttempt_HoldsOnlyTheVerdicts(string completion, double quoting, double verdictsOnly)
    {
        Assert.Equal(quoting, Rule.Run(completion));
        Assert.Equal(verdictsOnly, VerdictsOnly.Run(completion));
    }

    [Fact]
    public void Score_GarbageAndHugeNumbers_DoesNotThrow()
    {
        // Beyond a 64-bit integer the sides are not numbers to compare: the check is taken at its word.
        Assert.Equal(1.0, Rule.Run("<think>\n99999999999999999999\ncheck: 99999999999999999999 vs 1 yes\n</think>\nx"));
        Assert.Equal(1.0, Rule.Run("<think>\n\0\ud800 check: vs \n check:  vs  no\n</think>\n"));
    }
}
