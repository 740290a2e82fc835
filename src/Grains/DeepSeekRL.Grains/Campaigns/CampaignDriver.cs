using System.Text.Json.Nodes;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Storage.Singletons;
using Npgsql;
using NpgsqlTypes;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>
/// Runs one campaign on the node that holds its learner lease: the coordinator cuts steps (up to the allowed
/// staleness ahead of the learner), the learner closes them, evaluations are cut and gathered, and the campaign is
/// completed. Everything it decides is derived from PostgreSQL, so a driver that starts over on another node picks
/// up where the last one stopped.
/// </summary>
/// <param name="services">The silo's shared services.</param>
/// <param name="campaignId">The campaign.</param>
/// <param name="lease">The learner lease this node holds.</param>
internal sealed class CampaignDriver(SiloServices services, long campaignId, SingletonLease lease)
{
    private readonly HashSet<int> _cut = [];
    private readonly Dictionary<int, int> _rounds = [];

    /// <summary>Runs until the campaign completes, is cancelled or fails, or the lease is lost (an exception).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var definition = await services.Catalog.GetAsync(campaignId, cancellationToken);
        var campaign = new CampaignSteps(definition, services.Repository, services.Queue);
        var learner = new CampaignLearner(definition, services.DataSource, services.Leases, lease, services.Registry, services.Threads)
        {
            Published = (version, weights) => services.Policies.Offer(campaignId, version, weights),
        };
        var step = await learner.ActivateAsync(cancellationToken);
        var status = await campaign.GetStatusAsync(cancellationToken);
        if (status.State == CampaignState.Created)
        {
            await campaign.StartAsync(cancellationToken);
        }

        var algorithm = definition.Spec.Algorithm;
        var evaluate = definition.Spec.Evaluation.EverySteps > 0 && definition.Eval.Count > 0;
        if (evaluate && step == 0)
        {
            await campaign.EvaluateAsync(-1, 0, cancellationToken);
        }

        var ahead = definition.Trains ? algorithm.AllowedStaleness : 1;
        services.Log?.Invoke($"campaign {campaignId}: learner active (lease epoch {lease.Epoch}) from step {step} of {algorithm.Steps}");
        while (step < algorithm.Steps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            status = await campaign.GetStatusAsync(cancellationToken);
            if (status.State is CampaignState.Cancelled or CampaignState.Completed or CampaignState.Failed)
            {
                return;
            }

            if (status.State == CampaignState.Paused)
            {
                await Task.Delay(services.PollInterval, cancellationToken);
                continue;
            }

            for (var j = step; j <= Math.Min(algorithm.Steps - 1, step + ahead); j++)
            {
                if (_cut.Add(j))
                {
                    await campaign.CutStepAsync(j, 0, algorithm.PromptsPerStep, definition.Trains ? learner.PolicyVersion : 0, cancellationToken);
                }
            }

            var groups = await learner.StepGroupsAsync(step, cancellationToken);
            if (groups is null)
            {
                await GatherEvaluationsAsync(cancellationToken);
                await services.WaitForWorkAsync(cancellationToken);
                continue;
            }

            var round = _rounds.GetValueOrDefault(step);
            if (algorithm.DynamicSampling && definition.Trains && groups < algorithm.PromptsPerStep && round < CampaignWork.MaxExtraRounds)
            {
                _rounds[step] = round + 1;
                await campaign.CutStepAsync(step, round + 1, algorithm.PromptsPerStep - groups.Value, learner.PolicyVersion, cancellationToken);
                continue;
            }

            var result = await learner.CloseStepAsync(step, cancellationToken);
            services.Log?.Invoke($"campaign {campaignId}: step {step} closed{(result.Replayed ? " (replayed)" : string.Empty)}, policy version {result.PolicyVersion}");
            if (evaluate && ((step + 1) % definition.Spec.Evaluation.EverySteps == 0 || step + 1 == algorithm.Steps))
            {
                await campaign.EvaluateAsync(step, result.PolicyVersion, cancellationToken);
            }

            await GatherEvaluationsAsync(cancellationToken);
            step++;
        }

