using System.Net.Sockets;
using Npgsql;

namespace DeepSeekRL.Storage.Database;

/// <summary>An open, migrated database: the process's single data source and where it came from.</summary>
/// <param name="DataSource">The data source; dispose it when the process is done.</param>
/// <param name="Target">The target it was built from (with the resolved connection string).</param>
/// <param name="Migrations">What the start-up migration run did.</param>
public sealed record ConnectedDatabase(NpgsqlDataSource DataSource, DatabaseTarget Target, MigrationReport Migrations) : IAsyncDisposable
{
    /// <inheritdoc/>
    public ValueTask DisposeAsync() => DataSource.DisposeAsync();
}

/// <summary>Connects to the configured database (starting the embedded cluster when none is configured) and migrates it.</summary>
public static class DatabaseConnector
{
    /// <summary>Resolves the target, reaches the server, and applies pending migrations.</summary>
    /// <param name="target">The target from <see cref="DatabaseTarget.Resolve"/>.</param>
    /// <param name="embedded">The embedded cluster, used when <paramref name="target"/> is <see cref="DatabaseSource.Embedded"/>.</param>
    /// <param name="migrations">The migrations to apply.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The connected database, or a one-line error naming host, port and cause.</returns>
    public static async Task<Outcome<ConnectedDatabase>> ConnectAsync(
        DatabaseTarget target, EmbeddedPostgres embedded, IReadOnlyList<Migration> migrations, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(embedded);
        if (target.Source == DatabaseSource.Embedded)
        {
            var started = await embedded.StartAsync(cancellationToken);
            if (!started.Succeeded)
            {
                return Outcome<ConnectedDatabase>.From(started);
            }

            target = target with { ConnectionString = started.Value };
        }

        var dataSource = NpgsqlDataSource.Create(target.ConnectionString!);
        var probe = await ProbeAsync(dataSource, target, cancellationToken);
        if (probe is not null)
        {
            await dataSource.DisposeAsync();
            return Outcome<ConnectedDatabase>.Failure(probe);
        }

        var migrated = await MigrationRunner.ApplyAsync(dataSource, migrations, cancellationToken);
        if (!migrated.Succeeded)
        {
            await dataSource.DisposeAsync();
            return Outcome<ConnectedDatabase>.From(migrated);
        }

        return Outcome<ConnectedDatabase>.Success(new ConnectedDatabase(dataSource, target, migrated.Value));
    }

    /// <summary>Opens one connection to check that the server answers; returns a one-line error or <see langword="null"/>.</summary>
    /// <param name="dataSource">The data source.</param>
    /// <param name="target">The target, for the message.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The error, or <see langword="null"/>.</returns>
    public static async Task<string?> ProbeAsync(NpgsqlDataSource dataSource, DatabaseTarget target, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(target);
        var from = target.Source switch
        {
            DatabaseSource.CommandLine => " (from --db)",
            DatabaseSource.Environment => $" (from {DatabaseTarget.EnvironmentVariable})",
            _ => " (embedded cluster)",
        };
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            return null;
        }
        catch (Exception ex) when (ex is NpgsqlException or SocketException or TimeoutException
                                   || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return $"cannot reach PostgreSQL at {target.Endpoint}{from}: {Describe(ex)}";
        }
    }

    private static string Describe(Exception ex)
    {
        // Npgsql wraps the socket error or timeout; the innermost message is the cause a user can act on.
        var inner = ex;
        while (inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }

        var message = inner is TimeoutException || ex is TimeoutException || ex.Message.Contains("Timeout", StringComparison.OrdinalIgnoreCase)
            ? "no answer within the connect timeout (server down, firewalled or not speaking PostgreSQL)"
            : inner.Message;
        return message.ReplaceLineEndings(" ").Trim();
    }

    /// <summary>The server's version and the schema version applied (null before any migration).</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The versions.</returns>
    public static async Task<(string Server, int? Schema)> DescribeAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var command = dataSource.CreateCommand(
            "SELECT current_setting('server_version'), (SELECT max(version) FROM schema_version) FROM (SELECT to_regclass('schema_version') IS NOT NULL) AS t(present) WHERE present " +
            "UNION ALL SELECT current_setting('server_version'), NULL WHERE to_regclass('schema_version') IS NULL");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetInt32(1));
    }
}
