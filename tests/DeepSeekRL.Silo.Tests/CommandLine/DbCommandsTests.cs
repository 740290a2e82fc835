using System.Net;
using System.Net.Sockets;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.CommandLine;

public sealed class DbCommandsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Url_DbOptionAndEnvironment_DbOptionWins()
    {
        var result = await CliProcess.RunAsync(
            ["db", "url", "--db", "Host=cli.example;Port=1111;Username=u;Database=d"],
            new Dictionary<string, string?> { ["DEEPSEEKRL_DB"] = "Host=env.example;Port=2222;Username=u;Database=d" }, Ct);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("postgresql://u@cli.example:1111/d", result.StandardOutput.Trim());
    }

    [Fact]
    public async Task Url_OnlyEnvironment_UsesEnvironment()
    {
        var result = await CliProcess.RunAsync(
            ["db", "url"], new Dictionary<string, string?> { ["DEEPSEEKRL_DB"] = "postgresql://u:pw@env.example:2222/d" }, Ct);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("postgresql://u:pw@env.example:2222/d", result.StandardOutput.Trim());
    }

    [Fact]
    public async Task Status_EnvironmentPointsAtSilentServer_OneLineErrorNamingHostAndPort()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start(backlog: 16);
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;

        var result = await CliProcess.RunAsync(
            ["db", "status"], new Dictionary<string, string?> { ["DEEPSEEKRL_DB"] = $"Host=127.0.0.1;Port={port};Username=x;Password=y" }, Ct);

        Assert.NotEqual(0, result.ExitCode);
        var lines = CliProcess.Lines(result.StandardError);
        Assert.Single(lines);
        Assert.StartsWith("deepseekrl: error: cannot reach PostgreSQL at 127.0.0.1:" + port, lines[0], StringComparison.Ordinal);
        Assert.Contains("DEEPSEEKRL_DB", lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_ConfiguredServer_MigratesAndReportsSchemaVersion()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var env = new Dictionary<string, string?> { ["DEEPSEEKRL_DB"] = db.ConnectionString };

        var first = await CliProcess.RunAsync(["db", "start"], env, Ct);
        var second = await CliProcess.RunAsync(["db", "migrate"], env, Ct);
        var status = await CliProcess.RunAsync(["db", "status"], env, Ct);

        Assert.Equal(0, first.ExitCode);
        Assert.Contains("applied migration 0001_cluster.sql", first.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("nothing to start", first.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(0, second.ExitCode);
        Assert.DoesNotContain("applied migration", second.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("(up to date)", second.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(0, status.ExitCode);
        var version = await db.ScalarAsync<int>("SELECT max(version) FROM schema_version");
        Assert.Contains($"schema version {version}", status.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stop_WithConfiguredServer_RefusesToTouchIt()
    {
        var result = await CliProcess.RunAsync(["db", "stop", "--db", "Host=db.example;Port=5432"], null, Ct);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("deepseekrl: error: db stop manages only the embedded cluster, but --db points at db.example:5432", result.StandardError.Trim());
    }

    [Fact]
    public async Task Url_BadConnectionString_NamesTheOption()
    {
        var result = await CliProcess.RunAsync(["db", "url", "--db", "Port=5432"], null, Ct);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("deepseekrl: error: --db: the connection string has no Host", result.StandardError.Trim(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("db", "--help")]
    [InlineData("db", "start", "--help")]
    [InlineData("db", "stop", "--help")]
    [InlineData("db", "status", "--help")]
    [InlineData("db", "url", "--help")]
    [InlineData("db", "migrate", "--help")]
    [InlineData("demo", "--help")]
    public async Task Help_EveryCommand_PrintsUsageAndExitsZero(params string[] arguments)
    {
        var result = await CliProcess.RunAsync(arguments, null, Ct);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("Usage:", result.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--version")]
    [InlineData("db", "--version")]
    [InlineData("db", "status", "--version")]
    public async Task Version_AnyCommand_PrintsTheVersion(params string[] arguments)
    {
        var result = await CliProcess.RunAsync(arguments, null, Ct);

        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", result.StandardOutput.Trim());
    }

    [Fact]
    public async Task UnknownCommand_ExitsNonZero()
    {
        var result = await CliProcess.RunAsync(["db", "explode"], null, Ct);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("explode", result.StandardError, StringComparison.Ordinal);
    }
}
