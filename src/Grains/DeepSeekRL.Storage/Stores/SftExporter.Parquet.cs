using System.Data;
using System.Globalization;
using System.Text;
using Npgsql;
using NpgsqlTypes;
using Parquet;
using Parquet.Schema;

namespace DeepSeekRL.Storage.Stores;

// The Parquet form of the export: the same rows and filters as the JSONL one, one row group per 10,000 samples (or
// per ~64 MB of text, whichever comes first), so memory is bounded by one row group whatever the campaign's size.
public static partial class SftExporter
{
    /// <summary>Samples per Parquet row group (fewer when <see cref="ParquetRowGroupChars"/> is reached first).</summary>
    internal const int ParquetRowGroupRows = 10_000;

    /// <summary>Characters of message text per row group before it is written out (about 64 MB of UTF-16).</summary>
    internal const long ParquetRowGroupChars = 32L << 20;

    /// <summary>
    /// Writes the samples matching <paramref name="filter"/> to <paramref name="output"/> as Parquet: <c>messages</c>
    /// (a list of <c>{role, content}</c> structs, the chat layout SFT trainers read), <c>sample_id</c>,
    /// <c>campaign_id</c>, <c>step</c>, <c>policy_version</c>, <c>completion_id</c> (nullable), <c>reward</c>
    /// (nullable double; non-finite is null), <c>created_at</c> (UTC timestamp, microseconds), and when any sample has
    /// them, <c>scores</c> (a struct of nullable doubles, one field per rule name found in the exported rows) and
    /// <c>verdicts</c> (a struct of nullable booleans). Structs, not maps: Hugging Face <c>datasets</c> rejects maps.
    /// Snappy-compressed; the stream need not be seekable.
    /// </summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="filter">The filter.</param>
    /// <param name="output">The destination stream (not closed); written front to back, never seeked.</param>
    /// <param name="cancellationToken">Cancels the export.</param>
    /// <returns>The number of samples written and the largest id written (0 when none).</returns>
    public static Task<(long Count, long LastId)> ExportParquetAsync(
        NpgsqlDataSource dataSource, SftExportFilter filter, Stream output, CancellationToken cancellationToken) =>
        ExportParquetAsync(dataSource, filter, output, CompressionMethod.Snappy, cancellationToken);

    /// <summary>As <see cref="ExportParquetAsync(NpgsqlDataSource, SftExportFilter, Stream, CancellationToken)"/> with a
    /// chosen codec (zstd at <see cref="System.IO.Compression.CompressionLevel.Fastest"/>; the benchmark compares).</summary>
    internal static async Task<(long Count, long LastId)> ExportParquetAsync(
        NpgsqlDataSource dataSource, SftExportFilter filter, Stream output, CompressionMethod compression, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(output);
        long upTo;
        await using (var max = dataSource.CreateCommand("SELECT coalesce(max(id), 0) FROM sft_samples WHERE campaign_id = $1"))
        {
            max.Parameters.Add(new NpgsqlParameter { Value = filter.CampaignId });
            upTo = (long)(await max.ExecuteScalarAsync(cancellationToken))!;
        }

        // The struct columns' fields must be fixed before the first row group: the rule names of the rows exported.
        var ruleNames = await DistinctKeysAsync(dataSource, "scores", filter, upTo, cancellationToken);
        var verdictNames = await DistinctKeysAsync(dataSource, "verdicts", filter, upTo, cancellationToken);
        var columns = new SftParquetColumns(ruleNames, verdictNames);
        // Two row groups in turn: one is written (encoded and compressed) while the next is read, so the database
        // and the writer each keep one of the two cores busy. Memory: two row groups at the most.
        SftParquetBatch[] batches = [new(columns), new(columns)];
        var batch = batches[0];
        var writing = Task.CompletedTask;
        long count = 0, lastId = 0;
        var options = new ParquetOptions
        {
            CompressionMethod = compression,
            CompressionLevel = System.IO.Compression.CompressionLevel.Fastest,

            // Message text is nearly all unique: trying a dictionary on it costs about a quarter of the write time.
            DictionaryEncodingThreshold = 0,
        };
        await using (var writer = await ParquetWriter.CreateAsync(columns.Schema, output, options, cancellationToken: cancellationToken))
        {
            var after = filter.AfterId ?? 0;
            const int PageSize = 2000;
            int page;
            var sql = PageSql(ruleNames.Count, verdictNames.Count);
            try
            {
                do
                {
                    page = 0;
                    await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
                    await using var command = new NpgsqlCommand(sql, connection);
                    AddFilterParameters(command, filter, after, upTo);
                    foreach (var name in ruleNames.Concat(verdictNames))
                    {
                        command.Parameters.Add(new NpgsqlParameter { Value = name, NpgsqlDbType = NpgsqlDbType.Text });
                    }

                    await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken);
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        page++;
                        after = batch.Add(reader, filter.CampaignId);
                        count++;
                        lastId = after;
                        if (batch.Full)
                        {
                            await writing;
                            var full = batch;
                            writing = Task.Run(() => full.WriteAsync(writer, cancellationToken), cancellationToken);
                            batch = batch == batches[0] ? batches[1] : batches[0];
                        }
                    }
                }
                while (page == PageSize);

                await writing;
            }
            finally
            {
                // A failed read still waits for the row group being written before the writer is disposed.
                await Task.WhenAny(writing);
            }

