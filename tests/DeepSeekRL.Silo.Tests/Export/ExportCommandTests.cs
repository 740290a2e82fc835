using System.Diagnostics;
using DeepSeekRL.Storage.Database;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Export;

/// <summary>
/// Issue 19 D4, D5 and the export's bad input: <c>export --out</c> onto paths it cannot write is one line naming the
/// path and the cause; onto a special file it writes through (FIFO, character device) or through a symbolic link to
/// its target, and never turns it into a regular file; a campaign that does not exist and non-finite filters are errors.
/// </summary>
public sealed class ExportCommandTests : IDisposable
{
    private const long Campaign = 5;
    private const int Samples = 3;
    private readonly string _dir = Directory.CreateTempSubdirectory("deepseekrl-export-cli-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Export_D4_UnwritableDirectory_OneLineNamingThePathAndPermissionDenied()
    {
        await using var db = await SamplesAsync();
        var locked = Directory.CreateDirectory(Path.Combine(_dir, "locked")).FullName;
        File.SetUnixFileMode(_dir, (UnixFileMode)0b111_101_101); // others may enter the test directory (created 0700)
        File.SetUnixFileMode(locked, (UnixFileMode)0b101_101_101); // and may not write locked (as a non-root user)
        var output = Path.Combine(locked, "x.jsonl");

        Assert.SkipWhen(Unprivileged.UnreachableReason is not null, Unprivileged.UnreachableReason ?? string.Empty);
        var run = await Unprivileged.RunCliAsync(["export", "--campaign", $"{Campaign}", "--out", output, "--db", db.ConnectionString], null, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal($"deepseekrl: error: --out: cannot write {output}: permission denied", run.StandardError.Trim());
        Assert.Empty(Directory.GetFileSystemEntries(locked));
    }

    [Fact]
    public async Task Export_D4_ProcFile_OneLineNamingThePathAndTheCause()
    {
        await using var db = await SamplesAsync();

        var run = await CliProcess.RunAsync(["export", "--campaign", $"{Campaign}", "--out", "/proc/x.jsonl", "--db", db.ConnectionString], null, Ct);

        Assert.Equal(1, run.ExitCode);
        var line = Assert.Single(CliProcess.Lines(run.StandardError));
        Assert.StartsWith("deepseekrl: error: --out: cannot write /proc/x.jsonl: ", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_D4_ExistingDirectory_OneLineSayingItIsADirectory()
    {
        await using var db = await SamplesAsync();

        var run = await CliProcess.RunAsync(["export", "--campaign", $"{Campaign}", "--out", _dir, "--db", db.ConnectionString], null, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal($"deepseekrl: error: --out: {_dir} is a directory; expected a file name", run.StandardError.Trim());
        Assert.True(Directory.Exists(_dir));
    }

    [Fact]
    public async Task Export_D4_300CharacterName_OneLineSayingTheNameIsTooLong()
    {
        await using var db = await SamplesAsync();
        var output = Path.Combine(_dir, new string('a', 294) + ".jsonl");

        var run = await CliProcess.RunAsync(["export", "--campaign", $"{Campaign}", "--out", output, "--db", db.ConnectionString], null, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal($"deepseekrl: error: --out: cannot write {output}: the file name is too long (300 bytes; at most 255)", run.StandardError.Trim());
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public async Task Export_D5_OntoFifo_WritesThroughWithoutReplacing()
    {
        await using var db = await SamplesAsync();
        var fifo = Path.Combine(_dir, "pipe");
        Assert.Equal(0, (await RunAsync("mkfifo", fifo)).ExitCode);
        // The reader opens the FIFO on its own thread: opening blocks until the exporter opens it for writing.
        var reader = Task.Run(() => File.ReadAllLinesAsync(fifo, Ct), Ct);

        var run = await CliProcess.RunAsync(["export", "--campaign", $"{Campaign}", "--out", fifo, "--db", db.ConnectionString], null, Ct);

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.Equal(Samples, (await reader).Length);
        Assert.Equal("fifo", await FileTypeAsync(fifo));
        Assert.Equal(["pipe"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Export_D5_OntoSymlink_UpdatesTheTargetAndKeepsTheLink()
    {
        await using var db = await SamplesAsync();
        var target = Path.Combine(_dir, "target.jsonl");
        await File.WriteAllTextAsync(target, "old\n", Ct);
        var link = Path.Combine(_dir, "link.jsonl");
        File.CreateSymbolicLink(link, target);

        var run = await CliProcess.RunAsync(["export", "--campaign", $"{Campaign}", "--out", link, "--db", db.ConnectionString], null, Ct);

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.Equal(target, new FileInfo(link).LinkTarget);
        Assert.Equal(Samples, (await File.ReadAllLinesAsync(target, Ct)).Length);
        Assert.Equal("regular file", await FileTypeAsync(target));
        Assert.Equal(["link.jsonl", "target.jsonl"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Export_D5_OntoNullDevice_WritesThroughAndStaysACharacterDevice()
    {
        await using var db = await SamplesAsync();
        var device = await DeviceAsync("null", 3);

        var run = await CliProcess.RunAsync(["export", "--campaign", $"{Campaign}", "--out", device, "--db", db.ConnectionString], null, Ct);

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.Contains($"exported {Samples} samples", run.StandardOutput, StringComparison.Ordinal);
        Assert.Equal("character special file", await FileTypeAsync(device));
    }

    [Fact]
    public async Task Export_D5_OntoFullDevice_OneLineNoSpaceLeftAndStaysACharacterDevice()
    {
        await using var db = await SamplesAsync();
        var device = await DeviceAsync("full", 7);

        var run = await CliProcess.RunAsync(["export", "--campaign", $"{Campaign}", "--out", device, "--db", db.ConnectionString], null, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal($"deepseekrl: error: --out: cannot write {device}: no space left on device", run.StandardError.Trim());
        Assert.Equal("character special file", await FileTypeAsync(device));
    }

    [Fact]
    public async Task Export_NoSuchCampaign_OneLineSayingItDoesNotExist()
    {
        await using var db = await SamplesAsync();
        var output = Path.Combine(_dir, "x.jsonl");

        var run = await CliProcess.RunAsync(["export", "--campaign", "999", "--out", output, "--db", db.ConnectionString], null, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal("deepseekrl: error: campaign 999 does not exist", run.StandardError.Trim());
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("inf")]
    [InlineData("-Infinity")]
    [InlineData("1e999")]
    public async Task Export_MinRewardNotFinite_OneLineNamingTheOption(string value)
    {
        var run = await CliProcess.RunAsync(["export", "--campaign", "1", "--out", Path.Combine(_dir, "x.jsonl"), "--min-reward", value, "--db", "Host=unused.invalid"], null, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal($"deepseekrl: error: --min-reward: '{value}' is not a finite number (expected e.g. 0.5)", run.StandardError.Trim());
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("12:00")]
    [InlineData("7")]
    [InlineData("2026-13-45")]
    public async Task Export_SinceGarbage_OneLineNamingTheOption(string value)
    {
        var run = await CliProcess.RunAsync(["export", "--campaign", "1", "--out", Path.Combine(_dir, "x.jsonl"), "--since", value, "--db", "Host=unused.invalid"], null, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal($"deepseekrl: error: --since: '{value}' is not an ISO-8601 time (expected e.g. 2026-11-23T08:00:00Z)", run.StandardError.Trim());
    }

    [Fact]
    public async Task Export_ParquetName_DuckDbReadsMessagesAsStructsAndTheDatabasesRewardSum()
    {
        await using var db = await (await PostgresServer.SharedAsync()).CreateDatabaseAsync(Ct);
        Assert.True((await MigrationRunner.ApplyAsync(db.DataSource, Migration.Embedded(), Ct)).Succeeded);
        await new SampleStore(db.DataSource).IngestSftSamplesAsync(Enumerable.Range(0, 25).Select(i =>
            new SftSample(Campaign, i, i, i % 3 == 0 ? null : i, $"q{i}", $"r{i}", $"a{i}", i % 4 == 0 ? null : i * 0.25,
                i % 2 == 0 ? """{"accuracy":1,"format_r1":0.5}""" : """{"accuracy":0}""", """{"accuracy":true}""")).ToList(), Ct);
        var output = Path.Combine(_dir, "x.parquet");

        var run = await CliProcess.RunAsync(["export", "--campaign", $"{Campaign}", "--out", output, "--db", db.ConnectionString], null, Ct);

        Assert.True(run.ExitCode == 0, run.StandardError);
        await using var sum = db.DataSource.CreateCommand($"SELECT sum(reward) FROM sft_samples WHERE campaign_id = {Campaign}");
        var expected = (double)(await sum.ExecuteScalarAsync(Ct))!;
        var rows = await DuckDbAsync($"""
            SELECT count(*) AS n, sum(reward) AS reward, typeof(any_value(messages)) AS type,
                   min(messages[1].role) AS first_role, min(messages[2].role) AS second_role,
                   max(CASE WHEN sample_id = 1 THEN messages[2].content END) AS assistant,
                   sum(scores.accuracy) AS accuracy, count(scores.format_r1) AS format_r1, count(completion_id) AS completions
              FROM '{output}'
            """);
        var row = Assert.Single(rows.RootElement.EnumerateArray());
        Assert.Equal("25", row.GetProperty("n").ToString());
        Assert.Equal(expected, row.GetProperty("reward").GetDouble(), 9);
        Assert.Equal("STRUCT(\"role\" VARCHAR, \"content\" VARCHAR)[]", row.GetProperty("type").GetString());
        Assert.Equal("user", row.GetProperty("first_role").GetString());
        Assert.Equal("assistant", row.GetProperty("second_role").GetString());
        Assert.Equal("<think>\nr0\n</think>\n\na0", row.GetProperty("assistant").GetString());
        Assert.Equal(13, row.GetProperty("accuracy").GetDouble());
        Assert.Equal("13", row.GetProperty("format_r1").ToString());
        Assert.Equal("16", row.GetProperty("completions").ToString());
    }

    [Fact]
    public async Task Export_BadFormat_OneLineNamingTheOptionAndTheFormats()
    {
        var run = await CliProcess.RunAsync(["export", "--campaign", "1", "--out", Path.Combine(_dir, "x.csv"), "--format", "csv"], null, Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal("deepseekrl: error: --format: 'csv' is not a format (expected jsonl or parquet)", run.StandardError.Trim());
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    private static async Task<System.Text.Json.JsonDocument> DuckDbAsync(string sql)
    {
        var modules = Path.Combine(RepositoryPaths.Root, ".cache", "npm-parquet", "node_modules");
        Assert.True(Directory.Exists(modules), $"{modules} is missing: run infra/setup.sh (it fetches DuckDB from npm)");
        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(RepositoryPaths.Root, "infra", "parquet", "query.js"));
        info.ArgumentList.Add(sql);
        var run = await CliProcess.RunAsync(info, new Dictionary<string, string?> { ["NODE_PATH"] = modules }, Ct);
        Assert.True(run.ExitCode == 0, run.StandardError);
        return System.Text.Json.JsonDocument.Parse(run.StandardOutput);
    }

    private async Task<TestDatabase> SamplesAsync()
    {
        var db = await (await PostgresServer.SharedAsync()).CreateDatabaseAsync(Ct);
        Assert.True((await MigrationRunner.ApplyAsync(db.DataSource, Migration.Embedded(), Ct)).Succeeded);
        await new SampleStore(db.DataSource).IngestSftSamplesAsync(Enumerable.Range(0, Samples).Select(i =>
            new SftSample(Campaign, i, i, i, $"q{i}", $"r{i}", $"a{i}", 1, "{}", "{}")).ToList(), Ct);
        return db;
    }

    // A device node of our own (same major/minor as /dev/null or /dev/full) in the test directory: a regression that
    // replaced it would not touch the machine's. Needs CAP_MKNOD (root).
    private async Task<string> DeviceAsync(string name, int minor)
    {
        Assert.SkipUnless(Unprivileged.IsRoot, "mknod needs root");
        var path = Path.Combine(_dir, name);
        var made = await RunAsync("mknod", path, "c", "1", $"{minor}");
        Assert.SkipWhen(made.ExitCode != 0, "mknod is not permitted here: " + made.StandardError.Trim());
        return path;
    }

    private static async Task<string> FileTypeAsync(string path) => (await RunAsync("stat", "-c", "%F", path)).StandardOutput.Trim();

    private static async Task<CliResult> RunAsync(string program, params string[] arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        return new CliResult(process.ExitCode, await stdout, await stderr, stopwatch.Elapsed);
    }
}
