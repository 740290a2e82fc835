namespace DeepSeekRL.Rewards.Text;

/// <summary>
/// Finds the chain of thought of a completion: the text inside its <c>&lt;think&gt;</c> block. Shared by the
/// language and readability rules so that they all judge the same span.
/// </summary>
internal static class ChainOfThought
{
    /// <summary>The opening tag.</summary>
    public const string OpenTag = "<think>";

    /// <summary>The closing tag.</summary>
    public const string CloseTag = "</think>";

    /// <summary>
    /// The chain of thought: from after the first <c>&lt;think&gt;</c> (or from the start when the completion has no
    /// opening tag, as with the R1 chat template, which opens the block in the prompt) to the first
    /// <c>&lt;/think&gt;</c>; to the end when the block is not closed; the whole completion when neither tag occurs.
    /// </summary>
    /// <param name="completion">The completion.</param>
    /// <returns>The span of the reasoning, without the tags.</returns>
    public static ReadOnlySpan<char> Of(string completion)
    {
        var text = completion.AsSpan();
        var close = text.IndexOf(CloseTag, StringComparison.Ordinal);
        var open = text.IndexOf(OpenTag, StringComparison.Ordinal);
        if (close < 0)
        {
            return open < 0 ? text : text[(open + OpenTag.Length)..];
        }

        var start = open >= 0 && open < close ? open + OpenTag.Length : 0;
        return text[start..close];
    }

    /// <summary>Whether <paramref name="text"/> holds any character that is not white space.</summary>
    /// <param name="text">The text.</param>
    /// <returns><see langword="true"/> when some character is not white space.</returns>
    public static bool HasContent(ReadOnlySpan<char> text) => !text.IsWhiteSpace();

    /// <summary>The text a rule reads: the chain of thought or the whole completion.</summary>
    /// <param name="completion">The completion.</param>
    /// <param name="scope">Which part.</param>
    /// <returns>The span.</returns>
    public static ReadOnlySpan<char> Select(string completion, ReasoningScope scope) =>
        scope == ReasoningScope.Reasoning ? Of(completion) : completion.AsSpan();

    /// <summary>Whether a line opens or closes a fenced code block: up to three spaces, then ``` or ~~~.</summary>
    /// <param name="line">The line, without its line break.</param>
    /// <returns><see langword="true"/> for a fence line.</returns>
    public static bool IsFence(ReadOnlySpan<char> line)
    {
        var indent = 0;
        while (indent < line.Length && indent < 4 && line[indent] == ' ')
        {
            indent++;
        }

        var rest = line[indent..];
        return indent < 4 && (rest.StartsWith("```", StringComparison.Ordinal) || rest.StartsWith("~~~", StringComparison.Ordinal));
    }
}
