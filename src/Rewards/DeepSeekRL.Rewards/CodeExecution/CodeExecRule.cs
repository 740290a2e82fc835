using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.CodeExecution;

/// <summary>
/// <c>code_exec</c>: runs the last fenced Python block of the answer against stdin/stdout test cases in a bubblewrap
/// sandbox and scores the fraction of tests passed.
/// </summary>
/// <remarks>
/// <para>Test cases come from the row's <c>test_cases</c> field, or <c>verification_info.test_cases</c> (open-r1), as
/// <c>[{"input": "...", "output": "..."}]</c>. Outputs are compared line by line with trailing whitespace and trailing
/// empty lines ignored. A row without test cases gets a missing score; a completion without a code block scores 0.</para>
/// <para>Sandbox: a new user, network, PID, IPC and UTS namespace (no network at all), an unprivileged uid, a read-only
/// <c>/usr</c>, the program bind-mounted read-only, an empty writable <c>/tmp</c>, a cleared environment, and
/// <c>prlimit</c> limits on address space, CPU time, file size and processes; the host kills it at the wall-clock
/// limit. A time-out or crash fails that test only.</para>
/// </remarks>
[RewardRule("code_exec")]
internal sealed partial class CodeExecRule(CodeExecRewardOptions options) : IRewardRule, IRuleTimeout
{
    /// <summary>Room for a few dozen tests at the per-test limit.</summary>
    public TimeSpan DefaultTimeout => TimeSpan.FromMilliseconds(Math.Max(30_000, options.TimeoutMsPerTest * 20));

