namespace DeepSeekRL.Rewards.Format;

/// <summary>Options of <c>code_format</c> (open-r1's <c>code_format_reward</c>).</summary>
public sealed class CodeFormatRewardOptions : IValidatableOptions
{
    /// <summary>The language tag the answer's fenced code block must carry (<c>```python</c>). Default <c>python</c>; letters, digits, <c>+ # - _ .</c>.</summary>
    public string Language { get; set; } = "python";

    /// <inheritdoc/>
    public string? Validate()
    {
        if (string.IsNullOrEmpty(Language))
        {
            return "language: expected a code-block language tag such as 'python', got an empty string";
        }

        foreach (var c in Language)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('+' or '#' or '-' or '_' or '.'))
            {
                return $"language: '{Language}' has the character '{c}'; expected letters, digits, + # - _ .";
            }
        }

        return null;
    }
}
