using DeepSeekRL.Storage.Database;
using DeepSeekRL.Silo.CommandLine;
using Npgsql;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>A throw-away database for a benchmark run on the configured server, migrated, dropped at the end.</summary>
public sealed class BenchDatabase : IAsyncDisposable
{
    private readonly string _adminConnectionString;

    private BenchDatabase(string adminConnectionString, string name, string connectionString)
    {
        _adminConnectionString = adminConnectionString;
        Name = name;
        ConnectionString = connectionString;
        DataSource = NpgsqlDataSource.Create(connectionString);
    }

    /// <summary>The database name.</summary>
    public string Name { get; }

    /// <summary>Its connection string.</summary>
    public string ConnectionString { get; }

    /// <summary>A (durable) data source.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>Creates and migrates the database on the server chosen by <c>--db</c>, <c>DEEPSEEKRL_DB</c> or the embedded cluster.</summary>
    /// <param name="parseResult">The parse result.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The database.</returns>
    public static async Task<BenchDatabase> CreateAsync(System.CommandLine.ParseResult parseResult, CancellationToken cancellationToken)
    {
        await using var main = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
        var name = "deepseekrl_bench_" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            await using var create = main.DataSource.CreateCommand($"CREATE DATABASE {name}");
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException ex)
        {
            throw new CliException($"benchmarks need a scratch database on {main.Target.Endpoint}, but CREATE DATABASE failed: {ex.MessageText}");
        }

        var connectionString = new NpgsqlConnectionStringBuilder(main.Target.ConnectionString) { Database = name, MaxPoolSize = 200 }.ConnectionString;
        var bench = new BenchDatabase(main.Target.ConnectionString!, name, connectionString);
        (await MigrationRunner.ApplyAsync(bench.DataSource, Migration.Embedded(), cancellationToken)).OrExit();
        return bench;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using var admin = NpgsqlDataSource.Create(_adminConnectionString);
        await using var drop = admin.CreateCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)");
        await drop.ExecuteNonQueryAsync();
    }
}
