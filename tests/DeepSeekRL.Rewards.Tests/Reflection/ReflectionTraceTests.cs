using DeepSeekRL.Rewards.Reflection;

namespace DeepSeekRL.Rewards.Tests.Reflection;

public sealed class ReflectionTraceTests
{
    [Fact]
    public void Read_CheckThatPasses_VerifiesWithoutDetecting()
    {
        var trace = ReflectionTrace.Read("8*4-7\ncheck: 8*4=32 32-7=25 yes");
        Assert.Equal(new ReflectionTrace(1, 0, true, false), trace);
        Assert.True(trace.Verifies);
        Assert.False(trace.Detects);
    }

    [Fact]
    public void Read_CheckThatFailsThenWaitAndAPassingCheck_DetectsAndRepairs()
    {
        var trace = ReflectionTrace.Read("8+4-7\ncheck: 8+4=12 12-7=5 no\nwait\n8*4-7\ncheck: 8*4=32 32-7=25 yes\n");
        Assert.Equal(new ReflectionTrace(2, 1, false, true), trace);
        Assert.True(trace.Detects);
    }

    [Fact]
    public void Read_CheckThatFailsAndNoPassingCheckAfter_DetectsWithoutRepair()
    {
        var trace = ReflectionTrace.Read("8+4-7\r\ncheck: 8+4=12 12-7=5 no\r\nwait\r\n8+4+7\r\ncheck: 8+4=12 12+7=19 \u2717");
        Assert.Equal(new ReflectionTrace(2, 2, false, false), trace);
    }

    [Theory]
    [InlineData("1461\n607+844\n7+4=11 1\ncheck: 1461 vs 1451 yes", false)] // says yes to two different numbers: a failed check
    [InlineData("1451\ncheck: 1451 vs 1451 no", true)] // says no to equal numbers: it held
    [InlineData("8+4-7\ncheck: 8+4=12 12-7=5 vs 25 yes", false)] // the value after the last '=' is compared
    [InlineData("8*4-7\ncheck: 8*4=32 32-7=25 vs 25 yes", true)]
    [InlineData("check: x vs 25 no", false)] // not two integers: the stated verdict
    [InlineData("check: 25 vs twenty-five yes", true)]
    public void Read_CheckComparingTwoIntegers_HoldsWhenTheyAreEqualWhateverItSays(string reasoning, bool held)
    {
        var trace = ReflectionTrace.Read(reasoning);
        Assert.Equal(1, trace.Checks);
        Assert.Equal(held, trace.FirstCheckPassed);
        Assert.Equal(held ? 0 : 1, trace.FailedChecks);
    }

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("7+4=11 1\n0+4+1=5 51")]
    [InlineData("check: 8+4=12 12-7=5")] // no verdict
    [InlineData("check: the casino")] // "no" only as the end of a word
    [InlineData("  I will check: nothing yes")] // not a check line
    public void Read_NoCheckLine_DoesNotVerify(string? reasoning)
    {
        var trace = ReflectionTrace.Read(reasoning);
        Assert.False(trace.Verifies);
        Assert.Null(trace.FirstCheckPassed);
    }

    [Fact]
    public void Counts_OverHandWrittenCompletions_GiveTheShares()
    {
        var counts = new ReflectionCounts();
        counts.Add(ReflectionTrace.Read("8*4-7\ncheck: 8*4=32 32-7=25 yes"), correct: true);
        counts.Add(ReflectionTrace.Read("8+4-7\ncheck: 8+4=12 12-7=5 no\nwait\n8*4-7\ncheck: 8*4=32 32-7=25 yes"), correct: true);
        counts.Add(ReflectionTrace.Read("8+4-7\ncheck: 8+4=12 12-7=5 no\nwait\n8+4+7\ncheck: 8+4=12 12+7=19 no"), correct: false);
        counts.Add(ReflectionTrace.Read(string.Empty), correct: false);
        var metrics = counts.Metrics().ToDictionary(m => m.Key, m => m.Value);
        Assert.Equal(0.75, metrics["verify_fraction"]);
        Assert.Equal(0.5, metrics["detect_fraction"]);
        Assert.Equal(0.25, metrics["repair_fraction"]);
        Assert.Equal(2 / 3.0, metrics["accuracy_when_verifying"]);
        Assert.Equal(0.0, metrics["accuracy_without_verifying"]);
        Assert.Equal(0.25, metrics["accuracy_first_attempt"]); // the repaired one's first attempt failed its check
        Assert.Equal(0.5, metrics["accuracy_final"]);

        var sum = new ReflectionCounts();
        sum.Add(counts);
        sum.Add(counts);
        Assert.Equal(metrics, sum.Metrics().ToDictionary(m => m.Key, m => m.Value));
    }

    [Fact]
    public void Counts_Nothing_IsNullEverywhere()
    {
        Assert.All(new ReflectionCounts().Metrics(), m => Assert.Null(m.Value));
    }
}
