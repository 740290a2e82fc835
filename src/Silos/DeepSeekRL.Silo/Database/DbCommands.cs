using System.CommandLine;
using System.Globalization;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Storage.Database;
using Npgsql;

namespace DeepSeekRL.Silo.Database;

/// <summary><c>deepseekrl db start|stop|status|url|migrate</c>: the database DeepSeekRL runs on.</summary>
public static class DbCommands
{
    /// <summary>Creates the <c>db</c> command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var db = new Command("db", "The PostgreSQL database: the embedded cluster under .data/pg, or the server of --db / $DEEPSEEKRL_DB.");

        var start = new Command("start", "Start (or reuse) the embedded cluster and apply pending migrations; with --db or $DEEPSEEKRL_DB, check and migrate that server.");
        start.SetHandler(StartAsync);
        db.Subcommands.Add(start);

        var stop = new Command("stop", "Stop the embedded cluster (fast shutdown).");
        stop.SetHandler(StopAsync);
        db.Subcommands.Add(stop);

        var status = new Command("status", "Show whether the database runs, where, and its schema version. Exit code 3 when the embedded cluster is stopped.");
        status.SetHandler(StatusAsync);
        db.Subcommands.Add(status);

        var url = new Command("url", "Print the database's postgresql:// URI (starting the embedded cluster if needed), usable by psql and as DEEPSEEKRL_DB.");
        url.SetHandler(UrlAsync);
        db.Subcommands.Add(url);

        var migrate = new Command("migrate", "Apply pending schema migrations (infra/sql) and list what was applied.");
        migrate.SetHandler(MigrateAsync);
        db.Subcommands.Add(migrate);
        return db;
    }

    private static async Task<int> StartAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var target = SiloCommandLine.ResolveTarget(parseResult);
        var cluster = SiloEnvironment.EmbeddedCluster();
        await using var connected = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
        if (target.Source == DatabaseSource.Embedded)
        {
            NoteLocation(cluster);
            var status = cluster.GetStatus();
            Console.WriteLine($"PostgreSQL running at 127.0.0.1:{status.Port} (pid {status.Pid}, data {status.DataDirectory})");
        }
        else
        {
            Console.WriteLine($"PostgreSQL at {connected.Target.Endpoint} answers (configured by {Describe(target.Source)}); nothing to start");
        }

        PrintMigrations(connected.Migrations);
        return 0;
    }

    private static async Task<int> StopAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var target = SiloCommandLine.ResolveTarget(parseResult);
        if (target.Source != DatabaseSource.Embedded)
        {
            throw new CliException($"db stop manages only the embedded cluster, but {Describe(target.Source)} points at {target.Endpoint}");
        }

        var cluster = SiloEnvironment.EmbeddedCluster();
        NoteLocation(cluster);
        var stopped = (await cluster.StopAsync(cancellationToken)).OrExit();
        Console.WriteLine(stopped ? $"PostgreSQL stopped (data {cluster.DataDirectory})" : $"PostgreSQL was not running (data {cluster.DataDirectory})");
        return 0;
    }

    private static async Task<int> StatusAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var target = SiloCommandLine.ResolveTarget(parseResult);
        if (target.Source == DatabaseSource.Embedded)
        {
            var cluster = SiloEnvironment.EmbeddedCluster();
            NoteLocation(cluster);
            var status = cluster.GetStatus();
            if (!status.Running)
            {
                var why = !status.Initialized ? "not initialised yet (db start creates it)"
                    : status.StalePidFile ? "stopped after a crash (db start recovers it)"
                    : "stopped";
                Console.WriteLine($"embedded PostgreSQL: {why}; data {status.DataDirectory}");
                return 3;
            }

            Console.WriteLine($"embedded PostgreSQL: running at 127.0.0.1:{status.Port} (pid {status.Pid}); data {status.DataDirectory}");
            target = target with { ConnectionString = cluster.TryGetConnectionString() };
        }

        await using var dataSource = NpgsqlDataSource.Create(target.ConnectionString!);
        var error = await DatabaseConnector.ProbeAsync(dataSource, target, cancellationToken);
        if (error is not null)
        {
            throw new CliException(error);
        }

        var (version, schemaVersion) = await DatabaseConnector.DescribeAsync(dataSource, cancellationToken);
        var schema = schemaVersion is { } v ? v.ToString(CultureInfo.InvariantCulture) : "none (not migrated yet)";
        Console.WriteLine($"server {target.Endpoint}: PostgreSQL {version}; schema version {schema}");
        return 0;
    }

    private static async Task<int> UrlAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var target = SiloCommandLine.ResolveTarget(parseResult);
        if (target.Source == DatabaseSource.Embedded)
        {
            var cluster = SiloEnvironment.EmbeddedCluster();
            NoteLocation(cluster);
            var connectionString = (await cluster.StartAsync(cancellationToken)).OrExit();
            Console.WriteLine(DatabaseTarget.ToUri(connectionString));
        }
        else
        {
            Console.WriteLine(DatabaseTarget.ToUri(target.ConnectionString!));
        }

        return 0;
    }

    private static async Task<int> MigrateAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        await using var connected = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
        PrintMigrations(connected.Migrations);
        return 0;
    }

    private static void PrintMigrations(MigrationReport report)
    {
        foreach (var migration in report.Applied)
        {
            Console.WriteLine($"applied migration {migration.Name}");
        }

        Console.WriteLine($"schema version {report.SchemaVersion}" + (report.Applied.Count == 0 ? " (up to date)" : string.Empty));
    }

    private static void NoteLocation(EmbeddedPostgres cluster)
    {
        if (cluster.LocationNote is not null)
        {
            Console.Error.WriteLine("deepseekrl: note: " + cluster.LocationNote);
        }
    }

    private static string Describe(DatabaseSource source) => source switch
    {
        DatabaseSource.CommandLine => "--db",
        DatabaseSource.Environment => "$" + DatabaseTarget.EnvironmentVariable,
        _ => "the embedded cluster",
    };
}
