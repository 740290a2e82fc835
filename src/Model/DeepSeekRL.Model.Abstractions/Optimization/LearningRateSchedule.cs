namespace DeepSeekRL.Model.Optimization;

// Warm-up + cosine learning rate as a pure function of the step number, so that a resumed run recomputes exactly the
// rates of an uninterrupted one (the step counter is the only schedule state, saved with the optimizer).

/// <summary>The learning rate of a step (see <see cref="LearningRateScheduleOptions"/> for the formula).</summary>
public static class LearningRateSchedule
{
    /// <summary>The learning rate of update number <paramref name="step"/> (1-based).</summary>
    /// <param name="options">The schedule.</param>
    /// <param name="step">The update number, from 1.</param>
    /// <returns>The learning rate.</returns>
    public static double At(LearningRateScheduleOptions options, long step)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        double peak = options.PeakLearningRate, min = options.MinLearningRate;
        long w = options.WarmupSteps, total = options.TotalSteps;
        if (step <= w)
        {
            return peak * step / w;
        }

        if (step >= total)
        {
            return min;
        }

        var progress = (double)(step - w) / (total - w);
        return min + (0.5 * (peak - min) * (1 + Math.Cos(Math.PI * progress)));
    }
}
