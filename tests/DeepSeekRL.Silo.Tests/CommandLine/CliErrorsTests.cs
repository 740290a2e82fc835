using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.CommandLine;

/// <summary>
/// Issue 19 §2, the top-level handler: every failure a user can meet is one line <c>deepseekrl: error: ...</c> naming
/// what is missing and the command that fixes it; <c>--verbose</c> or <c>DEEPSEEKRL_DEBUG=1</c> adds the stack trace.
/// Each failure is provoked for real (a bound port, a closed port, /dev/full, a library that does not exist).
/// </summary>
public sealed class CliErrorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepseekrl-errors-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task TopLevelHandler_SiloApiPortInUse_OneLineNamingThePortAndTheOption()
    {
        await using var db = await (await PostgresServer.SharedAsync()).CreateDatabaseAsync(Ct);
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        var run = await CliProcess.RunAsync(["silo", "--roles", "api", "--api-port", $"{port}", "--api-token", "token-0123456789abcdef", "--db", db.ConnectionString], null, Ct);

        Assert.Equal(1, run.ExitCode);
        var line = Assert.Single(CliProcess.Lines(run.StandardError));
        Assert.StartsWith($"deepseekrl: error: --api-port: cannot listen on port {port}: ", line, StringComparison.Ordinal);
        Assert.Contains("address already in use", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--verbose")]
    [InlineData("DEEPSEEKRL_DEBUG=1")]
    public async Task TopLevelHandler_VerboseOrDebug_PrintsTheStackTraceAfterTheLine(string how)
    {
        var model = await MicroModelAsync();
        string[] arguments = ["model", "forward", "--model", model, "--tokens", "1,2,3", "--out", Path.Combine(_dir, "logits.safetensors")];
        var environment = new Dictionary<string, string?> { ["DEEPSEEKRL_OPENBLAS"] = "libopenblas-absent.so.0" };
        if (how == "--verbose")
        {
            arguments = [.. arguments, "--verbose"];
        }
        else
        {
            environment["DEEPSEEKRL_DEBUG"] = "1";
        }

        var run = await CliProcess.RunAsync(arguments, environment, Ct);

        Assert.Equal(1, run.ExitCode);
        var lines = CliProcess.Lines(run.StandardError);
        Assert.StartsWith("deepseekrl: error: missing OpenBLAS (libopenblas-absent.so.0)", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("System.DllNotFoundException: ", lines[1], StringComparison.Ordinal);
        Assert.Contains(lines, l => l.StartsWith("at DeepSeekRL.Model.Kernels.Blas.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TopLevelHandler_MissingOpenBlas_OneLineWithTheAptGetCommand()
    {
        var model = await MicroModelAsync();

        // The engine loads OpenBLAS under this name: a library that does not exist gives the loader's real DllNotFoundException.
        var run = await CliProcess.RunAsync(["model", "forward", "--model", model, "--tokens", "1,2,3", "--out", Path.Combine(_dir, "logits.safetensors")],
            new Dictionary<string, string?> { ["DEEPSEEKRL_OPENBLAS"] = "libopenblas-absent.so.0" }, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal(
            "deepseekrl: error: missing OpenBLAS (libopenblas-absent.so.0); run: sudo apt-get install -y --no-install-recommends libopenblas0-pthread (or bash infra/setup.sh)",
            run.StandardError.Trim());
    }

    [Fact]
    public async Task TopLevelHandler_DatabaseOnClosedPort_OneLineNamingHostAndPort()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var run = await CliProcess.RunAsync(["campaign", "list", "--db", $"Host=127.0.0.1;Port={port};Username=x;Password=y;Database=d"], null, Ct);

        Assert.Equal(1, run.ExitCode);
        var line = Assert.Single(CliProcess.Lines(run.StandardError));
        Assert.StartsWith($"deepseekrl: error: cannot reach PostgreSQL at 127.0.0.1:{port}", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TopLevelHandler_BenchDashboardWithoutChromium_OneLineWithTheAptGetCommand()
    {
        await using var db = await (await PostgresServer.SharedAsync()).CreateDatabaseAsync(Ct);
        var absent = Path.Combine(_dir, "chromium");

        var run = await CliProcess.RunAsync(["bench", "dashboard", "--runs", "1", "--db", db.ConnectionString],
            new Dictionary<string, string?> { ["DEEPSEEKRL_CHROMIUM"] = absent }, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal(
            $"deepseekrl: error: missing chromium ({absent}); run: sudo apt-get install -y --no-install-recommends chromium (or bash infra/setup.sh)",
            CliProcess.Lines(run.StandardError)[^1]);
    }

    [Fact]
    public void Describe_NoSpaceLeftOnDevice_NamesThePathAndSaysToFreeSpace()
    {
        // /dev/full answers every write with ENOSPC: the exception is the one a full disk gives.
        var full = Assert.Throws<IOException>(() =>
        {
            using var stream = new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
            stream.Write(new byte[16]);
        });

        Assert.Equal("no space left on device writing /dev/full; free space on that disk and run again (df -h /dev)", CliErrors.Describe(full, null));
    }

    [Fact]
    public void Describe_AddressInUse_NamesThePortAndTheCommandsPortOption()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        using var second = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var inUse = Assert.Throws<SocketException>(() => second.Bind(new IPEndPoint(IPAddress.Loopback, port)));
        // Kestrel wraps it so: the message names the address it failed to bind.
        var kestrel = new IOException($"Failed to bind to address http://127.0.0.1:{port}: address already in use.", inUse);
        var serve = new System.CommandLine.Command("serve") { Options = { new System.CommandLine.Option<int>("--port") } };

        Assert.Equal($"port {port} on 127.0.0.1 is already in use; stop the program listening there or choose another with --port", CliErrors.Describe(kestrel, serve));
        Assert.Equal("the port is already in use; stop the program listening there or choose another port", CliErrors.Describe(inUse, null));
    }

    [Fact]
    public void Describe_MissingNativeLibrary_NamesItAndTheSetUp()
    {
        var missing = Assert.Throws<DllNotFoundException>(() => NativeLibrary.Load("libdeepseekrl-absent.so.7"));

        Assert.Equal("missing the native library libdeepseekrl-absent.so.7; run: bash infra/setup.sh (it installs DeepSeekRL's system packages)",
            CliErrors.Describe(missing, null));
    }

    [Fact]
    public void Describe_UnexpectedException_OneLineWithTheTypeAndHowToSeeTheTrace()
    {
        var bug = Assert.Throws<InvalidOperationException>(() => new List<int>().First());

        Assert.Equal("Sequence contains no elements (InvalidOperationException; run with --verbose or DEEPSEEKRL_DEBUG=1 for the stack trace)",
            CliErrors.Describe(bug, null));
    }

    private async Task<string> MicroModelAsync()
    {
        var model = Path.Combine(_dir, "model");
        var init = await CliProcess.RunAsync(["model", "init", "--config", Path.Combine(RepositoryPaths.Root, "examples", "models", "micro.json"), "--seed", "1", "--out", model], null, Ct);
        Assert.True(init.ExitCode == 0, init.StandardError);
        return model;
    }
}
