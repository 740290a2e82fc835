using System.Diagnostics;
using System.Text;

namespace DeepSeekRL.Storage.Database;

/// <summary>The exit code and captured output of a finished child process.</summary>
/// <param name="ExitCode">The exit code (-1 when the process could not be started or timed out).</param>
/// <param name="StandardOutput">Everything written to standard output.</param>
/// <param name="StandardError">Everything written to standard error, or why the process did not run.</param>
public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>Whether the process exited with code 0.</summary>
    public bool Succeeded => ExitCode == 0;

    /// <summary>The last non-empty line of standard error (or output), for one-line error messages.</summary>
    public string LastLine
    {
        get
        {
            var text = string.IsNullOrWhiteSpace(StandardError) ? StandardOutput : StandardError;
            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return lines.Length == 0 ? $"exit code {ExitCode}" : lines[^1];
        }
    }
}

/// <summary>Runs short-lived helper programs (initdb, pg_ctl, chown), optionally as another user through runuser.</summary>
public static class ProcessRunner
{
    /// <summary>Runs <paramref name="fileName"/> with <paramref name="arguments"/> and waits for it to exit.</summary>
    /// <param name="fileName">The program.</param>
    /// <param name="arguments">The arguments, passed without a shell.</param>
    /// <param name="runAsUser">When set, the program runs as this user through <c>runuser -u USER --</c>.</param>
    /// <param name="timeout">The time after which the process tree is killed.</param>
    /// <param name="cancellationToken">Kills the process when cancelled.</param>
    /// <returns>The result; a program that cannot be started gives exit code -1 and the reason.</returns>
    public static async Task<ProcessResult> RunAsync(
        string fileName, IEnumerable<string> arguments, string? runAsUser, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            // A directory every user can enter: initdb and pg_ctl fail when the caller's cwd is unreadable to them.
            WorkingDirectory = "/",
        };
        if (runAsUser is null)
        {
            info.FileName = fileName;
        }
        else
        {
            info.FileName = "runuser";
            info.ArgumentList.Add("-u");
            info.ArgumentList.Add(runAsUser);
            info.ArgumentList.Add("--");
            info.ArgumentList.Add(fileName);
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = new Process { StartInfo = info };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return new ProcessResult(-1, string.Empty, $"cannot run {info.FileName}: {ex.Message}");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(timeoutSource.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            cancellationToken.ThrowIfCancellationRequested();
            return new ProcessResult(-1, stdout.ToString(), $"{Path.GetFileName(fileName)} did not finish within {timeout.TotalSeconds:0} s");
        }

        // WaitForExitAsync returns after the output streams are drained.
        return new ProcessResult(process.ExitCode, stdout.ToString(), stderr.ToString());
    }
}
