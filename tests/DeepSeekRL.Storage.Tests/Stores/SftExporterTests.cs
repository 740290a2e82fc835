using System.Text;
using System.Text.Json;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Storage.Tests.Stores;

public sealed class SftExporterTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ExportAsync_Campaign_WritesOneChatLinePerSampleInIdOrder()
    {
        await using var db = await SeedAsync();

        var (lines, count, lastId) = await ExportAsync(db, new SftExportFilter(1));

        var ids = await db.DataSource.ColumnAsync<long>("SELECT id FROM sft_samples WHERE campaign_id = 1 ORDER BY id", Ct);
        Assert.Equal(5, count);
        Assert.Equal(ids[^1], lastId);
        Assert.Equal(ids, lines.Select(l => l.GetProperty("metadata").GetProperty("sample_id").GetInt64()));
        var first = lines[0];
        var messages = first.GetProperty("messages");
        Assert.Equal(2, messages.GetArrayLength());
        Assert.Equal("user", messages[0].GetProperty("role").GetString());
        Assert.Equal("Solve \"x\"\nnow: 0", messages[0].GetProperty("content").GetString());
        Assert.Equal("assistant", messages[1].GetProperty("role").GetString());
        Assert.Equal("<think>\nstep by step 0\n</think>\n\nanswer é 0", messages[1].GetProperty("content").GetString());
        var metadata = first.GetProperty("metadata");
        Assert.Equal(1, metadata.GetProperty("campaign_id").GetInt64());
        Assert.Equal(10, metadata.GetProperty("step").GetInt32());
        Assert.Equal(3, metadata.GetProperty("policy_version").GetInt32());
        Assert.Equal(1000, metadata.GetProperty("completion_id").GetInt64());
        Assert.Equal(0.0, metadata.GetProperty("reward").GetDouble());
        Assert.Equal(1.0, metadata.GetProperty("scores").GetProperty("format").GetDouble());
        Assert.Equal(JsonValueKind.Null, metadata.GetProperty("scores").GetProperty("accuracy").ValueKind);
        Assert.True(metadata.GetProperty("verdicts").GetProperty("kept").GetBoolean());
        Assert.Equal(
            await db.DataSource.ScalarAsync<DateTime>("SELECT created_at FROM sft_samples WHERE id = $1", Ct, ids[0]),
            metadata.GetProperty("created_at").GetDateTimeOffset().UtcDateTime);
        // The sample without completion and reward exports both as null.
        var last = lines[4].GetProperty("metadata");
        Assert.Equal(JsonValueKind.Null, last.GetProperty("completion_id").ValueKind);
        Assert.Equal(JsonValueKind.Null, last.GetProperty("reward").ValueKind);
    }

    [Fact]
    public async Task ExportAsync_MinReward_ExportsOnlySamplesAtOrAboveIt()
    {
        await using var db = await SeedAsync();

        var (lines, count, _) = await ExportAsync(db, new SftExportFilter(1, MinReward: 0.5));

        Assert.Equal(2, count);
        Assert.Equal([0.5, 0.75], lines.Select(l => l.GetProperty("metadata").GetProperty("reward").GetDouble()));
    }

    [Fact]
    public async Task ExportAsync_AfterId_ExportsOnlyLaterSamples()
    {
        await using var db = await SeedAsync();
        var ids = await db.DataSource.ColumnAsync<long>("SELECT id FROM sft_samples WHERE campaign_id = 1 ORDER BY id", Ct);

        var (lines, count, lastId) = await ExportAsync(db, new SftExportFilter(1, AfterId: ids[1]));
        var (_, none, noneLast) = await ExportAsync(db, new SftExportFilter(1, AfterId: lastId));

        Assert.Equal(3, count);
        Assert.Equal(ids.Skip(2), lines.Select(l => l.GetProperty("metadata").GetProperty("sample_id").GetInt64()));
        Assert.Equal(0, none);
        Assert.Equal(0, noneLast);
    }

    [Fact]
    public async Task ExportAsync_Since_ExportsOnlySamplesCreatedAtOrAfterIt()
    {
        await using var db = await SeedAsync();
        var ids = await db.DataSource.ColumnAsync<long>("SELECT id FROM sft_samples WHERE campaign_id = 1 ORDER BY id", Ct);
        await db.DataSource.ExecuteAsync("UPDATE sft_samples SET created_at = '2001-01-01T00:00:00Z' WHERE id = ANY($1)", Ct, ids.Take(2).ToArray());
        await db.DataSource.ExecuteAsync("UPDATE sft_samples SET created_at = '2010-01-01T00:00:00Z' WHERE id = $1", Ct, ids[2]);

        var (lines, count, _) = await ExportAsync(db, new SftExportFilter(1, Since: new DateTimeOffset(2010, 1, 1, 0, 0, 0, TimeSpan.Zero)));

        Assert.Equal(3, count);
        Assert.Equal(ids.Skip(2), lines.Select(l => l.GetProperty("metadata").GetProperty("sample_id").GetInt64()));
    }

    [Fact]
    public async Task ExportAsync_CampaignWithoutSamples_WritesNothing()
    {
        await using var db = await SeedAsync();
        using var output = new MemoryStream();

        var (count, lastId) = await SftExporter.ExportAsync(db.DataSource, new SftExportFilter(3), output, Ct);

        Assert.Equal(0, count);
        Assert.Equal(0, lastId);
        Assert.Equal(0, output.Length);
    }

    [Fact]
    public async Task ExportAsync_OtherCampaign_ExportsOnlyItsOwnRows()
    {
        await using var db = await SeedAsync();

        var (lines, count, _) = await ExportAsync(db, new SftExportFilter(2));

        Assert.Equal(1, count);
        Assert.Equal("other campaign", lines[0].GetProperty("messages")[0].GetProperty("content").GetString());
        Assert.Equal(2, lines[0].GetProperty("metadata").GetProperty("campaign_id").GetInt64());
    }

    private static async Task<TestDatabase> SeedAsync()
    {
        var db = await EngineDatabase.CreateAsync(Ct);
        var store = new SampleStore(db.DataSource);
        double?[] rewards = [0.0, 0.5, 0.25, 0.75, null];
        var samples = rewards.Select((r, i) => new SftSample(
            1, 10 + i, 3, i == 4 ? null : 1000 + i, "Solve \"x\"\nnow: " + i, "step by step " + i, "answer é " + i, r,
            """{"format": 1.0, "accuracy": null}""", """{"kept": true}""")).ToList();
        // The other campaign's row sits between ours in id order.
        await store.IngestSftSamplesAsync(samples.Take(2).ToList(), Ct);
        await store.IngestSftSamplesAsync([new SftSample(2, 1, 1, 2000, "other campaign", "r", "a", 1.0, "{}", "{}")], Ct);
        await store.IngestSftSamplesAsync(samples.Skip(2).ToList(), Ct);
        return db;
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData(0.5, null)]
    [InlineData(null, 2)]
    public async Task ExportParquetAsync_SameRowsAsTheJsonl_ScoresAndVerdictsAsStructColumns(double? minReward, int? afterIndex)
    {
        await using var db = await SeedAsync();
        var ids = await db.DataSource.ColumnAsync<long>("SELECT id FROM sft_samples WHERE campaign_id = 1 ORDER BY id", Ct);
        var filter = new SftExportFilter(1, MinReward: minReward, AfterId: afterIndex is { } a ? ids[a] : null);
        var (lines, count, lastId) = await ExportAsync(db, filter);
        var path = Path.Combine(Path.GetTempPath(), $"deepseekrl-export-{Guid.NewGuid():N}.parquet");
        try
        {
            await using (var file = File.Create(path))
            {
                Assert.Equal((count, lastId), await SftExporter.ExportParquetAsync(db.DataSource, filter, file, Ct));
            }

            var opened = await Parquet.ParquetRows.OpenAsync(path, Ct);
            Assert.True(opened.Succeeded, opened.Error);
            await using var parquet = opened.Value;
            var rows = new List<JsonElement>();
            await foreach (var row in parquet.ReadAsync(Ct))
            {
                rows.Add(JsonDocument.Parse(row.Json).RootElement);
            }

            Assert.Equal(lines.Count, rows.Count);
            for (var i = 0; i < rows.Count; i++)
            {
                var metadata = lines[i].GetProperty("metadata");
                Assert.Equal(Messages(lines[i]), Messages(rows[i]));
                foreach (var column in new[] { "sample_id", "campaign_id", "step", "policy_version", "completion_id", "reward" })
                {
                    Assert.Equal(metadata.GetProperty(column).GetRawText(), rows[i].GetProperty(column).GetRawText());
                }

                Assert.Equal(metadata.GetProperty("created_at").GetDateTimeOffset().UtcDateTime, rows[i].GetProperty("created_at").GetDateTime().ToUniversalTime());
            }

            static List<(string?, string?)> Messages(JsonElement row) =>
                row.GetProperty("messages").EnumerateArray().Select(m => (m.GetProperty("role").GetString(), m.GetProperty("content").GetString())).ToList();

            // Nested columns are not flattened by the reader; DuckDB reads them in the Silo's export test.
            Assert.Equal(count == 0 ? [] : ["scores", "verdicts"], parquet.SkippedColumns);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task ExportParquetAsync_SeveralRowGroups_EveryRowOnceInIdOrder()
    {
        // 2.5 row groups: one group is written while the next is read, and the last, partial one after the loop.
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var rows = (2 * SftExporter.ParquetRowGroupRows) + (SftExporter.ParquetRowGroupRows / 2);
        await new SampleStore(db.DataSource).IngestSftSamplesAsync(
            [.. Enumerable.Range(0, rows).Select(i => new SftSample(1, i, i, i, "p" + i, "r" + i, "a" + i, i, $$"""{"accuracy": {{i}}}""", "{}"))], Ct);
        var path = Path.Combine(Path.GetTempPath(), $"deepseekrl-export-{Guid.NewGuid():N}.parquet");
        try
        {
            await using (var file = File.Create(path))
            {
                Assert.Equal(rows, (await SftExporter.ExportParquetAsync(db.DataSource, new SftExportFilter(1), file, Ct)).Count);
            }

            await using (var file = File.OpenRead(path))
            {
                await using var reader = await global::Parquet.ParquetReader.CreateAsync(file, cancellationToken: Ct);
                Assert.Equal(3, reader.RowGroupCount);
            }

            var opened = await Parquet.ParquetRows.OpenAsync(path, Ct);
            Assert.True(opened.Succeeded, opened.Error);
            await using var parquet = opened.Value;
            var steps = new List<int>();
            await foreach (var row in parquet.ReadAsync(Ct))
            {
                using var json = JsonDocument.Parse(row.Json);
                steps.Add(json.RootElement.GetProperty("step").GetInt32());
                Assert.Equal("p" + steps[^1], json.RootElement.GetProperty("messages")[0].GetProperty("content").GetString());
            }

            Assert.Equal(Enumerable.Range(0, rows), steps);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static async Task<(List<JsonElement> Lines, long Count, long LastId)> ExportAsync(TestDatabase db, SftExportFilter filter)
    {
        using var output = new MemoryStream();
        var (count, lastId) = await SftExporter.ExportAsync(db.DataSource, filter, output, Ct);
        var text = Encoding.UTF8.GetString(output.ToArray());
        Assert.True(text.Length == 0 || text.EndsWith('\n'), "JSONL ends with a newline");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.Clone())
            .ToList();
        Assert.Equal(count, lines.Count);
        Assert.Equal(text.Count(c => c == '\n'), lines.Count);
        return (lines, count, lastId);
    }
}