        // The last checkpoint and the final evaluations, then done.
        await learner.FlushAsync();
        while (await GatherEvaluationsAsync(cancellationToken) > 0)
        {
            await services.WaitForWorkAsync(cancellationToken);
        }

        var committed = await services.Leases.WriteFencedAsync(lease, async (connection, transaction, ct) =>
        {
            await using var done = new NpgsqlCommand(
                "UPDATE campaigns SET state = 'completed', finished_at = now(), updated_at = now() WHERE id = $1 AND state IN ('running', 'paused')",
                connection, transaction);
            done.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            await done.ExecuteNonQueryAsync(ct);
        }, cancellationToken);
        if (!committed)
        {
            throw new LeaseLostException($"campaign {campaignId}: the learner's lease was taken over before completion was recorded");
        }

        services.Log?.Invoke($"campaign {campaignId}: completed");
    }

    /// <summary>Records every evaluation whose chunks are all finished; returns how many are still outstanding.</summary>
    private async Task<int> GatherEvaluationsAsync(CancellationToken cancellationToken)
    {
        var (ready, outstanding) = await DeepSeekRL.Storage.Resilience.DatabaseResilience.Default.ExecuteAsync(ct => ReadEvaluationsAsync(ct), cancellationToken);
        foreach (var (step, version, metrics) in ready)
        {
            metrics["step"] = step;
            metrics["policy_version"] = version;
            await services.Leases.WriteFencedAsync(lease, async (connection, transaction, ct) =>
            {
                await using var insert = new NpgsqlCommand(
                    "INSERT INTO evaluations (campaign_id, step, policy_version, metrics) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    connection, transaction);
                insert.Parameters.Add(new NpgsqlParameter { Value = campaignId });
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
        await using (var command = services.DataSource.CreateCommand("""
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
            command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
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

/// <summary>What a silo's grains share: the database, the engine's stores, the loaded campaigns and policies.</summary>
public sealed class SiloServices : IAsyncDisposable
{
    private readonly WorkListener _listener;

    /// <summary>Creates the services over a database.</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="threads">Kernel threads for the model.</param>
    /// <param name="log">Receives one-line log messages, or null.</param>
    public SiloServices(NpgsqlDataSource dataSource, int threads = 2, Action<string>? log = null)
    {
        DataSource = dataSource;
        Threads = threads;
        Log = log;
        Queue = new WorkQueue(dataSource);
        Leases = new SingletonLeases(dataSource);
        Registry = new PolicyRegistry(dataSource);
        Nodes = new NodeRegistry(dataSource);
        Repository = new CampaignRepository(dataSource);
        Catalog = new CampaignCatalog(dataSource);
        Policies = new NativePolicyCache(Registry, Catalog, threads);
        Endpoints = new EndpointPolicies();
        _listener = new WorkListener(dataSource);
    }

    /// <summary>The database.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>Kernel threads.</summary>
    public int Threads { get; }

    /// <summary>The log sink.</summary>
    public Action<string>? Log { get; }

    /// <summary>The work queue.</summary>
    public WorkQueue Queue { get; }

    /// <summary>Singleton leases.</summary>
    public SingletonLeases Leases { get; }

    /// <summary>The policy registry.</summary>
    public PolicyRegistry Registry { get; }

    /// <summary>The node registry.</summary>
    public NodeRegistry Nodes { get; }

    /// <summary>The campaign store.</summary>
    public CampaignRepository Repository { get; }

    /// <summary>Loaded campaign definitions.</summary>
    public CampaignCatalog Catalog { get; }

    /// <summary>Held native policies.</summary>
    public NativePolicyCache Policies { get; }

    /// <summary>Endpoint clients.</summary>
    public EndpointPolicies Endpoints { get; }

    /// <summary>How long waits poll when no notification arrives.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Waits for a queue notification or the poll interval.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task.</returns>
    public Task WaitForWorkAsync(CancellationToken cancellationToken) => _listener.WaitAsync(PollInterval, cancellationToken);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _listener.DisposeAsync();
        Catalog.Dispose();
        Endpoints.Dispose();
    }
}
