using System.Globalization;
using System.Security.Cryptography;
using DeepSeekRL.Grains;
using DeepSeekRL.Storage.Resilience;
using DeepSeekRL.Storage.Singletons;
using Npgsql;
using NpgsqlTypes;
using Polly;

namespace DeepSeekRL.Storage.Stores;

/// <summary>A completion of a step as the learner reads it.</summary>
/// <param name="Id">The completion id.</param>
/// <param name="Round">The dynamic-sampling round of its item.</param>
/// <param name="Slot">Its item's slot within the step and round.</param>
/// <param name="PromptIndex">Its prompt's index in the train split.</param>
/// <param name="PolicyVersion">The policy version that sampled it.</param>
/// <param name="Tokens">Its token ids.</param>
/// <param name="LogProbs">The sampling log-probability of each token.</param>
/// <param name="Reward">Its reward (0 when unscored).</param>
/// <param name="FinishReason"><c>stop</c> or <c>length</c>.</param>
public sealed record StepSample(
    long Id, int Round, int Slot, int PromptIndex, int PolicyVersion, int[] Tokens, float[] LogProbs, double Reward, string FinishReason);

/// <summary>The newest learner checkpoint: the optimizer state after a step, whose weights are that step's policy version.</summary>
/// <param name="Step">The step.</param>
/// <param name="PolicyVersion">The policy version published by that step.</param>
/// <param name="Optimizer">The optimizer state file's bytes (checksum verified).</param>
public sealed record LearnerCheckpoint(int Step, int PolicyVersion, byte[] Optimizer);

/// <summary>Where a step's work items are.</summary>
/// <param name="Rollouts">Rollout items.</param>
/// <param name="RolloutsFinished">Rollout items completed, failed or cancelled.</param>
/// <param name="RolloutsCompleted">Rollout items completed.</param>
/// <param name="Rewards">Reward items.</param>
/// <param name="RewardsFinished">Reward items completed, failed or cancelled.</param>
public sealed record StepItems(long Rollouts, long RolloutsFinished, long RolloutsCompleted, long Rewards, long RewardsFinished)
{
    /// <summary>Every rollout item finished, and every completed one's reward item too (the step's rows are final).</summary>
    public bool Finished => Rollouts > 0 && RolloutsFinished >= Rollouts && Rewards >= RolloutsCompleted && RewardsFinished >= Rewards;
}

/// <summary>A rule's mean score over a step's completions and how many scores it is missing.</summary>
/// <param name="Rule">The rule.</param>
/// <param name="Mean">The mean of its scores (null when none).</param>
/// <param name="Missing">Completions without its score.</param>
public sealed record RuleScores(string Rule, double? Mean, long Missing);

/// <summary>Where a step's time went, from its work items' results.</summary>
/// <param name="SamplingSeconds">Sum of the rollout items' seconds (null without rollout results).</param>
/// <param name="PolicyLoadSeconds">Sum of the rollout items' policy load seconds.</param>
/// <param name="CutAt">When the step's first rollout item was cut (Unix seconds).</param>
/// <param name="ScoringSeconds">Sum of the reward items' seconds (null without reward results).</param>
/// <param name="ScoredAt">When the last reward item finished (Unix seconds).</param>
/// <param name="Rules">Each rule's scores.</param>
/// <param name="Reflection">The step's self-verification counts summed over its reward items' <c>reflection</c> results (null without reward results).</param>
public sealed record StepTimings(
    double? SamplingSeconds, double? PolicyLoadSeconds, double? CutAt, double? ScoringSeconds, double? ScoredAt, IReadOnlyList<RuleScores> Rules,
    ReflectionTotals? Reflection);

