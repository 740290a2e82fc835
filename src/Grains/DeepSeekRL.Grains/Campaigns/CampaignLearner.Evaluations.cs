using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>The learner's recording of evaluations: every evaluation whose chunks have all finished becomes one row.</summary>
public sealed partial class CampaignLearner
{
    /// <summary>Records every evaluation whose chunks are all finished (fenced).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many evaluations are still outstanding.</returns>
    public async Task<int> RecordEvaluationsAsync(CancellationToken cancellationToken)
    {
        var (ready, outstanding) = await _pipeline.ExecuteAsync(ct => ReadEvaluationsAsync(ct), cancellationToken);
        foreach (var (step, version, metrics) in ready)
        {
            metrics["step"] = step;
            metrics["policy_version"] = version;
            await _leases.WriteFencedAsync(_lease, async (connection, transaction, ct) =>
            {
                await using var insert = new NpgsqlCommand(
                    "INSERT INTO evaluations (campaign_id, step, policy_version, metrics) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    connection, transaction);
                insert.Parameters.Add(new NpgsqlParameter { Value = _definition.Id });
                insert.Parameters.Add(new NpgsqlParameter { Value = step });
                insert.Parameters.Add(new NpgsqlParameter { Value = version });
                insert.Parameters.Add(new NpgsqlParameter { Value = metrics.ToJsonString(CampaignJson.Options), NpgsqlDbType = NpgsqlDbType.Jsonb });
                await insert.ExecuteNonQueryAsync(ct);
            }, cancellationToken);
        }

        return outstanding;
    }

    private async ValueTask<(List<(int Step, int Version, JsonObject Metrics)> Ready, int Outstanding)> ReadEvaluationsAsync(CancellationToken ct)
    {
        var ready = new List<(int Step, int Version, JsonObject Metrics)>();
        var outstanding = 0;
        await using (var command = _dataSource.CreateCommand("""
            SELECT (w.payload->>'step')::int AS step, min(w.policy_version),
                   count(*), count(*) FILTER (WHERE w.state IN ('completed', 'failed', 'cancelled')), count(*) FILTER (WHERE w.state = 'completed'),
                   sum((r.result->>'prompts')::int), sum((r.result->>'correct')::int), sum((r.result->>'reward_sum')::float8),
                   sum((r.result->>'samples')::int), sum((r.result->>'length_sum')::bigint), sum((r.result->>'reasoning')::int),
                   sum((r.result->>'correct_when_reasoning')::int)
              FROM work_items w LEFT JOIN work_results r ON r.item_id = w.id
             WHERE w.campaign_id = $1 AND w.kind = 'eval'
               AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.campaign_id = w.campaign_id AND e.step = (w.payload->>'step')::int)
             GROUP BY 1
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = _definition.Id });
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                if (reader.GetInt64(3) < reader.GetInt64(2))
                {
                    outstanding++;
                    continue;
                }

                double Get(int i) => reader.IsDBNull(i) ? 0 : Convert.ToDouble(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
                var prompts = Get(5);
                var samples = Get(8);
                var reasoning = Get(10);
                ready.Add((reader.GetInt32(0), reader.GetInt32(1), new JsonObject
                {
                    ["accuracy"] = prompts > 0 ? Get(6) / prompts : null,
                    ["reward_mean"] = samples > 0 ? Get(7) / samples : null,
                    ["response_length_mean"] = samples > 0 ? Get(9) / samples : null,
                    ["reasoning_fraction"] = samples > 0 ? reasoning / samples : null,
                    ["accuracy_when_reasoning"] = reasoning > 0 ? Get(11) / reasoning : null,
                    ["prompts"] = prompts,
                    ["samples"] = samples,
                    ["failed_chunks"] = reader.GetInt64(2) - reader.GetInt64(4),
                }));
            }
        }

        return (ready, outstanding);
    }
}