    public async ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken)
    {
        var tests = ReadTests(args.Fields);
        if (tests is null)
        {
            return RewardOutcome.Missing("the row has no test_cases");
        }

        if (tests.Count == 0)
        {
            return RewardOutcome.Missing("test_cases is empty");
        }

        var code = ExtractLastCodeBlock(args.Completion);
        if (code is null)
        {
            return RewardOutcome.Score(0, "no fenced code block");
        }

        var directory = Directory.CreateTempSubdirectory("deepseekrl-code-");
        try
        {
            var program = Path.Combine(directory.FullName, "main.py");
            await File.WriteAllTextAsync(program, code, cancellationToken);
            File.SetUnixFileMode(directory.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            var passed = 0;
            var firstFailure = (string?)null;
            foreach (var (input, expected) in tests)
            {
                var (ok, why) = await RunTestAsync(directory.FullName, input, expected, cancellationToken);
                if (ok)
                {
                    passed++;
                }
                else
                {
                    firstFailure ??= why;
                }
            }

            var fraction = passed / (double)tests.Count;
            var score = options.Binary ? (fraction > 0.99 ? 1 : 0) : fraction;
            return RewardOutcome.Score(score, $"{passed}/{tests.Count} tests passed" + (firstFailure is null ? string.Empty : "; first failure: " + firstFailure));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>The last fenced code block (```python or ```), preferring the answer part after <c>&lt;/think&gt;</c>.</summary>
    /// <param name="completion">The completion.</param>
    /// <returns>The code, or <see langword="null"/>.</returns>
    internal static string? ExtractLastCodeBlock(string completion)
    {
        var end = completion.LastIndexOf("</think>", StringComparison.Ordinal);
        var answer = end >= 0 ? completion[(end + 8)..] : completion;
        var matches = FencePattern().Matches(answer);
        if (matches.Count == 0 && end >= 0)
        {
            matches = FencePattern().Matches(completion);
        }

        return matches.Count == 0 ? null : matches[^1].Groups["code"].Value;
    }

    private static List<(string Input, string Output)>? ReadTests(IReadOnlyDictionary<string, JsonElement> fields)
    {
        JsonElement list;
        if (fields.TryGetValue("test_cases", out var direct))
        {
            list = direct;
        }
        else if (fields.TryGetValue("verification_info", out var info) && info.ValueKind == JsonValueKind.Object && info.TryGetProperty("test_cases", out var nested))
        {
            list = nested;
        }
        else
        {
            return null;
        }

        if (list.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var tests = new List<(string, string)>();
        foreach (var test in list.EnumerateArray())
        {
            if (test.ValueKind != JsonValueKind.Object
                || !test.TryGetProperty("input", out var input) || input.ValueKind != JsonValueKind.String
                || !test.TryGetProperty("output", out var output) || output.ValueKind != JsonValueKind.String)
            {
                return null;
            }

            tests.Add((input.GetString()!, output.GetString()!));
        }

        return tests;
    }

    private async Task<(bool Passed, string? Why)> RunTestAsync(string directory, string input, string expected, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(options.Bwrap)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        var memory = ((long)options.MemoryMb << 20).ToString(CultureInfo.InvariantCulture);
        foreach (var a in new[]
        {
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
            "--ro-bind", directory, "/sandbox", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/tmp",
            "--unshare-all", "--uid", "65534", "--gid", "65534", "--die-with-parent", "--new-session", "--clearenv",
            "--setenv", "PATH", "/usr/bin", "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "PYTHONHASHSEED", "0",
            "--", "/usr/bin/prlimit", "--as=" + memory, "--cpu=" + options.CpuSecondsPerTest.ToString(CultureInfo.InvariantCulture),
            "--fsize=16777216", "--nproc=64", "--", options.Python, "-I", "/sandbox/main.py",
        })
        {
            info.ArgumentList.Add(a);
        }

        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"code_exec: cannot start the sandbox '{options.Bwrap}' ({ex.Message}); install the Debian package bubblewrap", ex);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.TimeoutMsPerTest);
        var stdout = ReadLimitedAsync(process.StandardOutput, options.MaxOutputBytes, timeout.Token);
        var stderr = ReadLimitedAsync(process.StandardError, 4096, timeout.Token);
        try
        {
            await process.StandardInput.WriteAsync(input.AsMemory(), timeout.Token);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The program exited without reading its input: judged by its output.
        }

        try
        {
            await process.WaitForExitAsync(timeout.Token);
            var output = await stdout;
            await stderr;
            if (output is null)
            {
                return (false, "output too large");
            }

            if (process.ExitCode != 0)
            {
                var error = (await stderr)?.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? string.Empty;
                return (false, $"exit code {process.ExitCode}: {error}");
            }

            return Same(output, expected) ? (true, null) : (false, "wrong output");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            return (false, $"timed out after {options.TimeoutMsPerTest} ms");
        }
    }

    private static async Task<string?> ReadLimitedAsync(StreamReader reader, int limit, CancellationToken cancellationToken)
    {
        var buffer = new char[8192];
        var text = new StringBuilder();
        int read;
        try
        {
            while ((read = await reader.ReadAsync(buffer, cancellationToken)) > 0)
            {
                if (text.Length + read > limit)
                {
                    return null;
                }

                text.Append(buffer, 0, read);
            }
        }
        catch (OperationCanceledException)
        {
        }

        return text.ToString();
    }

    private static bool Same(string actual, string expected)
    {
        static string[] Lines(string s) => s.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd().Split('\n').Select(l => l.TrimEnd()).ToArray();
        return Lines(actual).SequenceEqual(Lines(expected), StringComparer.Ordinal);
    }

    [GeneratedRegex(@"```(?:python|py|python3)?[ \t]*\r?\n(?<code>.*?)```", RegexOptions.Singleline | RegexOptions.CultureInvariant)]
    private static partial Regex FencePattern();
}

/// <summary>Registration of the <c>code_exec</c> rule.</summary>
public static class CodeExecRewardBuilderExtensions
{
    /// <summary>Adds the <c>code_exec</c> rule.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options, or defaults.</param>
    /// <param name="weight">The weight.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddCodeExecReward(this RewardPipelineBuilder builder, CodeExecRewardOptions? options = null, double weight = 1.0)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var rule = new CodeExecRule(options ?? new CodeExecRewardOptions());
        return builder.AddRule("code_exec", rule, weight, rule.DefaultTimeout);
    }
}