/// <summary>The totals of an evaluation whose chunks have all finished.</summary>
/// <param name="Step">The step it evaluates after (-1: before any update).</param>
/// <param name="PolicyVersion">The policy version evaluated.</param>
/// <param name="Chunks">Its chunks.</param>
/// <param name="CompletedChunks">Chunks that completed (the rest failed or were cancelled).</param>
/// <param name="Prompts">Prompts evaluated.</param>
/// <param name="Correct">Prompts answered correctly.</param>
/// <param name="RewardSum">Sum of the samples' rewards.</param>
/// <param name="Samples">Samples drawn.</param>
/// <param name="LengthSum">Sum of the samples' lengths (tokens).</param>
/// <param name="Reasoning">Samples that reasoned.</param>
/// <param name="CorrectWhenReasoning">Reasoning samples that were correct.</param>
/// <param name="Reflection">The samples' self-verification counts (null when no chunk reported them).</param>
public sealed record EvaluationTotals(
    int Step, int PolicyVersion, long Chunks, long CompletedChunks, double Prompts, double Correct, double RewardSum, double Samples,
    double LengthSum, double Reasoning, double CorrectWhenReasoning, ReflectionTotals? Reflection);

/// <summary>
/// The learner's rows: checkpoints, the step's completions and timings, step metrics and progress, evaluations and the
/// campaign's completion. Every write commits only while the learner's lease epoch is current (fenced), and returns
/// false when it was not.
/// </summary>
/// <param name="dataSource">The database.</param>
/// <param name="leases">The singleton leases (the fence).</param>
/// <param name="pipeline">The database resilience pipeline.</param>
public sealed class LearnerStore(NpgsqlDataSource dataSource, SingletonLeases leases, ResiliencePipeline? pipeline = null)
{
    private readonly ResiliencePipeline _pipeline = pipeline ?? DatabaseResilience.Default;

    /// <summary>The newest checkpoint of a campaign's learner, or null.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The checkpoint.</returns>
    /// <exception cref="InvalidDataException">The checkpoint's bytes fail their checksum.</exception>
    public async Task<LearnerCheckpoint?> LatestCheckpointAsync(long campaignId, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            await using var command = dataSource.CreateCommand(
                "SELECT step, policy_version, optimizer, sha256 FROM learner_checkpoints WHERE campaign_id = $1 ORDER BY step DESC LIMIT 1");
            command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            await using var reader = await command.ExecuteReaderAsync(ct);
            if (!await reader.ReadAsync(ct))
            {
                return null;
            }

            var bytes = reader.GetFieldValue<byte[]>(2);
            if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != reader.GetString(3))
            {
                throw new InvalidDataException($"campaign {campaignId}: learner checkpoint of step {reader.GetInt32(0)} fails its checksum");
            }

