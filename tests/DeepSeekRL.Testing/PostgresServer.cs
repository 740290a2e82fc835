using DeepSeekRL.Storage.Database;
using Npgsql;

namespace DeepSeekRL.Testing;

/// <summary>
/// The real PostgreSQL server the tests run against: <c>DEEPSEEKRL_TEST_DB</c> if set (a superuser connection
/// string), else the repository's embedded cluster (started or reused). Each test gets its own database.
/// </summary>
public sealed class PostgresServer
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static PostgresServer? _shared;

    private PostgresServer(string adminConnectionString) => AdminConnectionString = adminConnectionString;

    /// <summary>A superuser connection string to the <c>postgres</c> database.</summary>
    public string AdminConnectionString { get; }

    /// <summary>The process-wide server, started on first use.</summary>
    public static async Task<PostgresServer> SharedAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_shared is not null)
            {
                return _shared;
            }

            var configured = Environment.GetEnvironmentVariable("DEEPSEEKRL_TEST_DB");
            string connectionString;
            if (!string.IsNullOrWhiteSpace(configured))
            {
                connectionString = configured;
            }
            else
            {
                var cluster = new EmbeddedPostgres(new EmbeddedPostgresOptions { DataDirectory = Path.Combine(RepositoryPaths.Root, ".data", "pg") });
                var started = await cluster.StartAsync(CancellationToken.None);
                connectionString = started.Succeeded ? started.Value : throw new InvalidOperationException(started.Error);
            }

            var builder = new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres", Pooling = false };
            _shared = new PostgresServer(builder.ConnectionString);
            return _shared;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Creates a fresh, empty database for one test; disposing the result drops it.</summary>
    /// <param name="cancellationToken">Cancels the creation.</param>
    /// <returns>The database.</returns>
    public async Task<TestDatabase> CreateDatabaseAsync(CancellationToken cancellationToken = default)
    {
        var name = "t_" + Guid.NewGuid().ToString("N")[..20];
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        var builder = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name, Pooling = true };
        return new TestDatabase(this, name, builder.ConnectionString);
    }

    internal async Task DropAsync(string name)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }
}

/// <summary>A database that exists for one test.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private readonly PostgresServer _server;

    internal TestDatabase(PostgresServer server, string name, string connectionString)
    {
        _server = server;
        Name = name;
        ConnectionString = connectionString;
        DataSource = NpgsqlDataSource.Create(connectionString);
    }

    /// <summary>The database name.</summary>
    public string Name { get; }

    /// <summary>A connection string to it (superuser).</summary>
    public string ConnectionString { get; }

    /// <summary>A data source for it.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>Runs a scalar query.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="sql">The SQL.</param>
    /// <returns>The value.</returns>
    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var command = DataSource.CreateCommand(sql);
        var value = await command.ExecuteScalarAsync();
        return (T)value!;
    }

    /// <summary>Runs a statement.</summary>
    /// <param name="sql">The SQL.</param>
    /// <returns>A task.</returns>
    public async Task ExecuteAsync(string sql)
    {
        await using var command = DataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await _server.DropAsync(Name);
    }
}
