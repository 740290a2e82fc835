namespace DeepSeekRL.Tokenizers;

/// <summary>
/// A tokenizer file that cannot be used: missing, too large, not JSON, inconsistent, or naming a component this
/// tokenizer does not implement. The message names the file and the JSON path (for example
/// <c>tokenizer.json: $.model.merges[12]: unknown token "xy"</c>).
/// </summary>
public sealed class TokenizerFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="file">The file (or a description of the source when there is no file).</param>
    /// <param name="jsonPath">The JSON path of the offending value, <c>$</c> for the whole document.</param>
    /// <param name="problem">What is wrong and what was expected.</param>
    public TokenizerFormatException(string file, string jsonPath, string problem)
        : base($"{file}: {jsonPath}: {problem}")
    {
        File = file;
        JsonPath = jsonPath;
    }

    /// <summary>Creates the exception with an inner exception.</summary>
    /// <param name="file">The file.</param>
    /// <param name="jsonPath">The JSON path.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="inner">The cause.</param>
    public TokenizerFormatException(string file, string jsonPath, string problem, Exception inner)
        : base($"{file}: {jsonPath}: {problem}", inner)
    {
        File = file;
        JsonPath = jsonPath;
    }

    /// <summary>Creates the exception with a bare message (required by the exception pattern).</summary>
    public TokenizerFormatException()
        : this("(unknown)", "$", "invalid tokenizer")
    {
    }

    /// <summary>Creates the exception with a bare message.</summary>
    /// <param name="message">The message.</param>
    public TokenizerFormatException(string message)
        : base(message)
    {
        File = "(unknown)";
        JsonPath = "$";
    }

    /// <summary>Creates the exception with a bare message and a cause.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public TokenizerFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
        File = "(unknown)";
        JsonPath = "$";
    }

    /// <summary>The file the problem is in.</summary>
    public string File { get; }

    /// <summary>The JSON path of the offending value.</summary>
    public string JsonPath { get; }
}