            // An empty export is still a valid file with the schema (and no row group).
            if (batch.Count > 0)
            {
                await batch.WriteAsync(writer, cancellationToken);
            }
        }

        return (count, lastId);
    }

    private static async Task<List<string>> DistinctKeysAsync(
        NpgsqlDataSource dataSource, string column, SftExportFilter filter, long upTo, CancellationToken cancellationToken)
    {
        // column is one of two constants, never input.
        await using var command = dataSource.CreateCommand($$"""
            SELECT DISTINCT k
              FROM sft_samples, LATERAL jsonb_object_keys(CASE WHEN jsonb_typeof({{column}}) = 'object' THEN {{column}} ELSE '{}'::jsonb END) AS k
             {{FilterWhere}}
             ORDER BY k
            """);
        AddFilterParameters(command, filter, filter.AfterId ?? 0, upTo);
        var keys = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            keys.Add(reader.GetString(0));
        }

        return keys;
    }

    /// <summary>The page query: the JSONL columns, then one extracted value per rule name and per verdict name, each
    /// named by a parameter ($6...), null when absent or not of the expected JSON type.</summary>
    private static string PageSql(int rules, int verdicts)
    {
        var extra = new StringBuilder();
        for (var i = 0; i < rules; i++)
        {
            var p = 6 + i;
            extra.Append(CultureInfo.InvariantCulture, $", CASE WHEN jsonb_typeof(scores -> ${p}) = 'number' THEN (scores ->> ${p})::float8 END");
        }

        for (var i = 0; i < verdicts; i++)
        {
            var p = 6 + rules + i;
            extra.Append(CultureInfo.InvariantCulture, $", CASE WHEN jsonb_typeof(verdicts -> ${p}) = 'boolean' THEN (verdicts ->> ${p})::bool END");
        }

        return $"""
            SELECT id, step, policy_version, completion_id, prompt, reasoning, answer, reward, created_at{extra}
              FROM sft_samples
             {FilterWhere}
             ORDER BY id
             LIMIT 2000
            """;
    }
}

/// <summary>The export's Parquet schema for one campaign's rule and verdict names.</summary>
internal sealed class SftParquetColumns
{
    public SftParquetColumns(IReadOnlyList<string> ruleNames, IReadOnlyList<string> verdictNames)
    {
        Scores = ruleNames.Select(n => new DataField<double?>(n)).ToArray();
        Verdicts = verdictNames.Select(n => new DataField<bool?>(n)).ToArray();
        var fields = new List<Field>
        {
            new ListField("messages", new StructField("element", Role, Content)),
            SampleId, CampaignId, Step, PolicyVersion, CompletionId, Reward, CreatedAt,
        };
        if (Scores.Length > 0)
        {
            fields.Add(new StructField("scores", Scores));
        }

        if (Verdicts.Length > 0)
        {
            fields.Add(new StructField("verdicts", Verdicts));
        }

        Schema = new ParquetSchema(fields);
    }

    public DataField<string> Role { get; } = new("role");

    public DataField<string> Content { get; } = new("content");

    public DataField<long> SampleId { get; } = new("sample_id");

    public DataField<long> CampaignId { get; } = new("campaign_id");

    public DataField<int> Step { get; } = new("step");

    public DataField<int> PolicyVersion { get; } = new("policy_version");

    public DataField<long?> CompletionId { get; } = new("completion_id");

    public DataField<double?> Reward { get; } = new("reward");

    public DateTimeDataField CreatedAt { get; } = new("created_at", DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Micros);

    public DataField<double?>[] Scores { get; }

    public DataField<bool?>[] Verdicts { get; }

    public ParquetSchema Schema { get; }
}

