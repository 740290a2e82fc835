using Npgsql;

namespace DeepSeekRL.Storage.Database;

/// <summary>What a migration run did.</summary>
/// <param name="Applied">The migrations applied by this run, in order (empty when the schema was current).</param>
/// <param name="SchemaVersion">The highest applied version after the run (0 for an empty schema).</param>
public sealed record MigrationReport(IReadOnlyList<Migration> Applied, int SchemaVersion);

/// <summary>
/// Applies schema migrations: each exactly once, each inside its own transaction, recorded in
/// <c>schema_version</c>, under a session advisory lock so that processes starting together take turns.
/// </summary>
/// <remarks>
/// A migration that fails is rolled back completely (PostgreSQL DDL is transactional), so the schema stays exactly as
/// it was before that migration; the error names the file and line. A migration whose text changed after it was
/// applied is an error: migrations are immutable once released.
/// </remarks>
public static class MigrationRunner
{
    /// <summary>The advisory-lock key that serialises migration runs (ASCII "DSRLMIGR").</summary>
    public const long AdvisoryLockKey = 0x4453524C4D494752;

    /// <summary>Applies the pending <paramref name="migrations"/> to the database of <paramref name="dataSource"/>.</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="migrations">Every migration, in version order.</param>
    /// <param name="cancellationToken">Cancels the run; the migration in flight is rolled back.</param>
    /// <returns>The report, or a one-line error naming the migration file and line.</returns>
    public static async Task<Outcome<MigrationReport>> ApplyAsync(
        NpgsqlDataSource dataSource, IReadOnlyList<Migration> migrations, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(migrations);

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await ExecuteAsync(connection, null, $"SELECT pg_advisory_lock({AdvisoryLockKey})", cancellationToken);
        try
        {
            await ExecuteAsync(connection, null, """
                CREATE TABLE IF NOT EXISTS schema_version (
                    version    integer     PRIMARY KEY,
                    name       text        NOT NULL,
                    checksum   text        NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, cancellationToken);

            var applied = new Dictionary<int, (string Name, string Checksum)>();
            await using (var read = new NpgsqlCommand("SELECT version, name, checksum FROM schema_version", connection))
            await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    applied[reader.GetInt32(0)] = (reader.GetString(1), reader.GetString(2));
                }
            }

            var done = new List<Migration>();
            foreach (var migration in migrations)
            {
                if (applied.TryGetValue(migration.Version, out var previous))
                {
                    if (previous.Checksum != migration.Checksum)
                    {
                        return Outcome<MigrationReport>.Failure(
                            $"migration {migration.Name} was changed after it was applied (recorded as {previous.Name}, checksum {previous.Checksum[..12]}, now {migration.Checksum[..12]}); add a new migration instead of editing an applied one");
                    }

                    continue;
                }

                var error = await ApplyOneAsync(connection, migration, cancellationToken);
                if (error is not null)
                {
                    return Outcome<MigrationReport>.Failure(error);
                }

                done.Add(migration);
                applied[migration.Version] = (migration.Name, migration.Checksum);
            }

            var version = applied.Count == 0 ? 0 : applied.Keys.Max();
            return Outcome<MigrationReport>.Success(new MigrationReport(done, version));
        }
        finally
        {
            // The connection goes back to the pool: a session lock must be released explicitly.
            if (connection.State == System.Data.ConnectionState.Open)
            {
                await ExecuteAsync(connection, null, $"SELECT pg_advisory_unlock({AdvisoryLockKey})", CancellationToken.None);
            }
        }
    }

    private static async Task<string?> ApplyOneAsync(NpgsqlConnection connection, Migration migration, CancellationToken cancellationToken)
    {
        var statements = SqlScript.Split(migration.Sql);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        foreach (var statement in statements)
        {
            try
            {
                await ExecuteAsync(connection, transaction, statement.Text, cancellationToken);
            }
            catch (PostgresException ex)
            {
                await transaction.RollbackAsync(CancellationToken.None);
                var line = statement.StartLine;
                if (ex.Position > 0)
                {
                    line += SqlScript.LineOf(statement.Text, ex.Position - 1) - 1;
                }

                return $"migration {migration.Name} line {line}: {ex.SqlState}: {ex.MessageText}; nothing of it was applied";
            }
        }

        await using (var record = new NpgsqlCommand(
            "INSERT INTO schema_version (version, name, checksum) VALUES ($1, $2, $3)", connection, transaction))
        {
            record.Parameters.Add(new NpgsqlParameter { Value = migration.Version });
            record.Parameters.Add(new NpgsqlParameter { Value = migration.Name });
            record.Parameters.Add(new NpgsqlParameter { Value = migration.Checksum });
            await record.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return null;
    }

    private static async Task ExecuteAsync(
        NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        command.CommandTimeout = 0;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
