using DeepSeekRL.Storage.Database;
using DeepSeekRL.Testing;
using Npgsql;

namespace DeepSeekRL.Storage.Tests.Database;

public sealed class MigrationRunnerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static IReadOnlyList<Migration> Files(params (string Name, string Sql)[] files) => Migration.FromFiles(files).Value;

    [Fact]
    public async Task ApplyAsync_FreshDatabase_AppliesEveryShippedMigrationInOrder()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var shipped = Migration.Embedded();

        var report = await MigrationRunner.ApplyAsync(db.DataSource, shipped, Ct);

        Assert.True(report.Succeeded, report.Error);
        Assert.NotEmpty(shipped);
        Assert.Equal(shipped.Select(m => m.Name), report.Value.Applied.Select(m => m.Name));
        Assert.Equal(shipped[^1].Version, report.Value.SchemaVersion);
        Assert.Equal(shipped.Count, (int)await db.ScalarAsync<long>("SELECT count(*) FROM schema_version"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM cluster_info"));
    }

    [Fact]
    public async Task ApplyAsync_SecondRun_AppliesNothing()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        Assert.True((await MigrationRunner.ApplyAsync(db.DataSource, Migration.Embedded(), Ct)).Succeeded);
        var clusterId = await db.ScalarAsync<Guid>("SELECT cluster_id FROM cluster_info");

        var second = await MigrationRunner.ApplyAsync(db.DataSource, Migration.Embedded(), Ct);

        Assert.True(second.Succeeded, second.Error);
        Assert.Empty(second.Value.Applied);
        Assert.Equal(clusterId, await db.ScalarAsync<Guid>("SELECT cluster_id FROM cluster_info"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM cluster_info"));
    }

    [Fact]
    public async Task ApplyAsync_ConcurrentStarters_ApplyEachMigrationExactlyOnce()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        // Each migration appends to a log; a slow one widens the window in which starters overlap.
        var migrations = Files(
            ("0001_log.sql", "CREATE TABLE migration_log (name text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());\nINSERT INTO migration_log (name) VALUES ('0001');"),
            ("0002_slow.sql", "SELECT pg_sleep(0.3);\nINSERT INTO migration_log (name) VALUES ('0002');"),
            ("0003_more.sql", "CREATE TABLE other (id int);\nINSERT INTO migration_log (name) VALUES ('0003');"));
        const int Starters = 6;
        using var barrier = new Barrier(Starters);

        var runs = Enumerable.Range(0, Starters).Select(_ => Task.Run(async () =>
        {
            // A separate data source per starter: separate sessions, as separate processes would have.
            await using var own = NpgsqlDataSource.Create(db.ConnectionString);
            barrier.SignalAndWait(Ct);
            return await MigrationRunner.ApplyAsync(own, migrations, Ct);
        }, Ct)).ToArray();
        var reports = await Task.WhenAll(runs);

        Assert.All(reports, r => Assert.True(r.Succeeded, r.Error));
        Assert.Equal(3, reports.Sum(r => r.Value.Applied.Count));
        Assert.All(reports, r => Assert.Equal(3, r.Value.SchemaVersion));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM migration_log"));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(DISTINCT name) FROM migration_log"));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM schema_version"));
    }

    [Fact]
    public async Task ApplyAsync_BrokenMigration_NamesFileAndLineAndLeavesSchemaUnchanged()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var good = Files(("0001_base.sql", "CREATE TABLE base (id int PRIMARY KEY);\nINSERT INTO base VALUES (1);"));
        Assert.True((await MigrationRunner.ApplyAsync(db.DataSource, good, Ct)).Succeeded);
        var before = await SchemaSnapshotAsync(db);

        var broken = Files(
            ("0001_base.sql", "CREATE TABLE base (id int PRIMARY KEY);\nINSERT INTO base VALUES (1);"),
            ("0002_broken.sql", "-- adds a table, alters another, then fails\nCREATE TABLE added (x int);\nALTER TABLE base ADD COLUMN y int;\nINSERT INTO base VALUES (2, 2);\nSELECT 1\n  FROM base\n WHERE nonsense_column = 3;\n"));
        var report = await MigrationRunner.ApplyAsync(db.DataSource, broken, Ct);

        Assert.False(report.Succeeded);
        Assert.Contains("0002_broken.sql line 7", report.Error, StringComparison.Ordinal);
        Assert.Contains("nonsense_column", report.Error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', report.Error!);
        Assert.Equal(before, await SchemaSnapshotAsync(db));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM base"));
        Assert.Equal(1, await db.ScalarAsync<int>("SELECT max(version) FROM schema_version"));
    }

    [Fact]
    public async Task ApplyAsync_SyntaxErrorInLaterStatement_ReportsThatStatementsLine()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var broken = Files(("0001_typo.sql", "CREATE TABLE ok (id int);\n\nCREATE TABEL nope (id int);\n"));

        var report = await MigrationRunner.ApplyAsync(db.DataSource, broken, Ct);

        Assert.False(report.Succeeded);
        Assert.Contains("0001_typo.sql line 3", report.Error, StringComparison.Ordinal);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_tables WHERE tablename = 'ok'"));
    }

    [Fact]
    public async Task ApplyAsync_AppliedMigrationEditedAfterwards_IsRejected()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        Assert.True((await MigrationRunner.ApplyAsync(db.DataSource, Files(("0001_a.sql", "CREATE TABLE a (id int);")), Ct)).Succeeded);

        var report = await MigrationRunner.ApplyAsync(db.DataSource, Files(("0001_a.sql", "CREATE TABLE a (id bigint);")), Ct);

        Assert.False(report.Succeeded);
        Assert.Contains("0001_a.sql was changed after it was applied", report.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1_short.sql", "expected a name like 0001_description.sql")]
    [InlineData("0001-dash.sql", "expected a name like 0001_description.sql")]
    [InlineData("0000_zero.sql", "version 0000 is reserved")]
    public void FromFiles_BadName_NamesTheFile(string name, string expected)
    {
        var outcome = Migration.FromFiles([(name, "SELECT 1")]);
        Assert.False(outcome.Succeeded);
        Assert.Contains(name, outcome.Error, StringComparison.Ordinal);
        Assert.Contains(expected, outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void FromFiles_DuplicateVersion_NamesBothFiles()
    {
        var outcome = Migration.FromFiles([("0002_a.sql", "SELECT 1"), ("0002_b.sql", "SELECT 2")]);
        Assert.False(outcome.Succeeded);
        Assert.Contains("0002_a.sql", outcome.Error, StringComparison.Ordinal);
        Assert.Contains("0002_b.sql", outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Embedded_ShipsTheMigrationsOfInfraSql()
    {
        var onDisk = Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "infra", "sql"), "*.sql").Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(onDisk, Migration.Embedded().Select(m => m.Name));
    }

    private static async Task<string> SchemaSnapshotAsync(TestDatabase db)
    {
        await using var command = db.DataSource.CreateCommand("""
            SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, column_name)
              FROM information_schema.columns WHERE table_schema = 'public'
            """);
        return (string)(await command.ExecuteScalarAsync(Ct))!;
    }
}
