namespace DeepSeekRL.Rewards.Format;

/// <summary>Options of <c>format_r1_zero</c> (the R1-Zero template: <c>&lt;think&gt; ... &lt;/think&gt; &lt;answer&gt; ... &lt;/answer&gt;</c>).</summary>
public sealed class FormatR1ZeroRewardOptions : IValidatableOptions
{
    /// <summary>
    /// Whether the completion starts with <c>&lt;think&gt;</c>. Default <see langword="true"/>. Set
    /// <see langword="false"/> when the prompt ends with <c>&lt;think&gt;</c> (TinyZero's Countdown prompt does).
    /// </summary>
    public bool CompletionIncludesOpenTag { get; set; } = true;

    /// <summary>Whether the reasoning must contain something other than white space. Default <see langword="true"/>.</summary>
    public bool RequireNonEmptyReasoning { get; set; } = true;

    /// <inheritdoc/>
    public string? Validate() => null;
}
