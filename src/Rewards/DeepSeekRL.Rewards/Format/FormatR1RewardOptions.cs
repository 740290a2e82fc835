namespace DeepSeekRL.Rewards.Format;

/// <summary>Options of <c>format_r1</c> (the DeepSeek-R1 chat form: reasoning in one think block, then the answer).</summary>
public sealed class FormatR1RewardOptions : IValidatableOptions
{
    /// <summary>
    /// Whether the completion starts with <c>&lt;think&gt;</c> followed by a line break. Default <see langword="true"/>.
    /// Set <see langword="false"/> when the chat template already opens the assistant turn with <c>&lt;think&gt;\n</c>
    /// (the R1 template does): the completion then starts with the reasoning and must contain no <c>&lt;think&gt;</c>.
    /// </summary>
    public bool CompletionIncludesOpenTag { get; set; } = true;

    /// <summary>Whether the reasoning must contain something other than white space. Default <see langword="true"/>.</summary>
    public bool RequireNonEmptyReasoning { get; set; } = true;

    /// <inheritdoc/>
    public string? Validate() => null;
}
