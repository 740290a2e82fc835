using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains;
using DeepSeekRL.Storage.Resilience;
using Npgsql;
using NpgsqlTypes;
using Polly;

namespace DeepSeekRL.Storage.Stores;

/// <summary>One dataset row of a campaign.</summary>
/// <param name="Prompt">The question.</param>
/// <param name="Answer">The gold answer, if any.</param>
/// <param name="Fields">The row's other fields (for rules that read them).</param>
public sealed record CampaignPrompt(string Prompt, string? Answer, IReadOnlyDictionary<string, JsonElement> Fields);

/// <summary>A campaign to store: its spec and every input frozen at creation.</summary>
/// <param name="Name">The spec's name.</param>
/// <param name="SpecJson">The spec's JSON text (valid for jsonb: no lone surrogate escapes).</param>
/// <param name="Mode">Train or collect.</param>
/// <param name="TotalSteps">Steps in the spec.</param>
/// <param name="BaseDirectory">The spec's directory (relative paths in the spec resolve against it).</param>
/// <param name="Tokenizer">A native policy's tokenizer.json text.</param>
/// <param name="ModelConfig">A native policy's config.json text.</param>
/// <param name="Train">The training prompts.</param>
/// <param name="Eval">The evaluation prompts.</param>
/// <param name="MalformedRows">Dataset rows skipped as malformed (a counter).</param>
public sealed record NewCampaign(
    string Name, string SpecJson, CampaignMode Mode, int TotalSteps, string BaseDirectory, string? Tokenizer, string? ModelConfig,
    IReadOnlyList<CampaignPrompt> Train, IReadOnlyList<CampaignPrompt> Eval, int MalformedRows);

/// <summary>A stored campaign's inputs, as frozen at creation.</summary>
/// <param name="SpecJson">The spec's JSON text.</param>
/// <param name="BaseDirectory">The spec's directory.</param>
/// <param name="Tokenizer">A native policy's tokenizer.json text.</param>
/// <param name="ModelConfig">A native policy's config.json text.</param>
/// <param name="Train">The training prompts in order.</param>
/// <param name="Eval">The evaluation prompts in order.</param>
public sealed record StoredCampaign(
    string SpecJson, string BaseDirectory, string? Tokenizer, string? ModelConfig, IReadOnlyList<CampaignPrompt> Train, IReadOnlyList<CampaignPrompt> Eval);

/// <summary>Stores campaigns and their state: the frozen inputs, lifecycle, counters, status.</summary>
/// <param name="dataSource">The database.</param>
/// <param name="pipeline">The database resilience pipeline.</param>
public sealed class CampaignStore(NpgsqlDataSource dataSource, ResiliencePipeline? pipeline = null)
{
    private readonly ResiliencePipeline _pipeline = pipeline ?? DatabaseResilience.Default;

