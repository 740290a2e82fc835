using DeepSeekRL.Storage.Database;
using DeepSeekRL.Storage.Queue;
using Npgsql;

namespace DeepSeekRL.Testing;

/// <summary>Per-test databases with the engine schema applied, and small SQL helpers for assertions.</summary>
public static class EngineDatabase
{
    /// <summary>A fresh database on the shared test server with every shipped migration applied.</summary>
    public static async Task<TestDatabase> CreateAsync(CancellationToken cancellationToken)
    {
        var server = await PostgresServer.SharedAsync();
        var db = await server.CreateDatabaseAsync(cancellationToken);
        var migrated = await MigrationRunner.ApplyAsync(db.DataSource, Migration.Embedded(), cancellationToken);
        if (!migrated.Succeeded)
        {
            await db.DisposeAsync();
            throw new InvalidOperationException(migrated.Error);
        }

        return db;
    }

    /// <summary>Runs a scalar query with positional parameters ($1, $2, ...).</summary>
    public static async Task<T> ScalarAsync<T>(this NpgsqlDataSource dataSource, string sql, CancellationToken cancellationToken, params object[] args)
    {
        await using var command = dataSource.CreateCommand(sql);
        foreach (var arg in args)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = arg });
        }

        var value = await command.ExecuteScalarAsync(cancellationToken);
        return (T)value!;
    }

    /// <summary>Runs a statement with positional parameters and returns the rows affected.</summary>
    public static async Task<int> ExecuteAsync(this NpgsqlDataSource dataSource, string sql, CancellationToken cancellationToken, params object[] args)
    {
        await using var command = dataSource.CreateCommand(sql);
        foreach (var arg in args)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = arg });
        }

        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Reads one column of a query as a list.</summary>
    public static async Task<List<T>> ColumnAsync<T>(this NpgsqlDataSource dataSource, string sql, CancellationToken cancellationToken, params object[] args)
    {
        await using var command = dataSource.CreateCommand(sql);
        foreach (var arg in args)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = arg });
        }

        var values = new List<T>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            values.Add(reader.GetFieldValue<T>(0));
        }

        return values;
    }

    /// <summary>Polls an external condition (the database clock passing a lease's expiry) until it holds; bounded by the token.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        while (!await condition())
        {
            await Task.Delay(5, cancellationToken);
        }
    }

    /// <summary>A work item with a JSON payload naming its key.</summary>
    public static NewWorkItem Item(long campaignId, string key, string kind = "rollout", int? policyVersion = null, int priority = 0, int maxAttempts = 5) =>
        new(campaignId, kind, key, $$"""{"key":"{{key}}"}""", policyVersion, priority, maxAttempts);
}