/// <summary>One row group's columns, reused from group to group.</summary>
internal sealed class SftParquetBatch(SftParquetColumns columns)
{
    private readonly string[] _roles = new string[2 * SftExporter.ParquetRowGroupRows];
    private readonly string[] _contents = new string[2 * SftExporter.ParquetRowGroupRows];
    private readonly int[] _repetitions = new int[2 * SftExporter.ParquetRowGroupRows];
    private readonly long[] _ids = new long[SftExporter.ParquetRowGroupRows];
    private readonly int[] _steps = new int[SftExporter.ParquetRowGroupRows];
    private readonly int[] _versions = new int[SftExporter.ParquetRowGroupRows];
    private readonly long?[] _completions = new long?[SftExporter.ParquetRowGroupRows];
    private readonly double?[] _rewards = new double?[SftExporter.ParquetRowGroupRows];
    private readonly DateTime[] _created = new DateTime[SftExporter.ParquetRowGroupRows];
    private readonly double?[][] _scores = columns.Scores.Select(_ => new double?[SftExporter.ParquetRowGroupRows]).ToArray();
    private readonly bool?[][] _verdicts = columns.Verdicts.Select(_ => new bool?[SftExporter.ParquetRowGroupRows]).ToArray();
    private long _campaignId;
    private long _chars;

    public int Count { get; private set; }

    public bool Full => Count == SftExporter.ParquetRowGroupRows || _chars >= SftExporter.ParquetRowGroupChars;

    /// <summary>Adds the reader's current row (the page query's columns); returns its id.</summary>
    public long Add(NpgsqlDataReader reader, long campaignId)
    {
        var i = Count;
        _campaignId = campaignId;
        _ids[i] = reader.GetInt64(0);
        _steps[i] = reader.GetInt32(1);
        _versions[i] = reader.GetInt32(2);
        _completions[i] = reader.IsDBNull(3) ? null : reader.GetInt64(3);
        var prompt = reader.GetString(4);
        var reasoning = reader.GetString(5);
        var answer = reader.GetString(6);
        _rewards[i] = reader.IsDBNull(7) ? null : reader.GetDouble(7) is var r && double.IsFinite(r) ? r : null;
        _created[i] = reader.GetFieldValue<DateTime>(8);
        for (var k = 0; k < _scores.Length; k++)
        {
            _scores[k][i] = reader.IsDBNull(9 + k) ? null : reader.GetDouble(9 + k);
        }

        for (var k = 0; k < _verdicts.Length; k++)
        {
            _verdicts[k][i] = reader.IsDBNull(9 + _scores.Length + k) ? null : reader.GetBoolean(9 + _scores.Length + k);
        }

        // Each sample is two messages: the first starts a new list (repetition level 0), the second continues it.
        _roles[2 * i] = "user";
        _contents[2 * i] = prompt;
        _repetitions[2 * i] = 0;
        _roles[(2 * i) + 1] = "assistant";
        _contents[(2 * i) + 1] = "<think>\n" + reasoning + "\n</think>\n\n" + answer;
        _repetitions[(2 * i) + 1] = 1;
        _chars += prompt.Length + _contents[(2 * i) + 1].Length;
        Count++;
        return _ids[i];
    }

    public async Task WriteAsync(ParquetWriter writer, CancellationToken cancellationToken)
    {
        var n = Count;
        using (var group = writer.CreateRowGroup())
        {
            await group.WriteAsync(columns.Role, new ArraySegment<string>(_roles, 0, 2 * n), _repetitions.AsMemory(0, 2 * n));
            await group.WriteAsync(columns.Content, new ArraySegment<string>(_contents, 0, 2 * n), _repetitions.AsMemory(0, 2 * n));
            await group.WriteAsync<long>(columns.SampleId, _ids.AsMemory(0, n), cancellationToken: cancellationToken);
            var campaign = new long[n];
            Array.Fill(campaign, _campaignId);
            await group.WriteAsync<long>(columns.CampaignId, campaign, cancellationToken: cancellationToken);
            await group.WriteAsync<int>(columns.Step, _steps.AsMemory(0, n), cancellationToken: cancellationToken);
            await group.WriteAsync<int>(columns.PolicyVersion, _versions.AsMemory(0, n), cancellationToken: cancellationToken);
            await group.WriteAsync<long>(columns.CompletionId, _completions.AsMemory(0, n), cancellationToken: cancellationToken);
            await group.WriteAsync<double>(columns.Reward, _rewards.AsMemory(0, n), cancellationToken: cancellationToken);
            await group.WriteAsync<DateTime>(columns.CreatedAt, _created.AsMemory(0, n), cancellationToken: cancellationToken);
            for (var k = 0; k < _scores.Length; k++)
            {
                await group.WriteAsync<double>(columns.Scores[k], _scores[k].AsMemory(0, n), cancellationToken: cancellationToken);
            }

            for (var k = 0; k < _verdicts.Length; k++)
            {
                await group.WriteAsync<bool>(columns.Verdicts[k], _verdicts[k].AsMemory(0, n), cancellationToken: cancellationToken);
            }

            group.CompleteValidate();
        }

        // Drop the strings so the next group does not keep this one's text alive.
        Array.Clear(_contents, 0, 2 * n);
        Count = 0;
        _chars = 0;
    }
}
