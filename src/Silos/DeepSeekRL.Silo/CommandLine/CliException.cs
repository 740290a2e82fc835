namespace DeepSeekRL.Silo.CommandLine;

/// <summary>
/// Ends a command with a one-line error on standard error and a non-zero exit code. Commands turn failed
/// <see cref="Outcome{T}"/> values into this at the edge of the program.
/// </summary>
/// <param name="message">The one-line message naming the file, field or value and what was expected.</param>
/// <param name="exitCode">The exit code; default 1.</param>
public sealed class CliException(string message, int exitCode = 1) : Exception(message)
{
    /// <summary>The process exit code.</summary>
    public int ExitCode { get; } = exitCode;
}
