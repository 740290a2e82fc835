using System.Diagnostics;

namespace DeepSeekRL.Testing;

/// <summary>The result of running the <c>deepseekrl</c> CLI as a child process.</summary>
/// <param name="ExitCode">The exit code.</param>
/// <param name="StandardOutput">Standard output.</param>
/// <param name="StandardError">Standard error.</param>
/// <param name="Elapsed">Wall time of the run.</param>
public sealed record CliResult(int ExitCode, string StandardOutput, string StandardError, TimeSpan Elapsed);

/// <summary>Runs the CLI host (the Silo assembly next to the test assembly) as a real child process.</summary>
public static class CliProcess
{
    /// <summary>Runs <c>DeepSeekRL.Silo.dll</c> with <paramref name="arguments"/>.</summary>
    /// <param name="arguments">The command-line arguments.</param>
    /// <param name="environment">Variables to set (a <see langword="null"/> value removes the variable).</param>
    /// <param name="cancellationToken">Kills the process when cancelled.</param>
    /// <returns>The result.</returns>
    public static async Task<CliResult> RunAsync(
        IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null, CancellationToken cancellationToken = default)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "DeepSeekRL.Silo.dll");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DEEPSEEKRL_HOME"] = RepositoryPaths.Root;
        info.Environment.Remove("DEEPSEEKRL_DB");
        return await RunAsync(info, environment, cancellationToken);
    }

    /// <summary>
    /// Starts <paramref name="info"/> (standard output and error redirected) with <paramref name="environment"/> applied
    /// last, collects both streams and waits for the exit; cancelling kills the process tree.
    /// </summary>
    /// <param name="info">The start info.</param>
    /// <param name="environment">Variables to set (a <see langword="null"/> value removes the variable).</param>
    /// <param name="cancellationToken">Kills the process when cancelled.</param>
    /// <returns>The result.</returns>
    public static async Task<CliResult> RunAsync(ProcessStartInfo info, IReadOnlyDictionary<string, string?>? environment, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(info);
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                info.Environment.Remove(key);
            }
            else
            {
                info.Environment[key] = value;
            }
        }

        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new CliResult(process.ExitCode, await stdout, await stderr, stopwatch.Elapsed);
    }

    /// <summary>The non-empty lines of a text.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The lines.</returns>
    public static string[] Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

}
