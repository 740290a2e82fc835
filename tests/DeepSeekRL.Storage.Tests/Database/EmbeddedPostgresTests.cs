using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace DeepSeekRL.Storage.Tests.Database;

public sealed class EmbeddedPostgresTests(ScratchClusters scratch) : IClassFixture<ScratchClusters>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task StartAsync_Lifecycle_InitialisesReusesStopsAndRecoversFromSigkill()
    {
        var cluster = scratch.NewCluster();
        Assert.False(cluster.GetStatus().Initialized);

        var first = await cluster.StartAsync(Ct);
        Assert.True(first.Succeeded, first.Error);
        var running = cluster.GetStatus();
        Assert.True(running.Initialized);
        Assert.True(running.Running);
        Assert.Equal(1, await QueryAsync(first.Value, "SELECT 1"));
        Assert.Equal("deepseekrl", new NpgsqlConnectionStringBuilder(first.Value).Database);
        Assert.True(File.Exists(Path.Combine(cluster.DataDirectory, ".s.PGSQL." + running.Port.ToString(CultureInfo.InvariantCulture))),
            "the Unix socket lives in the data directory");

        // Reuse: a second start finds the same server.
        var again = await ScratchClusters.Reopen(cluster).StartAsync(Ct);
        Assert.True(again.Succeeded, again.Error);
        Assert.Equal(running.Pid, cluster.GetStatus().Pid);

        // SIGKILL the postmaster: status sees the crash, start recovers and the data is still there.
        await ExecuteAsync(first.Value, "CREATE TABLE survivor (id int); INSERT INTO survivor VALUES (42)");
        Process.GetProcessById(running.Pid).Kill();
        await WaitUntilAsync(() => !cluster.GetStatus().Running);
        Assert.True(cluster.GetStatus().StalePidFile);

        var recovered = await cluster.StartAsync(Ct);
        Assert.True(recovered.Succeeded, recovered.Error);
        Assert.NotEqual(running.Pid, cluster.GetStatus().Pid);
        Assert.Equal(42, await QueryAsync(recovered.Value, "SELECT id FROM survivor"));

        var stopped = await cluster.StopAsync(Ct);
        Assert.True(stopped.Succeeded, stopped.Error);
        Assert.True(stopped.Value);
        Assert.False(cluster.GetStatus().Running);
        Assert.False((await cluster.StopAsync(Ct)).Value);

        var restarted = await cluster.StartAsync(Ct);
        Assert.True(restarted.Succeeded, restarted.Error);
        Assert.Equal(42, await QueryAsync(restarted.Value, "SELECT id FROM survivor"));
    }

    [Fact]
    public async Task StartAsync_PortInUse_PicksAnotherPort()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var taken = ((IPEndPoint)squatter.LocalEndpoint).Port;

        var cluster = scratch.NewCluster(port: taken);
        var started = await cluster.StartAsync(Ct);

        Assert.True(started.Succeeded, started.Error);
        Assert.NotEqual(taken, cluster.GetStatus().Port);
        Assert.Equal(1, await QueryAsync(started.Value, "SELECT 1"));
    }

    [Fact]
    public async Task StartAsync_StalePidFileOfAnotherProgram_IsRemovedAndServerStarts()
    {
        var cluster = scratch.NewCluster();
        Assert.True((await cluster.StartAsync(Ct)).Succeeded);
        Assert.True((await cluster.StopAsync(Ct)).Succeeded);
        // A crash left postmaster.pid behind and the pid now belongs to another program (this test process).
        var pidFile = Path.Combine(cluster.DataDirectory, "postmaster.pid");
        await File.WriteAllTextAsync(pidFile, $"{Environment.ProcessId}\n{cluster.DataDirectory}\n0\n5432\n\n\n", Ct);

        var started = await cluster.StartAsync(Ct);

        Assert.True(started.Succeeded, started.Error);
        Assert.True(cluster.GetStatus().Running);
    }

    [Fact]
    public async Task StartAsync_DataDirectoryOfAnotherMajorVersion_GivesTheFix()
    {
        var cluster = scratch.NewCluster();
        Assert.True((await cluster.StartAsync(Ct)).Succeeded);
        Assert.True((await cluster.StopAsync(Ct)).Succeeded);
        var versionFile = Path.Combine(cluster.DataDirectory, "PG_VERSION");
        var original = await File.ReadAllTextAsync(versionFile, Ct);
        await File.WriteAllTextAsync(versionFile, "9\n", Ct);
        try
        {
            var started = await cluster.StartAsync(Ct);

            Assert.False(started.Succeeded);
            Assert.Contains("was made by PostgreSQL 9", started.Error, StringComparison.Ordinal);
            Assert.Contains("install postgresql-9", started.Error, StringComparison.Ordinal);
            Assert.Contains("rm -rf", started.Error, StringComparison.Ordinal);
            Assert.False(cluster.GetStatus().Running);
        }
        finally
        {
            await File.WriteAllTextAsync(versionFile, original, CancellationToken.None);
        }

        Assert.True((await cluster.StartAsync(Ct)).Succeeded);
    }

    private static async Task<int> QueryAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (int)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        // Polls a condition the operating system makes true (a killed process disappearing); bounded by the test token.
        while (!condition())
        {
            await Task.Delay(20, Ct);
        }
    }
}
