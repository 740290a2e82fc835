using System.Globalization;

namespace DeepSeekRL.Rewards.Accuracy;

/// <summary>Options of the <c>accuracy</c> rule (bound from the rules JSON with snake_case names).</summary>
public sealed class AccuracyRewardOptions : IValidatableOptions
{
    /// <summary>Decimal places for numeric comparison when a decimal takes part. Default 6; range 0..15. A row's
    /// <c>precision</c> field overrides it.</summary>
    public int Precision { get; set; } = 6;

    /// <summary>Time limit of one comparison in seconds. Default 1; range (0, 60]. On timeout the score is missing.</summary>
    public double TimeLimitSeconds { get; set; } = 1.0;

    /// <summary>Strict variable matching (<c>f(x)</c> is not <c>f(y)</c>). Default true.</summary>
    public bool Strict { get; set; } = true;

    /// <summary>Score of a correct answer. Default 1.0; finite.</summary>
    public double CorrectValue { get; set; } = 1.0;

    /// <summary>Score of a wrong or missing answer. Default 0.0; finite.</summary>
    public double WrongValue { get; set; }

    /// <inheritdoc />
    public string? Validate()
    {
        if (Precision is < 0 or > 15)
        {
            return string.Create(CultureInfo.InvariantCulture, $"precision must be in 0..15, got {Precision}");
        }

        if (!(TimeLimitSeconds > 0 && TimeLimitSeconds <= 60))
        {
            return string.Create(CultureInfo.InvariantCulture, $"time_limit_seconds must be in (0, 60], got {TimeLimitSeconds}");
        }

        if (!double.IsFinite(CorrectValue) || !double.IsFinite(WrongValue))
        {
            return string.Create(CultureInfo.InvariantCulture, $"correct_value and wrong_value must be finite, got {CorrectValue} and {WrongValue}");
        }

        return null;
    }

    /// <summary>Verifier settings for one sample: the row's <c>precision</c> field wins over <see cref="Precision"/>.</summary>
    internal MathVerifyOptions ToVerifyOptions(in RewardArguments args)
    {
        var precision = Precision;
        if (args.Fields.TryGetValue("precision", out var p) && p.ValueKind == System.Text.Json.JsonValueKind.Number
            && p.TryGetInt32(out var rowPrecision) && rowPrecision is >= 0 and <= 15)
        {
            precision = rowPrecision;
        }

        return new MathVerifyOptions
        {
            Precision = precision,
            Strict = Strict,
            TimeLimit = TimeSpan.FromSeconds(TimeLimitSeconds),
            TimeProvider = args.TimeProvider,
        };
    }
}