    /// <summary>Stores a new campaign in state <c>created</c> with its prompts and its malformed-row counter, in one transaction.</summary>
    /// <param name="campaign">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new campaign's id.</returns>
    public async Task<long> InsertAsync(NewCampaign campaign, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(campaign);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            long campaignId;
            await using (var insert = new NpgsqlCommand("""
                INSERT INTO campaigns (name, state, spec, mode, total_steps, base_dir, tokenizer, model_config)
                VALUES ($1, 'created', $2, $3, $4, $5, $6, $7) RETURNING id
                """, connection, transaction))
            {
                insert.Parameters.Add(new NpgsqlParameter { Value = campaign.Name });
                insert.Parameters.Add(new NpgsqlParameter { Value = campaign.SpecJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
                insert.Parameters.Add(new NpgsqlParameter { Value = campaign.Mode == CampaignMode.Train ? "train" : "collect" });
                insert.Parameters.Add(new NpgsqlParameter { Value = campaign.TotalSteps });
                insert.Parameters.Add(new NpgsqlParameter { Value = campaign.BaseDirectory });
                insert.Parameters.Add(new NpgsqlParameter { Value = (object?)campaign.Tokenizer ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                insert.Parameters.Add(new NpgsqlParameter { Value = (object?)campaign.ModelConfig ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                campaignId = (long)(await insert.ExecuteScalarAsync(ct))!;
            }

            await InsertPromptsAsync(connection, transaction, campaignId, "train", campaign.Train, ct);
            await InsertPromptsAsync(connection, transaction, campaignId, "eval", campaign.Eval, ct);
            await AddCountersAsync(connection, transaction, campaignId, [new("dataset_malformed_rows", campaign.MalformedRows)], ct);
            await transaction.CommitAsync(ct);
            return campaignId;
        }, cancellationToken);
    }

    /// <summary>Reads a campaign's frozen inputs.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The inputs, or null when the campaign does not exist.</returns>
    public async Task<StoredCampaign?> LoadAsync(long campaignId, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            string specJson, baseDir;
            string? tokenizerJson, configJson;
            await using (var command = dataSource.CreateCommand("SELECT spec::text, base_dir, tokenizer, model_config FROM campaigns WHERE id = $1"))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
                await using var reader = await command.ExecuteReaderAsync(ct);
                if (!await reader.ReadAsync(ct))
                {
                    return null;
                }

                specJson = reader.GetString(0);
                baseDir = reader.GetString(1);
                tokenizerJson = reader.IsDBNull(2) ? null : reader.GetString(2);
                configJson = reader.IsDBNull(3) ? null : reader.GetString(3);
            }

            var train = new List<CampaignPrompt>();
            var eval = new List<CampaignPrompt>();
            await using (var command = dataSource.CreateCommand("SELECT split, prompt, answer, fields::text FROM campaign_prompts WHERE campaign_id = $1 ORDER BY split, idx"))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    var fields = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(reader.GetString(3)) ?? [];
                    var row = new CampaignPrompt(reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), fields);
                    (reader.GetString(0) == "train" ? train : eval).Add(row);
                }
            }

            return new StoredCampaign(specJson, baseDir, tokenizerJson, configJson, train, eval);
        }, cancellationToken);

    private static async Task InsertPromptsAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, long campaignId, string split, IReadOnlyList<CampaignPrompt> rows, CancellationToken ct)
    {
        await using var importer = await connection.BeginBinaryImportAsync(
            "COPY campaign_prompts (campaign_id, split, idx, prompt, answer, fields) FROM STDIN (FORMAT BINARY)", ct);
        for (var i = 0; i < rows.Count; i++)
        {
            await importer.StartRowAsync(ct);
            await importer.WriteAsync(campaignId, NpgsqlDbType.Bigint, ct);
            await importer.WriteAsync(split, NpgsqlDbType.Text, ct);
            await importer.WriteAsync(i, NpgsqlDbType.Integer, ct);
            await importer.WriteAsync(rows[i].Prompt, NpgsqlDbType.Text, ct);
            if (rows[i].Answer is { } answer)
            {
                await importer.WriteAsync(answer, NpgsqlDbType.Text, ct);
            }
            else
            {
                await importer.WriteNullAsync(ct);
            }

            await importer.WriteAsync(JsonSerializer.Serialize(rows[i].Fields), NpgsqlDbType.Jsonb, ct);
        }

        await importer.CompleteAsync(ct);
    }

    /// <summary>Adds to counters inside the caller's transaction (so that work and its counts commit together).</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="transaction">The transaction.</param>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="deltas">Counter names and amounts (zero amounts still create the counter).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public static async Task AddCountersAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, long campaignId, IReadOnlyList<KeyValuePair<string, long>> deltas,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deltas);
        if (deltas.Count == 0)
        {
            return;
        }

        await using var command = new NpgsqlCommand("""
            INSERT INTO campaign_counters AS c (campaign_id, name, value)
            SELECT $1, n, sum(v) FROM unnest($2::text[], $3::bigint[]) AS d(n, v) GROUP BY n
            ON CONFLICT (campaign_id, name) DO UPDATE SET value = c.value + excluded.value
            """, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
        command.Parameters.Add(new NpgsqlParameter { Value = deltas.Select(d => d.Key).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = deltas.Select(d => d.Value).ToArray() });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Moves a campaign between states where the transition is allowed.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="to">The new state.</param>
    /// <param name="from">The states it may move from.</param>
    /// <param name="error">The error to record (failed state).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The state after the call, or null when the campaign does not exist.</returns>
    public async Task<CampaignState?> TransitionAsync(long campaignId, CampaignState to, IReadOnlyList<CampaignState> from, string? error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(from);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            await using (var command = new NpgsqlCommand("""
                UPDATE campaigns SET state = $2, updated_at = now(), error = coalesce($4, error),
                       finished_at = CASE WHEN $2 IN ('cancelled', 'completed', 'failed') THEN now() ELSE finished_at END
                 WHERE id = $1 AND state = ANY($3)
                """, connection, transaction))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
                command.Parameters.Add(new NpgsqlParameter { Value = StateName(to) });
                command.Parameters.Add(new NpgsqlParameter { Value = from.Select(StateName).ToArray() });
                command.Parameters.Add(new NpgsqlParameter { Value = (object?)error ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                await command.ExecuteNonQueryAsync(ct);
            }

            if (to == CampaignState.Cancelled)
            {
                await using var cancel = new NpgsqlCommand(
                    "UPDATE work_items SET state = 'cancelled', finished_at = now(), updated_at = now() WHERE campaign_id = $1 AND state = 'pending'",
                    connection, transaction);
                cancel.Parameters.Add(new NpgsqlParameter { Value = campaignId });
                await cancel.ExecuteNonQueryAsync(ct);
            }

            await using var read = new NpgsqlCommand("SELECT state FROM campaigns WHERE id = $1", connection, transaction);
            read.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            var state = await read.ExecuteScalarAsync(ct) as string;
            await transaction.CommitAsync(ct);
            return state is null ? (CampaignState?)null : ParseState(state);
        }, cancellationToken);
    }

    /// <summary>Reads a campaign's status, or null when it does not exist.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The status.</returns>
    public async Task<CampaignStatus?> GetStatusAsync(long campaignId, CancellationToken cancellationToken) =>
        (await ListCoreAsync(campaignId, cancellationToken)).FirstOrDefault();

    /// <summary>Lists every campaign, newest first.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The statuses.</returns>
    public Task<IReadOnlyList<CampaignStatus>> ListAsync(CancellationToken cancellationToken) => ListCoreAsync(null, cancellationToken);

    /// <summary>The ids of campaigns that still need work (created, running or paused) and are ready to run (a native policy's version 0 published).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The ids.</returns>
    public async Task<IReadOnlyList<long>> ActiveAsync(CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            // A native campaign is ready once its policy version 0 is published (just after its row is committed).
            await using var command = dataSource.CreateCommand("""
                SELECT c.id FROM campaigns c
                 WHERE c.state IN ('created', 'running', 'paused')
                   AND (c.model_config IS NULL OR EXISTS (SELECT 1 FROM policy_versions p WHERE p.campaign_id = c.id AND p.version = 0))
                 ORDER BY c.id
                """);
            var ids = new List<long>();
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                ids.Add(reader.GetInt64(0));
            }

            return (IReadOnlyList<long>)ids;
        }, cancellationToken);

    private async Task<IReadOnlyList<CampaignStatus>> ListCoreAsync(long? campaignId, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            await using var command = dataSource.CreateCommand($$"""
                SELECT c.id, c.name, c.state, c.mode, c.steps_completed, c.total_steps, c.policy_version, c.error, c.created_at, c.updated_at,
                       coalesce((SELECT jsonb_object_agg(name, value) FROM campaign_counters k WHERE k.campaign_id = c.id), '{}')::text
                  FROM campaigns c {{(campaignId is null ? string.Empty : "WHERE c.id = $1")}} ORDER BY c.id DESC
                """);
            if (campaignId is not null)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = campaignId.Value });
            }

            var list = new List<CampaignStatus>();
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var counters = JsonSerializer.Deserialize<Dictionary<string, long>>(reader.GetString(10)) ?? [];
                list.Add(new CampaignStatus(
                    reader.GetInt64(0), reader.GetString(1), ParseState(reader.GetString(2)),
                    reader.GetString(3) == "train" ? CampaignMode.Train : CampaignMode.Collect,
                    reader.GetInt32(4), reader.GetInt32(5), reader.GetInt32(6), reader.IsDBNull(7) ? null : reader.GetString(7),
                    reader.GetFieldValue<DateTimeOffset>(8), reader.GetFieldValue<DateTimeOffset>(9),
                    new SortedDictionary<string, long>(counters, StringComparer.Ordinal)));
            }

            return (IReadOnlyList<CampaignStatus>)list;
        }, cancellationToken);

    /// <summary>The database name of a state.</summary>
    /// <param name="state">The state.</param>
    /// <returns>The name.</returns>
    public static string StateName(CampaignState state) => state.ToString().ToLowerInvariant();

    /// <summary>Parses a database state name.</summary>
    /// <param name="name">The name.</param>
    /// <returns>The state.</returns>
    public static CampaignState ParseState(string name) =>
        Enum.Parse<CampaignState>(name, ignoreCase: true);
}
