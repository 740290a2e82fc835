namespace DeepSeekRL.Rewards.Countdown;

/// <summary>Options of <c>countdown</c> (TinyZero's Countdown scorer).</summary>
public sealed class CountdownRewardOptions : IValidatableOptions
{
    /// <summary>The score of a correct equation. Default 1.0; finite.</summary>
    public double Score { get; set; } = 1.0;

    /// <summary>The score of an answer that is present but wrong or invalid. Default 0.1; finite.</summary>
    public double FormatScore { get; set; } = 0.1;

    /// <summary>
    /// Whether only the last line of the text is searched for <c>&lt;answer&gt;</c> (TinyZero: an answer followed by
    /// more lines, even a trailing line break, scores 0). Default <see langword="true"/>; when off the answer may
    /// span lines.
    /// </summary>
    public bool LastLineOnly { get; set; } = true;

    /// <summary>
    /// Whether a text without an <c>Assistant:</c> or <c>&lt;|im_start|&gt;assistant</c> marker scores 0, as in
    /// TinyZero, whose input is prompt plus response. Default <see langword="false"/>: completions here hold only the
    /// assistant turn, which is read whole when it has no marker.
    /// </summary>
    public bool RequireAssistantMarker { get; set; }

    /// <summary>
    /// Whether <c>**</c> (power) and <c>//</c> (floor division) evaluate as in Python, as TinyZero's <c>eval</c> lets
    /// them. Default <see langword="false"/>: they make the equation invalid (format score); Countdown allows
    /// only + - * / with true division.
    /// </summary>
    public bool PythonOperators { get; set; }

    /// <inheritdoc/>
    public string? Validate() =>
        !double.IsFinite(Score) ? $"score: expected a finite number, got {Score}"
        : !double.IsFinite(FormatScore) ? $"format_score: expected a finite number, got {FormatScore}"
        : null;
}
