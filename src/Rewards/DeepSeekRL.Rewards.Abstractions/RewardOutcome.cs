namespace DeepSeekRL.Rewards;

/// <summary>A rule's verdict on one completion: a finite score, or a missing score with its reason.</summary>
public readonly struct RewardOutcome : IEquatable<RewardOutcome>
{
    private RewardOutcome(double? value, string? reason)
    {
        Value = value;
        Reason = reason;
    }

    /// <summary>The score, or <see langword="null"/> when missing.</summary>
    public double? Value { get; }

    /// <summary>Why the score is missing (or a short explanation of the score), else <see langword="null"/>.</summary>
    public string? Reason { get; }

    /// <summary>Whether the score is missing.</summary>
    public bool IsMissing => Value is null;

    /// <summary>A score. NaN and infinities are turned into a missing score by the pipeline.</summary>
    /// <param name="value">The score.</param>
    /// <param name="reason">An optional explanation (shown in sample browsers).</param>
    /// <returns>The outcome.</returns>
    public static RewardOutcome Score(double value, string? reason = null) => new(value, reason);

    /// <summary>A missing score: the rule cannot judge this completion.</summary>
    /// <param name="reason">Why.</param>
    /// <returns>The outcome.</returns>
    public static RewardOutcome Missing(string reason) => new(null, reason);

    /// <inheritdoc/>
    public bool Equals(RewardOutcome other) => Value.Equals(other.Value) && Reason == other.Reason;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is RewardOutcome other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Value, Reason);

    /// <inheritdoc/>
    public override string ToString() => Value is double v ? $"Score({v})" : $"Missing({Reason})";

    /// <summary>Equality.</summary>
    /// <param name="left">The left outcome.</param>
    /// <param name="right">The right outcome.</param>
    /// <returns>Whether equal.</returns>
    public static bool operator ==(RewardOutcome left, RewardOutcome right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    /// <param name="left">The left outcome.</param>
    /// <param name="right">The right outcome.</param>
    /// <returns>Whether different.</returns>
    public static bool operator !=(RewardOutcome left, RewardOutcome right) => !left.Equals(right);
}
