using System.Globalization;
using DeepSeekRL.Rewards.Accuracy;

namespace DeepSeekRL.Rewards.Length;

/// <summary>Options of the <c>cosine</c> rule (open-r1 <c>get_cosine_scaled_reward</c> function defaults).</summary>
public sealed class CosineRewardOptions : IValidatableOptions
{
    /// <summary>Reward of a correct answer at length <see cref="MaxLength"/>. Default 0.5.</summary>
    public double MinValueCorrect { get; set; } = 0.5;

    /// <summary>Reward of a correct answer at length 0. Default 1.0.</summary>
    public double MaxValueCorrect { get; set; } = 1.0;

    /// <summary>Reward of a wrong answer at length 0 (the most negative end). Default -1.0 (open-r1's CLI uses 0.0).</summary>
    public double MinValueWrong { get; set; } = -1.0;

    /// <summary>Reward of a wrong answer at length <see cref="MaxLength"/>. Default -0.5.</summary>
    public double MaxValueWrong { get; set; } = -0.5;

    /// <summary>Lmax, in characters (or tokens with <see cref="UseTokens"/>). Default 1000; must be positive.</summary>
    public int MaxLength { get; set; } = 1000;

    /// <summary>Measure length in tokens (<see cref="RewardArguments.CompletionTokens"/>) instead of characters. Default false.</summary>
    public bool UseTokens { get; set; }

    /// <summary>Clamp the length at <see cref="MaxLength"/> (TRL); open-r1 does not, so the cosine oscillates. Default false.</summary>
    public bool Clamp { get; set; }

    /// <summary>Verifier settings used to decide correctness.</summary>
    public AccuracyRewardOptions Accuracy { get; set; } = new();

    /// <inheritdoc />
    public string? Validate()
    {
        if (MaxLength <= 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"max_length must be positive, got {MaxLength}");
        }

        foreach (var v in (ReadOnlySpan<double>)[MinValueCorrect, MaxValueCorrect, MinValueWrong, MaxValueWrong])
        {
            if (!double.IsFinite(v))
            {
                return string.Create(CultureInfo.InvariantCulture, $"reward values must be finite, got {v}");
            }
        }

        return Accuracy?.Validate() is { } problem ? "accuracy." + problem : Accuracy is null ? "accuracy must not be null" : null;
    }
}
