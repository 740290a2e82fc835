namespace DeepSeekRL.Rewards.Length;

/// <summary>Options of <c>soft_overlong</c> (DAPO's soft overlong punishment, eq. 13; open-r1's names and defaults).</summary>
public sealed class SoftOverlongRewardOptions : IValidatableOptions
{
    /// <summary>L_max: the generation limit, in tokens. Default 16,384 (open-r1); range 1 to 10,000,000.</summary>
    public int MaxCompletionLen { get; set; } = 16_384;

    /// <summary>L_cache: the length of the soft band below L_max, in tokens. Default 4,096 (open-r1); range 0 to max_completion_len.</summary>
    public int SoftPunishCache { get; set; } = 4_096;

    /// <inheritdoc/>
    public string? Validate() =>
        MaxCompletionLen is < 1 or > 10_000_000 ? $"max_completion_len: expected an integer from 1 to 10000000, got {MaxCompletionLen}"
        : SoftPunishCache < 0 || SoftPunishCache > MaxCompletionLen
            ? $"soft_punish_cache: expected an integer from 0 to max_completion_len ({MaxCompletionLen}), got {SoftPunishCache}"
        : null;
}
