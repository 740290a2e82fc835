using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Readability;

/// <summary>Options of <c>markdown_in_reasoning</c>.</summary>
public sealed class MarkdownInReasoningRewardOptions : IValidatableOptions
{
    /// <summary>Whether headings (<c># Title</c>) are allowed. Default <see langword="false"/>.</summary>
    public bool AllowHeadings { get; set; }

    /// <summary>Whether tables (a GFM delimiter row such as <c>|---|---|</c>) are allowed. Default <see langword="false"/>.</summary>
    public bool AllowTables { get; set; }

    /// <summary>The largest share of non-blank lines that may be list items (<c>- </c>, <c>* </c>, <c>+ </c>, <c>1. </c>, <c>1) </c>). Default 0.5; range [0, 1].</summary>
    public double MaxBulletFraction { get; set; } = 0.5;

    /// <summary>The fewest non-blank lines for the bullet share to be judged (short texts are not bullet-heavy). Default 4; range 1 to 1,000,000.</summary>
    public int MinLines { get; set; } = 4;

    /// <summary>Which text is judged. Default <see cref="ReasoningScope.Reasoning"/>.</summary>
    public ReasoningScope Scope { get; set; } = ReasoningScope.Reasoning;

    /// <inheritdoc/>
    public string? Validate() =>
        MaxBulletFraction is < 0 or > 1 or double.NaN ? $"max_bullet_fraction: expected a number in [0, 1], got {MaxBulletFraction}"
        : MinLines is < 1 or > 1_000_000 ? $"min_lines: expected an integer from 1 to 1000000, got {MinLines}"
        : null;
}
