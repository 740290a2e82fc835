using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSeekRL.Storage.Database;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Engine;

public sealed partial class ExportTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Export_100000Samples_StreamsInBoundedMemoryInIdOrder()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        Assert.True((await MigrationRunner.ApplyAsync(db.DataSource, Migration.Embedded(), Ct)).Succeeded);
        var store = new SampleStore(db.DataSource);
        var reasoning = string.Concat(Enumerable.Repeat("Add the tens, then the units, and carry. ", 45)); // ~1.9 KB
        const int Large = 100_000;
        const int Small = 5_000;
        await IngestAsync(store, campaign: 1, Large, reasoning);
        await IngestAsync(store, campaign: 2, Small, reasoning);

        var dir = Directory.CreateTempSubdirectory("deepseekrl-export-");
        try
        {
            var large = Path.Combine(dir.FullName, "large.jsonl");
            var small = Path.Combine(dir.FullName, "small.jsonl");
            var env = new Dictionary<string, string?> { ["DEEPSEEKRL_DB"] = db.ConnectionString };
            var largeRun = await CliProcess.RunAsync(["export", "--campaign", "1", "--out", large], env, Ct);
            var smallRun = await CliProcess.RunAsync(["export", "--campaign", "2", "--out", small], env, Ct);
            Assert.True(largeRun.ExitCode == 0, largeRun.StandardError);
            Assert.True(smallRun.ExitCode == 0, smallRun.StandardError);

            var largeBytes = new FileInfo(large).Length;
            var largeRss = PeakRss(largeRun.StandardOutput);
            var smallRss = PeakRss(smallRun.StandardOutput);
            TestContext.Current.SendDiagnosticMessage($"export of {Large} samples ({largeBytes / 1e6:0} MB): peak RSS {largeRss} MB; of {Small}: {smallRss} MB");
            Assert.True(largeBytes > 150_000_000, $"the export holds {largeBytes} bytes");
            // Memory does not grow with the export: 20x the samples costs less than 64 MB more, for ~200 MB of output.
            Assert.True(largeRss - smallRss < 64, $"peak RSS {largeRss} MB for {Large} samples vs {smallRss} MB for {Small}");

            long count = 0, previous = 0;
            foreach (var line in File.ReadLines(large))
            {
                using var doc = JsonDocument.Parse(line);
                var id = doc.RootElement.GetProperty("metadata").GetProperty("sample_id").GetInt64();
                Assert.True(id > previous, "samples are in id order");
                previous = id;
                count++;
            }

            Assert.Equal(Large, count);
            Assert.Contains($"exported {Large} samples of campaign 1", largeRun.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Export_Filters_SelectByRewardAndId()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        Assert.True((await MigrationRunner.ApplyAsync(db.DataSource, Migration.Embedded(), Ct)).Succeeded);
        var store = new SampleStore(db.DataSource);
        await store.IngestSftSamplesAsync(Enumerable.Range(0, 10).Select(i =>
            new SftSample(3, i, i, i, $"q{i}", $"r{i}", $"a{i}", i / 10.0, "{}", "{}")).ToList(), Ct);
        var dir = Directory.CreateTempSubdirectory("deepseekrl-export-");
        try
        {
            var output = Path.Combine(dir.FullName, "out.jsonl");
            var env = new Dictionary<string, string?> { ["DEEPSEEKRL_DB"] = db.ConnectionString };

            var run = await CliProcess.RunAsync(["export", "--campaign", "3", "--out", output, "--min-reward", "0.5"], env, Ct);
            Assert.Equal(0, run.ExitCode);
            var rewards = File.ReadLines(output).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("metadata").GetProperty("reward").GetDouble()).ToList();
            Assert.Equal([0.5, 0.6, 0.7, 0.8, 0.9], rewards);

            var firstLine = File.ReadLines(output).First();
            var assistant = JsonDocument.Parse(firstLine).RootElement.GetProperty("messages")[1];
            Assert.Equal("assistant", assistant.GetProperty("role").GetString());
            Assert.Equal("<think>\nr5\n</think>\n\na5", assistant.GetProperty("content").GetString());

            var badSince = await CliProcess.RunAsync(["export", "--campaign", "3", "--out", output, "--since", "yesterday"], env, Ct);
            Assert.Equal(1, badSince.ExitCode);
            Assert.StartsWith("deepseekrl: error: --since: 'yesterday' is not an ISO-8601 time", badSince.StandardError.Trim(), StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static async Task IngestAsync(SampleStore store, long campaign, int count, string reasoning)
    {
        for (var start = 0; start < count; start += 10_000)
        {
            var batch = new List<SftSample>();
            for (var i = start; i < Math.Min(count, start + 10_000); i++)
            {
                batch.Add(new SftSample(campaign, i / 100, i / 100, (campaign * 1_000_000) + i, $"What is {i} + 1?", reasoning,
                    $"\\boxed{{{(i + 1).ToString(CultureInfo.InvariantCulture)}}}", 1.0, """{"accuracy":1}""", """{"accuracy":true}"""));
            }

            Assert.Equal(batch.Count, await store.IngestSftSamplesAsync(batch, Ct));
        }
    }

    private static long PeakRss(string output)
    {
        var match = PeakRssPattern().Match(output);
        Assert.True(match.Success, "no peak RSS in: " + output);
        return long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"peak RSS (\d+) MB")]
    private static partial Regex PeakRssPattern();
}
