using DeepSeekRL.Grains;
using DeepSeekRL.Storage.Resilience;
using DeepSeekRL.Storage.Singletons;
using Npgsql;
using NpgsqlTypes;
using Polly;

namespace DeepSeekRL.Storage.Stores;

/// <summary>
/// The stores of a campaign's data: completions, per-rule reward scores, step metrics and SFT samples. Bulk writes go
/// through binary COPY into a session-local staging table, then one INSERT ... ON CONFLICT DO NOTHING, so that a retry
/// after a lost reply stores nothing twice.
/// </summary>
public sealed class SampleStore(NpgsqlDataSource dataSource, ResiliencePipeline? pipeline = null)
{
    private readonly ResiliencePipeline _pipeline = pipeline ?? DatabaseResilience.Default;

    /// <summary>Stores completions (skipping ones already stored) inside the caller's transaction.</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="transaction">The caller's transaction (e.g. the work item's completion).</param>
    /// <param name="completions">The completions.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The ids of the stored completions, in the input order (existing ids for ones stored before).</returns>
    public static async Task<long[]> WriteCompletionsAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<CompletionRecord> completions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(completions);
        await ExecuteAsync(connection, transaction, """
            CREATE TEMP TABLE IF NOT EXISTS completions_staging (
                ord int, campaign_id bigint, step int, item_id bigint, sample_index int, policy_version int, prompt text,
                token_ids int[], text text, logprobs real[], finish_reason text) ON COMMIT DELETE ROWS
            """, cancellationToken);
        await using (var importer = await connection.BeginBinaryImportAsync(
            "COPY completions_staging (ord, campaign_id, step, item_id, sample_index, policy_version, prompt, token_ids, text, logprobs, finish_reason) FROM STDIN (FORMAT BINARY)",
            cancellationToken))
        {
            for (var i = 0; i < completions.Count; i++)
            {
                var c = completions[i];
                if (c.TokenIds.Length != c.Logprobs.Length)
                {
                    throw new ArgumentException($"completion {i}: {c.TokenIds.Length} token ids but {c.Logprobs.Length} log-probs", nameof(completions));
                }

                await importer.StartRowAsync(cancellationToken);
                await importer.WriteAsync(i, NpgsqlDbType.Integer, cancellationToken);
                await importer.WriteAsync(c.CampaignId, NpgsqlDbType.Bigint, cancellationToken);
                await importer.WriteAsync(c.Step, NpgsqlDbType.Integer, cancellationToken);
                await importer.WriteAsync(c.ItemId, NpgsqlDbType.Bigint, cancellationToken);
                await importer.WriteAsync(c.SampleIndex, NpgsqlDbType.Integer, cancellationToken);
                await importer.WriteAsync(c.PolicyVersion, NpgsqlDbType.Integer, cancellationToken);
                await importer.WriteAsync(c.Prompt, NpgsqlDbType.Text, cancellationToken);
                await importer.WriteAsync(c.TokenIds, NpgsqlDbType.Array | NpgsqlDbType.Integer, cancellationToken);
                await importer.WriteAsync(c.Text, NpgsqlDbType.Text, cancellationToken);
                await importer.WriteAsync(c.Logprobs, NpgsqlDbType.Array | NpgsqlDbType.Real, cancellationToken);
                await importer.WriteAsync(c.FinishReason, NpgsqlDbType.Text, cancellationToken);
            }

            await importer.CompleteAsync(cancellationToken);
        }

