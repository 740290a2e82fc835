using System.Diagnostics;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.CommandLine;

/// <summary>
/// Issue 19 §1, launcher prerequisites: <c>./deepseekrl</c> checks the system prerequisites of the command it runs
/// (infra/prerequisites.sh, shared with infra/setup.sh). <c>DEEPSEEKRL_OPENBLAS</c> points the check (and the model
/// engine) at a library that does not exist, which is how a machine without OpenBLAS looks.
/// </summary>
public sealed class LauncherTests : IDisposable
{
    private const string AbsentOpenBlas = "libopenblas-absent.so.0";
    private readonly string _dir = Directory.CreateTempSubdirectory("deepseekrl-launcher-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Launcher => Path.Combine(RepositoryPaths.Root, "deepseekrl");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task LauncherPrerequisites_MissingOpenBlasNotRoot_PrintsOneLineWithTheAptGetCommand()
    {
        Assert.SkipWhen(Unprivileged.UnreachableReason is not null, Unprivileged.UnreachableReason ?? string.Empty);
        var run = await Unprivileged.RunAsync("bash", [Launcher, "model", "init", "--config", "c.json", "--seed", "1", "--out", "m"],
            new Dictionary<string, string?> { ["DEEPSEEKRL_OPENBLAS"] = AbsentOpenBlas }, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal(
            $"deepseekrl: error: missing OpenBLAS ({AbsentOpenBlas}); run: sudo apt-get install -y --no-install-recommends libopenblas0-pthread",
            run.StandardError.Trim());
        Assert.Equal(string.Empty, run.StandardOutput);
    }

    [Fact]
    public async Task LauncherPrerequisites_MissingOpenBlasAsRoot_RunsTheSetUpInstallStep()
    {
        Assert.SkipUnless(Unprivileged.IsRoot, "the install step runs only as root");
        // apt-get is not ours: a stand-in on PATH records what the launcher asked it to install. The library stays
        // absent afterwards, so the launcher must say so rather than go on.
        var bin = Directory.CreateDirectory(Path.Combine(_dir, "bin")).FullName;
        var log = Path.Combine(_dir, "apt-get.log");
        var fake = Path.Combine(bin, "apt-get");
        await File.WriteAllTextAsync(fake, $"#!/bin/sh\necho \"$*\" >> '{log}'\n", Ct);
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var run = await RunAsync(["model", "init", "--config", "c.json", "--seed", "1", "--out", "m"], new()
        {
            ["DEEPSEEKRL_OPENBLAS"] = AbsentOpenBlas,
            ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"),
        });

        Assert.Equal(1, run.ExitCode);
        Assert.Equal(["update -qq", "install -y -qq --no-install-recommends libopenblas0-pthread"], await File.ReadAllLinesAsync(log, Ct));
        var lines = CliProcess.Lines(run.StandardError);
        Assert.Equal($"deepseekrl: installing libopenblas0-pthread (missing OpenBLAS ({AbsentOpenBlas}))", lines[0]);
        Assert.Equal($"deepseekrl: error: still missing OpenBLAS ({AbsentOpenBlas}) after apt-get install libopenblas0-pthread", lines[1]);
    }

    [Theory]
    [InlineData("demo", "openblas postgresql")]
    [InlineData("demo --quick --db Host=h", "openblas")]
    [InlineData("campaign run spec.json", "openblas postgresql")]
    [InlineData("campaign list", "postgresql")]
    [InlineData("silo --roles api", "openblas postgresql")]
    [InlineData("db status", "postgresql")]
    [InlineData("--db Host=h export --campaign 1 --out x", "")]
    [InlineData("export --campaign 1 --out x", "postgresql")]
    [InlineData("serve --model m", "openblas")]
    [InlineData("model init --config c", "openblas")]
    [InlineData("bench model", "openblas")]
    [InlineData("bench dashboard", "postgresql chromium")]
    [InlineData("tokenizer encode --input x", "")]
    [InlineData("rewards score --rules r", "")]
    [InlineData("demo --help", "")]
    [InlineData("model --version", "")]
    public async Task LauncherPrerequisites_EachCommand_NeedsItsCapabilities(string commandLine, string expected)
    {
        var run = await RunBashAsync($"source infra/prerequisites.sh; prereq_for_command {commandLine}");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(expected, string.Join(' ', run.StandardOutput.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
    }

    [Fact]
    public async Task LauncherPrerequisites_SetUpAndLauncher_SourceTheOneList()
    {
        var setup = await File.ReadAllTextAsync(Path.Combine(RepositoryPaths.Root, "infra", "setup.sh"), Ct);
        var launcher = await File.ReadAllTextAsync(Launcher, Ct);

        Assert.Contains("source \"$home/infra/prerequisites.sh\"", setup, StringComparison.Ordinal);
        Assert.Contains("source \"$home/infra/prerequisites.sh\"", launcher, StringComparison.Ordinal);
        Assert.DoesNotContain("apt-get install", setup, StringComparison.Ordinal);
        Assert.DoesNotContain("apt-get install", launcher, StringComparison.Ordinal);
        // Everything present on this machine (set-up ran): the check passes.
        var present = await RunBashAsync("source infra/prerequisites.sh; prereq_ensure t postgresql openblas");
        Assert.Equal(0, present.ExitCode);
    }

    [Theory]
    [InlineData("fpu sse4_2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16", "SkylakeX")]
    [InlineData("fpu sse4_2 avx avx2 fma", "")] // a Zen 3: SkylakeX kernels would die of SIGILL
    [InlineData("fpu sse4_2 avx avx2 fma avx512f avx512cd", "")] // no BW/DQ/VL (Knights Landing)
    public async Task LauncherCoreType_ForcesSkylakeXOnlyWithAvx512(string flags, string expected)
    {
        var cpuinfo = Path.Combine(_dir, "cpuinfo");
        await File.WriteAllTextAsync(cpuinfo, $"processor\t: 0\nflags\t\t: {flags}\n", Ct);

        var run = await RunBashAsync($"unset OPENBLAS_CORETYPE; source infra/prerequisites.sh; openblas_coretype '{cpuinfo}'; echo \"${{OPENBLAS_CORETYPE:-}}\"");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(expected, run.StandardOutput.Trim());
    }

    [Fact]
    public async Task LauncherCoreType_OnThisCpu_IsTheEnginesChoice()
    {
        var run = await RunBashAsync("unset OPENBLAS_CORETYPE; source infra/prerequisites.sh; openblas_coretype; echo \"${OPENBLAS_CORETYPE:-}\"");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(DeepSeekRL.Model.Kernels.Blas.DefaultCoreType ?? string.Empty, run.StandardOutput.Trim());
    }

    [Fact]
    public async Task LauncherCoreType_AlreadySet_IsKept()
    {
        var run = await RunBashAsync("export OPENBLAS_CORETYPE=Haswell; source infra/prerequisites.sh; openblas_coretype; echo \"$OPENBLAS_CORETYPE\"");

        Assert.Equal("Haswell", run.StandardOutput.Trim());
    }

    private static async Task<CliResult> RunAsync(string[] arguments, Dictionary<string, string?> environment)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Launcher);
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        return await WaitAsync(info);
    }

    private static Task<CliResult> RunBashAsync(string script)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = RepositoryPaths.Root };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(script);
        info.Environment.Remove("DEEPSEEKRL_DB");
        return WaitAsync(info);
    }

    private static async Task<CliResult> WaitAsync(ProcessStartInfo info)
    {
        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        return new CliResult(process.ExitCode, await stdout, await stderr, stopwatch.Elapsed);
    }
}
