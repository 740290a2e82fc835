using System.Diagnostics;

namespace DeepSeekRL.Testing;

/// <summary>
/// Runs a program as an unprivileged user: as root through <c>setpriv</c> to <c>nobody</c> (uid and gid 65534, no
/// supplementary groups), otherwise as the current (already unprivileged) user. For tests of what a normal user sees:
/// permission errors and the launcher's "run: sudo apt-get install" line.
/// </summary>
public static class Unprivileged
{
    /// <summary>The uid the programs run as when the tests run as root.</summary>
    public const int NobodyId = 65534;

    /// <summary>Whether the tests run as root.</summary>
    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>
    /// Why <c>nobody</c> cannot run the checkout's programs (a directory above it not searchable by others, as
    /// <c>mktemp -d</c> makes them), or null when it can; tests skip with this reason.
    /// </summary>
    public static string? UnreachableReason
    {
        get
        {
            if (!IsRoot)
            {
                return null;
            }

            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if ((File.GetUnixFileMode(dir.FullName) & UnixFileMode.OtherExecute) == 0)
                {
                    return $"user nobody cannot search {dir.FullName}, above the checkout";
                }
            }

            return null;
        }
    }

    /// <summary>Runs <paramref name="program"/> with <paramref name="arguments"/> as an unprivileged user.</summary>
    /// <param name="program">The program.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <param name="environment">Variables to set (a <see langword="null"/> value removes the variable).</param>
    /// <param name="cancellationToken">Kills the process when cancelled.</param>
    /// <returns>The result.</returns>
    public static async Task<CliResult> RunAsync(
        string program, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var info = new ProcessStartInfo(IsRoot ? "setpriv" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (IsRoot)
        {
            foreach (var a in new[] { $"--reuid={NobodyId}", $"--regid={NobodyId}", "--clear-groups", "--", program })
            {
                info.ArgumentList.Add(a);
            }
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // nobody has no home; the .NET host needs none, but keep it from trying /root.
        info.Environment["HOME"] = Path.GetTempPath();
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment.Remove("DEEPSEEKRL_DB");
        return await CliProcess.RunAsync(info, environment, cancellationToken);
    }

    /// <summary>Runs the CLI host (<c>DeepSeekRL.Silo.dll</c> next to the test assembly) as an unprivileged user.</summary>
    /// <param name="arguments">The command-line arguments.</param>
    /// <param name="environment">Variables to set.</param>
    /// <param name="cancellationToken">Kills the process when cancelled.</param>
    /// <returns>The result.</returns>
    public static Task<CliResult> RunCliAsync(
        IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null, CancellationToken cancellationToken = default)
    {
        var env = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>()) { ["DEEPSEEKRL_HOME"] = RepositoryPaths.Root };
        return RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "DeepSeekRL.Silo.dll"), .. arguments], env, cancellationToken);
    }
}