        await ExecuteAsync(connection, transaction, """
            INSERT INTO completions (campaign_id, step, item_id, sample_index, policy_version, prompt, token_ids, text, logprobs, finish_reason)
            SELECT campaign_id, step, item_id, sample_index, policy_version, prompt, token_ids, text, logprobs, finish_reason
              FROM completions_staging ORDER BY ord
            ON CONFLICT (item_id, sample_index) DO NOTHING
            """, cancellationToken);
        var ids = new long[completions.Count];
        await using var select = new NpgsqlCommand("""
            SELECT s.ord, c.id FROM completions_staging s
              JOIN completions c ON c.item_id = s.item_id AND c.sample_index = s.sample_index
            """, connection, transaction);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            ids[reader.GetInt32(0)] = reader.GetInt64(1);
        }

        await reader.CloseAsync();
        await ExecuteAsync(connection, transaction, "TRUNCATE completions_staging", cancellationToken);
        return ids;
    }

    /// <summary>Stores reward scores (a score already stored for that completion and rule is kept).</summary>
    /// <param name="scores">The scores.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many new scores were stored.</returns>
    public async Task<int> WriteScoresAsync(IReadOnlyList<RewardScore> scores, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scores);
        return await InTransactionAsync((connection, transaction, ct) => WriteScoresAsync(connection, transaction, scores, ct), cancellationToken);
    }

    /// <summary>Reads a rollout item's completions in sample order (with the prompt index of the item's payload).</summary>
    /// <typeparam name="T">What each completion becomes.</typeparam>
    /// <param name="dataSource">The database.</param>
    /// <param name="rolloutItemId">The rollout item.</param>
    /// <param name="make">Makes one from (id, step, policy version, prompt index, prompt, text, token count or null, finish reason).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The completions.</returns>
    public static async Task<List<T>> ReadItemCompletionsAsync<T>(
        NpgsqlDataSource dataSource, long rolloutItemId, Func<long, int, int, int, string, string, int?, string, T> make, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(make);
        await using var command = dataSource.CreateCommand("""
            SELECT c.id, c.step, c.policy_version, (w.payload->>'prompt_index')::int, c.prompt, c.text, cardinality(c.token_ids), c.finish_reason
              FROM completions c JOIN work_items w ON w.id = c.item_id
             WHERE c.item_id = $1 ORDER BY c.sample_index
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = rolloutItemId });
        var completions = new List<T>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var tokens = reader.GetInt32(6);
            completions.Add(make(reader.GetInt64(0), reader.GetInt32(1), reader.GetInt32(2), reader.GetInt32(3),
                reader.GetString(4), reader.GetString(5), tokens > 0 ? tokens : null, reader.GetString(7)));
        }

        return completions;
    }

    /// <summary>Sets completions' total rewards and reflection bits inside the caller's transaction.</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="transaction">The transaction.</param>
    /// <param name="completionIds">The completions.</param>
    /// <param name="rewards">Their rewards (same order).</param>
    /// <param name="reflection">Their self-verification bits (same order; <c>completions.reflection</c>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public static async Task WriteRewardsAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, long[] completionIds, double[] rewards, ReflectionFlags[] reflection,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(completionIds);
        ArgumentNullException.ThrowIfNull(rewards);
        ArgumentNullException.ThrowIfNull(reflection);
        if (rewards.Length != completionIds.Length || reflection.Length != completionIds.Length)
        {
            throw new ArgumentException($"{completionIds.Length} completions, {rewards.Length} rewards and {reflection.Length} reflection values: expected one of each per completion");
        }

        var bits = new short[reflection.Length];
        for (var i = 0; i < bits.Length; i++)
        {
            bits[i] = (short)reflection[i];
        }

        await using var update = new NpgsqlCommand("""
            UPDATE completions c SET reward = u.r, reflection = u.f
              FROM unnest($1::bigint[], $2::float8[], $3::smallint[]) AS u(id, r, f)
             WHERE c.id = u.id
            """, connection, transaction);
        update.Parameters.Add(new NpgsqlParameter { Value = completionIds });
        update.Parameters.Add(new NpgsqlParameter { Value = rewards });
        update.Parameters.Add(new NpgsqlParameter { Value = bits });
        await update.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Stores reward scores inside the caller's transaction.</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="transaction">The transaction.</param>
    /// <param name="scores">The scores.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many new scores were stored.</returns>
    public static async Task<int> WriteScoresAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<RewardScore> scores, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scores);
        await using var command = new NpgsqlCommand("""
            INSERT INTO reward_scores (completion_id, rule, value)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::float8[])
            ON CONFLICT (completion_id, rule) DO NOTHING
            """, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = scores.Select(s => s.CompletionId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = scores.Select(s => s.Rule).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = scores.Select(s => s.Value).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Double });
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Writes a step's metrics under a fenced singleton lease (the learner's); a step's metrics are written once.</summary>
    /// <param name="leases">The singleton leases.</param>
    /// <param name="lease">The writer's lease.</param>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="step">The step.</param>
    /// <param name="metricsJson">The metrics, a JSON object.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Stored, already present, or rejected as stale.</returns>
    public async Task<FencedWriteResult> WriteStepMetricsAsync(
        SingletonLeases leases, SingletonLease lease, long campaignId, int step, string metricsJson, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(leases);
        ArgumentNullException.ThrowIfNull(lease);
        var inserted = false;
        var committed = await leases.WriteFencedAsync(lease, async (connection, transaction, ct) =>
        {
            await using var command = new NpgsqlCommand("""
                INSERT INTO step_metrics (campaign_id, step, epoch, metrics) VALUES ($1, $2, $3, $4)
                ON CONFLICT (campaign_id, step) DO NOTHING
                """, connection, transaction);
            command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            command.Parameters.Add(new NpgsqlParameter { Value = step });
            command.Parameters.Add(new NpgsqlParameter { Value = lease.Epoch });
            command.Parameters.Add(new NpgsqlParameter { Value = metricsJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
            inserted = await command.ExecuteNonQueryAsync(ct) == 1;
        }, cancellationToken);
        return !committed ? FencedWriteResult.RejectedStale : inserted ? FencedWriteResult.Written : FencedWriteResult.AlreadyPresent;
    }

    /// <summary>Ingests SFT samples with binary COPY; samples whose completion is already a sample are skipped.</summary>
    /// <param name="samples">The samples.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many new samples were stored.</returns>
    public async Task<int> IngestSftSamplesAsync(IReadOnlyList<SftSample> samples, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(samples);
        return await InTransactionAsync((connection, transaction, ct) => IngestSftSamplesAsync(connection, transaction, samples, ct), cancellationToken);
    }

    /// <summary>
    /// Ingests a batch of SFT samples identified by <paramref name="batchKey"/>, with binary COPY straight into the
    /// table: the key commits with the rows, so a retried or repeated batch is stored once. A batch that collides with
    /// samples stored by other batches (same completion) falls back to the row-by-row de-duplicating path.
    /// </summary>
    /// <param name="batchKey">A key unique to this batch's content (e.g. <c>campaign-3/step-12/item-345</c>).</param>
    /// <param name="samples">The samples.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many new samples were stored (0 when the batch was stored before).</returns>
    public async Task<int> IngestSftBatchAsync(string batchKey, IReadOnlyList<SftSample> samples, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(batchKey);
        ArgumentNullException.ThrowIfNull(samples);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            await using (var key = new NpgsqlCommand(
                "INSERT INTO ingest_batches (batch_key, rows) VALUES ($1, $2) ON CONFLICT (batch_key) DO NOTHING", connection, transaction))
            {
                key.Parameters.Add(new NpgsqlParameter { Value = batchKey });
                key.Parameters.Add(new NpgsqlParameter { Value = samples.Count });
                if (await key.ExecuteNonQueryAsync(ct) == 0)
                {
                    await transaction.RollbackAsync(ct);
                    return 0;
                }
            }

            await using (var savepoint = new NpgsqlCommand("SAVEPOINT direct_copy", connection, transaction))
            {
                await savepoint.ExecuteNonQueryAsync(ct);
            }

            int stored;
            try
            {
                stored = (int)await CopyAsync(connection, "sft_samples", samples, ct);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                await using var rollback = new NpgsqlCommand("ROLLBACK TO SAVEPOINT direct_copy", connection, transaction);
                await rollback.ExecuteNonQueryAsync(ct);
                stored = await IngestSftSamplesAsync(connection, transaction, samples, ct);
            }

            await transaction.CommitAsync(ct);
            return stored;
        }, cancellationToken);
    }

    /// <summary>Ingests SFT samples inside the caller's transaction.</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="transaction">The transaction.</param>
    /// <param name="samples">The samples.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many new samples were stored.</returns>
    public static async Task<int> IngestSftSamplesAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<SftSample> samples, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(samples);
        await ExecuteAsync(connection, transaction, """
            CREATE TEMP TABLE IF NOT EXISTS sft_staging (
                campaign_id bigint, step int, policy_version int, completion_id bigint, prompt text, reasoning text,
                answer text, reward float8, scores jsonb, verdicts jsonb) ON COMMIT DELETE ROWS
            """, cancellationToken);
        await CopyAsync(connection, "sft_staging", samples, cancellationToken);
        await using var insert = new NpgsqlCommand("""
            INSERT INTO sft_samples (campaign_id, step, policy_version, completion_id, prompt, reasoning, answer, reward, scores, verdicts)
            SELECT campaign_id, step, policy_version, completion_id, prompt, reasoning, answer, reward, scores, verdicts FROM sft_staging
            ON CONFLICT (completion_id) WHERE completion_id IS NOT NULL DO NOTHING
            """, connection, transaction);
        var inserted = await insert.ExecuteNonQueryAsync(cancellationToken);
        await ExecuteAsync(connection, transaction, "TRUNCATE sft_staging", cancellationToken);
        return inserted;
    }

    /// <summary>Runs <paramref name="work"/> in a transaction of its own, through the retry pipeline (all of it is redone on a transient failure).</summary>
    private async Task<T> InTransactionAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task<T>> work, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            var result = await work(connection, transaction, ct);
            await transaction.CommitAsync(ct);
            return result;
        }, cancellationToken);

    private static async Task<ulong> CopyAsync(NpgsqlConnection connection, string table, IReadOnlyList<SftSample> samples, CancellationToken cancellationToken)
    {
        await using var importer = await connection.BeginBinaryImportAsync(
            $"COPY {table} (campaign_id, step, policy_version, completion_id, prompt, reasoning, answer, reward, scores, verdicts) FROM STDIN (FORMAT BINARY)",
            cancellationToken);
        foreach (var s in samples)
        {
            await importer.StartRowAsync(cancellationToken);
            await importer.WriteAsync(s.CampaignId, NpgsqlDbType.Bigint, cancellationToken);
            await importer.WriteAsync(s.Step, NpgsqlDbType.Integer, cancellationToken);
            await importer.WriteAsync(s.PolicyVersion, NpgsqlDbType.Integer, cancellationToken);
            if (s.CompletionId is long id)
            {
                await importer.WriteAsync(id, NpgsqlDbType.Bigint, cancellationToken);
            }
            else
            {
                await importer.WriteNullAsync(cancellationToken);
            }

            await importer.WriteAsync(s.Prompt, NpgsqlDbType.Text, cancellationToken);
            await importer.WriteAsync(s.Reasoning, NpgsqlDbType.Text, cancellationToken);
            await importer.WriteAsync(s.Answer, NpgsqlDbType.Text, cancellationToken);
            if (s.Reward is double r)
            {
                await importer.WriteAsync(r, NpgsqlDbType.Double, cancellationToken);
            }
            else
            {
                await importer.WriteNullAsync(cancellationToken);
            }

            await importer.WriteAsync(s.ScoresJson, NpgsqlDbType.Jsonb, cancellationToken);
            await importer.WriteAsync(s.VerdictsJson, NpgsqlDbType.Jsonb, cancellationToken);
        }

        return await importer.CompleteAsync(cancellationToken);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}

/// <summary>The result of a write made under a singleton lease.</summary>
public enum FencedWriteResult
{
    /// <summary>Written now.</summary>
    Written,

    /// <summary>The lease holds, and the row was already there (written once before).</summary>
    AlreadyPresent,

    /// <summary>The writer's epoch is stale: nothing was written.</summary>
    RejectedStale,
}
