using System.Net;
using System.Net.Sockets;
using DeepSeekRL.Storage.Database;
using DeepSeekRL.Testing;
using Npgsql;

namespace DeepSeekRL.Storage.Tests.Database;

public sealed class DatabaseConnectorTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static EmbeddedPostgres Unused => new(new EmbeddedPostgresOptions { DataDirectory = Path.Combine(Path.GetTempPath(), "never-started") });

    [Fact]
    public async Task ConnectAsync_ClosedPort_FailsNamingHostPortAndCause()
    {
        var port = FreePort();
        var target = DatabaseTarget.Resolve(null, $"Host=127.0.0.1;Port={port};Username=x;Password=y").Value;

        var outcome = await DatabaseConnector.ConnectAsync(target, Unused, Migration.Embedded(), Ct);

        Assert.False(outcome.Succeeded);
        Assert.Contains($"127.0.0.1:{port}", outcome.Error, StringComparison.Ordinal);
        Assert.Contains("DEEPSEEKRL_DB", outcome.Error, StringComparison.Ordinal);
        Assert.Contains("refused", outcome.Error, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain('\n', outcome.Error!);
    }

    [Fact]
    public async Task ConnectAsync_ServerThatNeverAnswers_FailsWithTimeoutInsteadOfHanging()
    {
        // A listener that accepts TCP connections and never says a word: the worst kind of dead server.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start(backlog: 16);
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        var target = DatabaseTarget.Resolve($"Host=127.0.0.1;Port={port};Username=x;Password=y;Timeout=2", null).Value;

        var outcome = await DatabaseConnector.ConnectAsync(target, Unused, Migration.Embedded(), Ct);

        Assert.False(outcome.Succeeded);
        Assert.Contains($"127.0.0.1:{port} (from --db)", outcome.Error, StringComparison.Ordinal);
        Assert.Contains("no answer", outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectAsync_ConfiguredServer_ConnectsAndMigrates()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var target = DatabaseTarget.Resolve(null, db.ConnectionString).Value;

        var outcome = await DatabaseConnector.ConnectAsync(target, Unused, Migration.Embedded(), Ct);

        Assert.True(outcome.Succeeded, outcome.Error);
        await using var connected = outcome.Value;
        Assert.Equal(Migration.Embedded()[^1].Version, connected.Migrations.SchemaVersion);
        await using var command = connected.DataSource.CreateCommand("SELECT current_database()");
        Assert.Equal(db.Name, (string?)await command.ExecuteScalarAsync(Ct));
        Assert.Equal(DatabaseSource.Environment, connected.Target.Source);
    }

    [Fact]
    public async Task ConnectAsync_WrongPassword_FailsNamingTheServer()
    {
        var server = await PostgresServer.SharedAsync();
        var builder = new NpgsqlConnectionStringBuilder(server.AdminConnectionString) { Password = "wrong-password" };
        var target = DatabaseTarget.Resolve(builder.ConnectionString, null).Value;

        var outcome = await DatabaseConnector.ConnectAsync(target, Unused, Migration.Embedded(), Ct);

        Assert.False(outcome.Succeeded);
        Assert.Contains($"{builder.Host}:{builder.Port}", outcome.Error, StringComparison.Ordinal);
        Assert.Contains("password", outcome.Error, StringComparison.OrdinalIgnoreCase);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