            return new LearnerCheckpoint(reader.GetInt32(0), reader.GetInt32(1), bytes);
        }, cancellationToken);

    /// <summary>Writes a checkpoint (fenced; a checkpoint already written for the step is kept).</summary>
    /// <param name="lease">The learner's lease.</param>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="checkpoint">The checkpoint.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>False when the lease was taken over (nothing written).</returns>
    public async Task<bool> WriteCheckpointAsync(SingletonLease lease, long campaignId, LearnerCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(checkpoint);
        var sha = Convert.ToHexStringLower(SHA256.HashData(checkpoint.Optimizer));
        return await leases.WriteFencedAsync(lease, async (connection, transaction, ct) =>
        {
            await using var save = new NpgsqlCommand("""
                INSERT INTO learner_checkpoints (campaign_id, step, policy_version, epoch, optimizer, sha256) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (campaign_id, step) DO NOTHING
                """, connection, transaction);
            save.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            save.Parameters.Add(new NpgsqlParameter { Value = checkpoint.Step });
            save.Parameters.Add(new NpgsqlParameter { Value = checkpoint.PolicyVersion });
            save.Parameters.Add(new NpgsqlParameter { Value = lease.Epoch });
            save.Parameters.Add(new NpgsqlParameter { Value = checkpoint.Optimizer, NpgsqlDbType = NpgsqlDbType.Bytea });
            save.Parameters.Add(new NpgsqlParameter { Value = sha });
            await save.ExecuteNonQueryAsync(ct);
        }, cancellationToken);
    }

    /// <summary>Counts a step's rollout and reward items by state.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="step">The step.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The counts.</returns>
    public async Task<StepItems> StepItemsAsync(long campaignId, int step, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            await using var command = dataSource.CreateCommand("""
                SELECT count(*) FILTER (WHERE kind = 'rollout'),
                       count(*) FILTER (WHERE kind = 'rollout' AND state IN ('completed', 'failed', 'cancelled')),
                       count(*) FILTER (WHERE kind = 'rollout' AND state = 'completed'),
                       count(*) FILTER (WHERE kind = 'reward'),
                       count(*) FILTER (WHERE kind = 'reward' AND state IN ('completed', 'failed', 'cancelled'))
                  FROM work_items
                 WHERE campaign_id = $1 AND (payload->>'step')::int = $2 AND kind IN ('rollout', 'reward')
                """);
            command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            command.Parameters.Add(new NpgsqlParameter { Value = step });
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            return new StepItems(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));
        }, cancellationToken);

    /// <summary>A step's completions from completed rollout items, ordered by round, slot and sample.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="step">The step.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The completions.</returns>
    public async Task<List<StepSample>> StepSamplesAsync(long campaignId, int step, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            await using var command = dataSource.CreateCommand("""
                SELECT c.id, (w.payload->>'round')::int, (w.payload->>'slot')::int, (w.payload->>'prompt_index')::int, c.policy_version,
                       c.token_ids, c.logprobs, coalesce(c.reward, 0), c.finish_reason
                  FROM completions c JOIN work_items w ON w.id = c.item_id
                 WHERE c.campaign_id = $1 AND c.step = $2 AND w.state = 'completed'
                 ORDER BY 2, 3, c.sample_index
                """);
            command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            command.Parameters.Add(new NpgsqlParameter { Value = step });
            var list = new List<StepSample>();
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                list.Add(new StepSample(reader.GetInt64(0), reader.GetInt32(1), reader.GetInt32(2), reader.GetInt32(3), reader.GetInt32(4),
                    reader.GetFieldValue<int[]>(5), reader.GetFieldValue<float[]>(6), reader.GetDouble(7), reader.GetString(8)));
            }

            return list;
        }, cancellationToken);

    /// <summary>Where a step's time went and each rule's scores.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="step">The step.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The timings.</returns>
    public async Task<StepTimings> StepTimingsAsync(long campaignId, int step, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            double? sampling = null, load = null, cutAt = null, scoring = null, scoredAt = null;
            ReflectionTotals? reflection = null;
            await using (var command = dataSource.CreateCommand("""
                SELECT w.kind, sum((r.result->>'seconds')::float8), sum(coalesce((r.result->>'policy_load_seconds')::float8, 0)),
                       extract(epoch FROM min(w.created_at)), extract(epoch FROM max(w.finished_at)),
                       sum((r.result->'reflection'->>'samples')::bigint), sum((r.result->'reflection'->>'correct_samples')::bigint),
                       sum((r.result->'reflection'->>'verifying')::bigint), sum((r.result->'reflection'->>'detecting')::bigint),
                       sum((r.result->'reflection'->>'repairing')::bigint), sum((r.result->'reflection'->>'correct_when_verifying')::bigint),
                       sum((r.result->'reflection'->>'first_attempt_correct')::bigint)
                  FROM work_items w JOIN work_results r ON r.item_id = w.id
                 WHERE w.campaign_id = $1 AND (w.payload->>'step')::int = $2 AND w.kind IN ('rollout', 'reward')
                 GROUP BY w.kind
                """))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
                command.Parameters.Add(new NpgsqlParameter { Value = step });
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    var seconds = reader.IsDBNull(1) ? 0 : reader.GetDouble(1);
                    if (reader.GetString(0) == "rollout")
                    {
                        sampling = seconds;
                        load = reader.IsDBNull(2) ? 0 : reader.GetDouble(2);
                        cutAt = reader.GetDouble(3);
                    }
                    else
                    {
                        scoring = seconds;
                        scoredAt = reader.GetDouble(4);
                        reflection = ReadReflection(reader, 5);
                    }
                }
            }

            var rules = new List<RuleScores>();
            await using (var command = dataSource.CreateCommand("""
                SELECT s.rule, avg(s.value), count(*) - count(s.value)
                  FROM reward_scores s JOIN completions c ON c.id = s.completion_id
                 WHERE c.campaign_id = $1 AND c.step = $2 GROUP BY s.rule ORDER BY s.rule
                """))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
                command.Parameters.Add(new NpgsqlParameter { Value = step });
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    rules.Add(new RuleScores(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetDouble(1), reader.GetInt64(2)));
                }
            }

            return new StepTimings(sampling, load, cutAt, scoring, scoredAt, rules, reflection);
        }, cancellationToken);

    /// <summary>Seven summed reflection columns from <paramref name="first"/> on; null when none was reported.</summary>
    private static ReflectionTotals? ReadReflection(NpgsqlDataReader reader, int first)
    {
        if (reader.IsDBNull(first))
        {
            return null;
        }

        long Get(int i) => reader.IsDBNull(first + i) ? 0 : Convert.ToInt64(reader.GetValue(first + i), CultureInfo.InvariantCulture);
        return new ReflectionTotals(Get(0), Get(1), Get(2), Get(3), Get(4), Get(5), Get(6));
    }

    /// <summary>
    /// Records a closed step (fenced): its metrics row (kept if one exists: a step recomputed after a restart), the
    /// campaign's progress, and replay mismatches as a counter.
    /// </summary>
    /// <param name="lease">The learner's lease.</param>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="step">The step.</param>
    /// <param name="metricsJson">The step's metrics (a JSON object).</param>
    /// <param name="policyVersion">The policy version published by the step.</param>
    /// <param name="replayMismatches">Replay mismatches to add to the campaign's counter (0: none).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether the write committed, and whether the step's metrics row already existed.</returns>
    public async Task<(bool Committed, bool Existed)> RecordStepAsync(
        SingletonLease lease, long campaignId, int step, string metricsJson, int policyVersion, int replayMismatches, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var existed = false;
        var committed = await leases.WriteFencedAsync(lease, async (connection, transaction, ct) =>
        {
            await using (var insert = new NpgsqlCommand(
                "INSERT INTO step_metrics (campaign_id, step, epoch, metrics) VALUES ($1, $2, $3, $4) ON CONFLICT (campaign_id, step) DO NOTHING",
                connection, transaction))
            {
                insert.Parameters.Add(new NpgsqlParameter { Value = campaignId });
                insert.Parameters.Add(new NpgsqlParameter { Value = step });
                insert.Parameters.Add(new NpgsqlParameter { Value = lease.Epoch });
                insert.Parameters.Add(new NpgsqlParameter { Value = metricsJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
                existed = await insert.ExecuteNonQueryAsync(ct) == 0;
            }

            await using var progress = new NpgsqlCommand("""
                UPDATE campaigns SET steps_completed = greatest(steps_completed, $2), policy_version = greatest(policy_version, $3), updated_at = now()
                 WHERE id = $1
                """, connection, transaction);
            progress.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            progress.Parameters.Add(new NpgsqlParameter { Value = step + 1 });
            progress.Parameters.Add(new NpgsqlParameter { Value = policyVersion });
            await progress.ExecuteNonQueryAsync(ct);
            if (replayMismatches > 0)
            {
                await CampaignStore.AddCountersAsync(connection, transaction, campaignId, [new("learner_replay_mismatches", replayMismatches)], ct);
            }
        }, cancellationToken);
        return (committed, existed);
    }

    /// <summary>Records a running or paused campaign as completed (fenced).</summary>
    /// <param name="lease">The learner's lease.</param>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>False when the lease was taken over.</returns>
    public Task<bool> CompleteCampaignAsync(SingletonLease lease, long campaignId, CancellationToken cancellationToken) =>
        leases.WriteFencedAsync(lease, async (connection, transaction, ct) =>
        {
            await using var done = new NpgsqlCommand(
                "UPDATE campaigns SET state = 'completed', finished_at = now(), updated_at = now() WHERE id = $1 AND state IN ('running', 'paused')",
                connection, transaction);
            done.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            await done.ExecuteNonQueryAsync(ct);
        }, cancellationToken);

    /// <summary>The totals of every evaluation not yet recorded whose chunks all finished, and how many are still running.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The finished evaluations and the count of outstanding ones.</returns>
    public async Task<(List<EvaluationTotals> Finished, int Outstanding)> PendingEvaluationsAsync(long campaignId, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            var finished = new List<EvaluationTotals>();
            var outstanding = 0;
            await using var command = dataSource.CreateCommand("""
                SELECT (w.payload->>'step')::int AS step, min(w.policy_version),
                       count(*), count(*) FILTER (WHERE w.state IN ('completed', 'failed', 'cancelled')), count(*) FILTER (WHERE w.state = 'completed'),
                       sum((r.result->>'prompts')::int), sum((r.result->>'correct')::int), sum((r.result->>'reward_sum')::float8),
                       sum((r.result->>'samples')::int), sum((r.result->>'length_sum')::bigint), sum((r.result->>'reasoning')::int),
                       sum((r.result->>'correct_when_reasoning')::int),
                       sum((r.result->'reflection'->>'samples')::bigint), sum((r.result->'reflection'->>'correct_samples')::bigint),
                       sum((r.result->'reflection'->>'verifying')::bigint), sum((r.result->'reflection'->>'detecting')::bigint),
                       sum((r.result->'reflection'->>'repairing')::bigint), sum((r.result->'reflection'->>'correct_when_verifying')::bigint),
                       sum((r.result->'reflection'->>'first_attempt_correct')::bigint)
                  FROM work_items w LEFT JOIN work_results r ON r.item_id = w.id
                 WHERE w.campaign_id = $1 AND w.kind = 'eval'
                   AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.campaign_id = w.campaign_id AND e.step = (w.payload->>'step')::int)
                 GROUP BY 1
                """);
            command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                if (reader.GetInt64(3) < reader.GetInt64(2))
                {
                    outstanding++;
                    continue;
                }

                double Get(int i) => reader.IsDBNull(i) ? 0 : Convert.ToDouble(reader.GetValue(i), CultureInfo.InvariantCulture);
                finished.Add(new EvaluationTotals(
                    reader.GetInt32(0), reader.GetInt32(1), reader.GetInt64(2), reader.GetInt64(4),
                    Get(5), Get(6), Get(7), Get(8), Get(9), Get(10), Get(11), ReadReflection(reader, 12)));
            }

            return (finished, outstanding);
        }, cancellationToken);

    /// <summary>Records an evaluation's metrics (fenced; an evaluation already recorded is kept).</summary>
    /// <param name="lease">The learner's lease.</param>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="step">The step it evaluates after.</param>
    /// <param name="policyVersion">The policy version evaluated.</param>
    /// <param name="metricsJson">Its metrics (a JSON object).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>False when the lease was taken over.</returns>
    public Task<bool> RecordEvaluationAsync(
        SingletonLease lease, long campaignId, int step, int policyVersion, string metricsJson, CancellationToken cancellationToken) =>
        leases.WriteFencedAsync(lease, async (connection, transaction, ct) =>
        {
            await using var insert = new NpgsqlCommand(
                "INSERT INTO evaluations (campaign_id, step, policy_version, metrics) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                connection, transaction);
            insert.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            insert.Parameters.Add(new NpgsqlParameter { Value = step });
            insert.Parameters.Add(new NpgsqlParameter { Value = policyVersion });
            insert.Parameters.Add(new NpgsqlParameter { Value = metricsJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
            await insert.ExecuteNonQueryAsync(ct);
        }, cancellationToken);
}
