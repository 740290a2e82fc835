using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace DeepSeekRL.Testing;

/// <summary>
/// A long-running <c>deepseekrl</c> child process (the Silo assembly run directly by <c>dotnet</c>, no shell
/// wrapper, so <see cref="Kill"/> hits the real process). Its output is collected in the background.
/// </summary>
public sealed class CliChild : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _gate = new();

    private CliChild(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    /// <summary>A label for the output.</summary>
    public string Name { get; }

    /// <summary>The process id.</summary>
    public int Pid => _process.Id;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Standard output and error so far, interleaved, each line prefixed with the stream.</summary>
    public string Output
    {
        get
        {
            lock (_gate)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts <c>DeepSeekRL.Silo.dll</c> with the arguments.</summary>
    /// <param name="name">A label for the output.</param>
    /// <param name="arguments">The command-line arguments.</param>
    /// <param name="environment">Extra variables.</param>
    /// <returns>The running child.</returns>
    public static CliChild Start(string name, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "DeepSeekRL.Silo.dll"));
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DEEPSEEKRL_HOME"] = RepositoryPaths.Root;
        info.Environment.Remove("DEEPSEEKRL_DB");
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new CliChild(name, process);
        process.OutputDataReceived += (_, e) => child.Append("out", e.Data);
        process.ErrorDataReceived += (_, e) => child.Append("err", e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>SIGKILLs the process and its descendants and waits for it to be gone.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        Append("test", "killed (SIGKILL)");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Append(string stream, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            _output.Append(CultureInfo.InvariantCulture, $"{stream}: {line}\n");
        }
    }
}
