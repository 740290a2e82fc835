using System.Data;
using System.Text.Json;
using Npgsql;

namespace DeepSeekRL.Storage.Stores;

/// <summary>Which SFT samples to export.</summary>
/// <param name="CampaignId">The campaign.</param>
/// <param name="Since">Only samples created at or after this time, when given.</param>
/// <param name="MinReward">Only samples with a reward at or above this, when given.</param>
/// <param name="AfterId">Only samples with a larger id (for incremental exports), when given.</param>
public sealed record SftExportFilter(long CampaignId, DateTimeOffset? Since = null, double? MinReward = null, long? AfterId = null);

/// <summary>
/// Streams SFT samples as JSONL in the chat <c>messages</c> format SFT trainers read (TRL, OpenRLHF): one line per
/// sample, <c>{"messages": [user, assistant], "metadata": {...}}</c>, the assistant content being
/// <c>&lt;think&gt;\n{reasoning}\n&lt;/think&gt;\n\n{answer}</c>. Rows are read with a streaming reader in id order, so memory
/// stays constant whatever the number of samples. The Parquet form of the same rows is in <c>SftExporter.Parquet.cs</c>.
/// </summary>
public static partial class SftExporter
{
    /// <summary>
    /// Whether a campaign exists: it has a row in <c>campaigns</c>, or samples were ingested under its id (the ingest
    /// benchmark and tests write samples without a campaign).
    /// </summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="campaignId">The campaign id.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>Whether it exists.</returns>
    public static async Task<bool> CampaignExistsAsync(NpgsqlDataSource dataSource, long campaignId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var command = dataSource.CreateCommand(
            "SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = $1) OR EXISTS (SELECT 1 FROM sft_samples WHERE campaign_id = $1)");
        command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Writes the samples matching <paramref name="filter"/> to <paramref name="output"/>.</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="filter">The filter.</param>
    /// <param name="output">The destination stream (not closed).</param>
    /// <param name="cancellationToken">Cancels the export.</param>
    /// <returns>The number of samples written and the largest id written (0 when none).</returns>
    public static async Task<(long Count, long LastId)> ExportAsync(
        NpgsqlDataSource dataSource, SftExportFilter filter, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(output);
        long count = 0, lastId = 0;

        // Keyset pages of short statements instead of one long transaction, which would hold back vacuum for the
        // whole database while a large export runs. Samples are append-only, so paging by id up to the largest id
        // present at the start gives exactly the rows of one consistent moment.
        long upTo;
        await using (var max = dataSource.CreateCommand("SELECT coalesce(max(id), 0) FROM sft_samples WHERE campaign_id = $1"))
        {
            max.Parameters.Add(new NpgsqlParameter { Value = filter.CampaignId });
            upTo = (long)(await max.ExecuteScalarAsync(cancellationToken))!;
        }

        await using var writer = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = false, SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        var after = filter.AfterId ?? 0;
        const int PageSize = 2000;
        int page;
        do
        {
            page = 0;
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await using var command = new NpgsqlCommand($"""
                SELECT id, step, policy_version, completion_id, prompt, reasoning, answer, reward, scores::text, verdicts::text, created_at
                  FROM sft_samples
                 {FilterWhere}
                 ORDER BY id
                 LIMIT 2000
                """, connection);
            AddFilterParameters(command, filter, after, upTo);
            await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                page++;
                after = await WriteRowAsync(reader, filter.CampaignId, writer, output, cancellationToken);
                count++;
                lastId = after;
            }
        }
        while (page == PageSize);

        return (count, lastId);
    }

    /// <summary>The filter of every export query: <c>$1</c> campaign, <c>$2</c> since, <c>$3</c> minimum reward, ids
    /// in (<c>$4</c>, <c>$5</c>] (see <see cref="AddFilterParameters"/>).</summary>
    private const string FilterWhere = """
        WHERE campaign_id = $1 AND id > $4 AND id <= $5
                   AND ($2::timestamptz IS NULL OR created_at >= $2)
                   AND ($3::float8 IS NULL OR reward >= $3)
        """;

    /// <summary>Adds <see cref="FilterWhere"/>'s parameters $1 to $5.</summary>
    private static void AddFilterParameters(NpgsqlCommand command, SftExportFilter filter, long after, long upTo)
    {
        command.Parameters.Add(new NpgsqlParameter { Value = filter.CampaignId });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)filter.Since ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)filter.MinReward ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Double });
        command.Parameters.Add(new NpgsqlParameter { Value = after });
        command.Parameters.Add(new NpgsqlParameter { Value = upTo });
    }

    private static async Task<long> WriteRowAsync(NpgsqlDataReader reader, long campaignId, Utf8JsonWriter writer, Stream output, CancellationToken cancellationToken)
    {
            var id = reader.GetInt64(0);
            var step = reader.GetInt32(1);
            var policyVersion = reader.GetInt32(2);
            long? completionId = reader.IsDBNull(3) ? null : reader.GetInt64(3);
            var prompt = reader.GetString(4);
            var reasoning = reader.GetString(5);
            var answer = reader.GetString(6);
            double? reward = reader.IsDBNull(7) ? null : reader.GetDouble(7);
            var scores = reader.GetString(8);
            var verdicts = reader.GetString(9);
            var created = reader.GetFieldValue<DateTimeOffset>(10);

            writer.Reset(output);
            writer.WriteStartObject();
            writer.WriteStartArray("messages");
            writer.WriteStartObject();
            writer.WriteString("role", "user");
            writer.WriteString("content", prompt);
            writer.WriteEndObject();
            writer.WriteStartObject();
            writer.WriteString("role", "assistant");
            writer.WriteString("content", "<think>\n" + reasoning + "\n</think>\n\n" + answer);
            writer.WriteEndObject();
            writer.WriteEndArray();
            writer.WriteStartObject("metadata");
            writer.WriteNumber("sample_id", id);
            writer.WriteNumber("campaign_id", campaignId);
            writer.WriteNumber("step", step);
            writer.WriteNumber("policy_version", policyVersion);
            if (completionId is long c)
            {
                writer.WriteNumber("completion_id", c);
            }
            else
            {
                writer.WriteNull("completion_id");
            }

            if (reward is double r && double.IsFinite(r))
            {
                writer.WriteNumber("reward", r);
            }
            else
            {
                writer.WriteNull("reward");
            }

            writer.WritePropertyName("scores");
            writer.WriteRawValue(scores, skipInputValidation: true);
            writer.WritePropertyName("verdicts");
            writer.WriteRawValue(verdicts, skipInputValidation: true);
            writer.WriteString("created_at", created);
            writer.WriteEndObject();
            writer.WriteEndObject();
            await writer.FlushAsync(cancellationToken);
            output.WriteByte((byte)'\n');
            return id;
    }
}
