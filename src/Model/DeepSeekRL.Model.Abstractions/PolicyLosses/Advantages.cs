namespace DeepSeekRL.Model.PolicyLosses;

// Outcome advantages of GRPO and its variants (reference rl-and-rewards.md §2): one scalar per completion, broadcast
// over its tokens by the loss. TRL's arithmetic: subtract the group mean, divide by a Bessel-corrected std + 1e-4.

/// <summary>How rewards become advantages.</summary>
public enum AdvantageNormalization
{
    /// <summary><c>grpo</c>: (r − group mean) / (group std + ε), std Bessel-corrected as TRL.</summary>
    Group,

    /// <summary><c>batch</c> (LitePPO, TRL <c>scale_rewards="batch"</c>): (r − group mean) / (batch std + ε).</summary>
    Batch,

    /// <summary><c>none</c> (Dr. GRPO): r − group mean.</summary>
    None,
}

/// <summary>Reward statistics gathered while computing advantages (for the step's metrics).</summary>
/// <param name="RewardMean">Mean reward over the batch.</param>
/// <param name="RewardStd">Bessel-corrected reward std over the batch (0 for one completion).</param>
/// <param name="ZeroStdGroupFraction">Fraction of groups whose rewards all agree (std ≤ 1e-8): their advantages are 0.</param>
public readonly record struct AdvantageStatistics(double RewardMean, double RewardStd, double ZeroStdGroupFraction);

/// <summary>Group-, batch- or un-normalised advantages.</summary>
public static class Advantages
{
    /// <summary>The std offset ε of GRPO (TRL): 1e-4.</summary>
    public const double DefaultEpsilon = 1e-4;

    /// <summary>Computes one advantage per completion.</summary>
    /// <param name="rewards">The rewards [B], groups of <paramref name="groupSize"/> consecutive completions of one prompt.</param>
    /// <param name="groupSize">G &gt;= 1; B must be a multiple of it.</param>
    /// <param name="mode">The normalisation.</param>
    /// <param name="advantages">The advantages [B] (overwritten).</param>
    /// <param name="epsilon">Added to the std. Default 1e-4.</param>
    /// <returns>Reward statistics.</returns>
    public static AdvantageStatistics Compute(ReadOnlySpan<double> rewards, int groupSize, AdvantageNormalization mode, Span<double> advantages, double epsilon = DefaultEpsilon)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(groupSize, 1);
        var b = rewards.Length;
        if (b % groupSize != 0 || advantages.Length != b)
        {
            throw new ArgumentException($"rewards ({b}) must be whole groups of {groupSize} and advantages ({advantages.Length}) as long");
        }

        if (b == 0)
        {
            return new AdvantageStatistics(0, 0, 0);
        }

        var batchStd = BesselStd(rewards, out var batchMean);
        var zeroStd = 0;
        for (var g = 0; g < b; g += groupSize)
        {
            var group = rewards.Slice(g, groupSize);
            var std = BesselStd(group, out var mean);
            if (std <= 1e-8)
            {
                zeroStd++;
            }

            var scale = mode switch
            {
                AdvantageNormalization.Group => 1 / (std + epsilon),
                AdvantageNormalization.Batch => 1 / (batchStd + epsilon),
                AdvantageNormalization.None => 1,
                _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "not a normalisation"),
            };
            for (var i = 0; i < groupSize; i++)
            {
                advantages[g + i] = (group[i] - mean) * scale;
            }
        }

        return new AdvantageStatistics(batchMean, batchStd, (double)zeroStd / (b / groupSize));
    }

    private static double BesselStd(ReadOnlySpan<double> values, out double mean)
    {
        double sum = 0;
        foreach (var v in values)
        {
            sum += v;
        }

        mean = sum / values.Length;
        if (values.Length < 2)
        {
            return 0;
        }

        double squares = 0;
        foreach (var v in values)
        {
            squares += (v - mean) * (v - mean);
        }

        return Math.Sqrt(squares / (values.Length - 1));
    }
}
