using DeepSeekRL.Model.Optimization;

namespace DeepSeekRL.Model.Tests.Optimization;

public sealed class LearningRateScheduleTests
{
    private static readonly LearningRateScheduleOptions Options = new() { PeakLearningRate = 1e-3, MinLearningRate = 1e-4, WarmupSteps = 10, TotalSteps = 110 };

    [Theory]
    [InlineData(1, 1e-4)] // warm-up start: peak · 1/10
    [InlineData(5, 5e-4)]
    [InlineData(10, 1e-3)] // warm-up end: the peak
    [InlineData(35, 1e-4 + (0.5 * 9e-4 * 1.7071067811865475))] // a quarter into the cosine: 1 + cos(π/4)
    [InlineData(60, 5.5e-4)] // mid-cosine: (peak + min) / 2
    [InlineData(110, 1e-4)] // end: the minimum
    [InlineData(1000, 1e-4)] // after the end: the minimum
    public void At_Step_MatchesFormula(long step, double expected) =>
        Assert.Equal(expected, LearningRateSchedule.At(Options, step), 1e-15);

    [Fact]
    public void At_StepZero_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.At(Options, 0));

    [Fact]
    public void At_NoWarmup_FirstStepIsOneStepIntoTheCosine() =>
        Assert.Equal(0.5e-3 * (1 + Math.Cos(Math.PI / 100)), LearningRateSchedule.At(new LearningRateScheduleOptions { PeakLearningRate = 1e-3, MinLearningRate = 0, WarmupSteps = 0, TotalSteps = 100 }, 1), 1e-15);

    [Fact]
    public void Validate_MinAbovePeak_NamesOption() =>
        Assert.StartsWith("min_lr = 0.1", new LearningRateScheduleOptions { PeakLearningRate = 0.01, MinLearningRate = 0.1 }.Validate(), StringComparison.Ordinal);

    [Fact]
    public void NextLearningRate_AfterSteps_FollowsSchedule()
    {
        var adam = new AdamW([new DeepSeekRL.Model.Config.ParameterSpec("w", [1, 1], DeepSeekRL.Model.Config.ParameterInit.Normal)], new AdamWOptions { Schedule = Options });
        Assert.Equal(1e-4, adam.NextLearningRate, 1e-15);
        var result = adam.Step(new float[1], new float[1]);
        Assert.Equal(1e-4, result.LearningRate, 1e-15);
        Assert.Equal(2e-4, adam.NextLearningRate, 1e-15);
    }
}
