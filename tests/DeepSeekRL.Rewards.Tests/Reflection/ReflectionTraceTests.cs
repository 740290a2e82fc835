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
