using System.Collections.Concurrent;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Storage.Stores;
using Npgsql;

namespace DeepSeekRL.Grains.Hosting;

/// <summary>The roles a silo can play.</summary>
public static class SiloRoles
{
    /// <summary>Rollout workers (and evaluations).</summary>
    public const string Rollout = "rollout";

    /// <summary>Reward workers (and the dataset's rejection sampling).</summary>
    public const string Reward = "reward";

    /// <summary>Campaign coordinators and learners (fenced singletons).</summary>
    public const string Learner = "learner";

    /// <summary>The HTTP API and dashboard (hosted by the silo process).</summary>
    public const string Api = "api";

    /// <summary>Every role.</summary>
    public static readonly IReadOnlyList<string> All = [Rollout, Reward, Learner, Api];
}

/// <summary>Options of a silo.</summary>
public sealed class SiloOptions
{
    /// <summary>The node id (stable across restarts of the same silo; default host-pid).</summary>
    public string NodeId { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>The roles.</summary>
    public IReadOnlyList<string> Roles { get; init; } = [SiloRoles.Rollout, SiloRoles.Reward, SiloRoles.Learner];

    /// <summary>Heartbeats, death detection and item leases.</summary>
    public ClusterOptions Cluster { get; init; } = new();

    /// <summary>The learner lease's duration (renewed at a third of it).</summary>
    public TimeSpan LearnerLease { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Only these campaigns (null: all).</summary>
    public long? CampaignId { get; init; }

    /// <summary>
    /// Rollout items a rollout worker claims at once and generates in one batch (items of one campaign and policy
    /// version share the forward passes). 1 (the default) leaves items to other rollout silos; one silo alone on a
    /// machine samples faster in larger batches where sampling, not the learner, dominates (docs/campaigns.md).
    /// </summary>
    public int RolloutBatch { get; init; } = 1;
}

/// <summary>
/// A silo: registers the node, heartbeats (renewing its item leases), rescues expired leases and dead nodes' work,
/// and runs the loops of its roles: rollout and reward workers pulling from the queue, and a learner supervisor that
/// takes the learner lease of every active campaign nobody holds. Every loop survives database outages (it retries).
/// </summary>
public sealed class SiloRuntime : IAsyncDisposable
{
    private readonly SiloServices _services;
    private readonly SiloOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private readonly ConcurrentDictionary<long, Task> _drivers = new();
    private readonly RolloutSampler _rollout;
    private readonly RewardScorer _reward;
    private readonly ConcurrentDictionary<long, RolloutResult> _prepared = new();
    private NodeIdentity _node;

    /// <summary>Creates a silo.</summary>
    /// <param name="services">The shared services.</param>
    /// <param name="options">The options.</param>
    public SiloRuntime(SiloServices services, SiloOptions options)
    {
        _services = services;
        _options = options;
        _rollout = new RolloutSampler(services.Catalog, services.Policies, services.Endpoints);
        _reward = new RewardScorer(services.Catalog);
    }

    /// <summary>The node identity (after <see cref="StartAsync"/>).</summary>
    public NodeIdentity Node => _node;

    /// <summary>Items this silo processed, by kind (for tests and progress).</summary>
    public ConcurrentDictionary<string, long> Processed { get; } = new();

    /// <summary>Registers the node and starts the loops.</summary>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>A task.</returns>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _node = await _services.Nodes.RegisterAsync(_options.NodeId, _options.Roles, null, cancellationToken);
        _services.Log?.Invoke($"silo {_node} joined with roles {string.Join(",", _options.Roles)}");
        var token = _stop.Token;
        _loops.Add(Loop("heartbeat", _options.Cluster.HeartbeatInterval, HeartbeatAsync, token));
        _loops.Add(Loop("maintenance", TimeSpan.FromSeconds(1), MaintainAsync, token));
        if (_options.Roles.Contains(SiloRoles.Rollout))
        {
            _loops.Add(Task.Run(() => WorkLoopAsync([CampaignWork.Rollout, CampaignWork.Evaluation], ProcessRolloutAsync, token, Math.Max(1, _options.RolloutBatch), PrepareRolloutsAsync), token));
        }

        if (_options.Roles.Contains(SiloRoles.Reward))
        {
            _loops.Add(Task.Run(() => WorkLoopAsync([CampaignWork.Reward], ProcessRewardAsync, token), token));
        }

        if (_options.Roles.Contains(SiloRoles.Learner))
        {
            _loops.Add(Loop("learner", TimeSpan.FromMilliseconds(500), SuperviseLearnersAsync, token));
        }
    }

    /// <summary>Stops the loops and leaves the cluster (work in hand goes back through lease expiry).</summary>
    /// <returns>A task.</returns>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_loops.Concat(_drivers.Values));
        }
        catch (OperationCanceledException)
        {
        }

        try
        {
            using var leave = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _services.Nodes.LeaveAsync(_node, leave.Token);
        }
        catch (Exception ex) when (ex is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            // The node will be declared dead instead.
        }

        _stop.Dispose();
    }

    private Task Loop(string name, TimeSpan interval, Func<CancellationToken, Task> body, CancellationToken token) => Task.Run(async () =>
    {
        while (!token.IsCancellationRequested)
        {
            try
            {
                await body(token);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _services.Log?.Invoke($"silo {_node}: {name}: {ex.GetType().Name}: {FirstLine(ex.Message)}; retrying");
            }

            try
            {
                await Task.Delay(interval, token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }, token);

    private async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        var (alive, _) = await _services.Nodes.HeartbeatAsync(_node, _options.Cluster.LeaseDuration, cancellationToken);
        if (!alive)
        {
            // Declared dead while unreachable (its leases were released): join again as a new generation.
            _node = await _services.Nodes.RegisterAsync(_options.NodeId, _options.Roles, null, cancellationToken);
            _services.Log?.Invoke($"silo {_node}: had been declared dead; joined again");
        }
    }

    private async Task MaintainAsync(CancellationToken cancellationToken)
    {
        await _services.Nodes.SweepDeadAsync(_options.Cluster.DeadAfter, cancellationToken);
        await _services.Queue.RescueExpiredAsync(cancellationToken);
    }

    private async Task SuperviseLearnersAsync(CancellationToken cancellationToken)
    {
        foreach (var (id, task) in _drivers)
        {
            if (task.IsCompleted)
            {
                _drivers.TryRemove(id, out _);
            }
        }

        var active = await _services.Repository.ActiveAsync(cancellationToken);
        foreach (var id in active)
        {
            if ((_options.CampaignId is { } only && only != id) || _drivers.ContainsKey(id))
            {
                continue;
            }

            var lease = await _services.Leases.TryAcquireAsync(CampaignLearner.LeaseName(id), _node, _options.LearnerLease, cancellationToken);
            if (lease is null)
            {
                continue;
            }

            _drivers[id] = Task.Run(() => DriveAsync(id, lease, cancellationToken), cancellationToken);
        }
    }

    private async Task DriveAsync(long campaignId, DeepSeekRL.Storage.Singletons.SingletonLease lease, CancellationToken cancellationToken)
    {
        using var held = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var renew = Task.Run(async () =>
        {
            while (!held.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(_options.LearnerLease / 3, held.Token);
                    if (!await _services.Leases.RenewAsync(lease, _options.LearnerLease, held.Token))
                    {
                        _services.Log?.Invoke($"campaign {campaignId}: learner lease lost; stopping this learner");
                        await held.CancelAsync();
                    }
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException)
                {
                    // The database is unreachable: keep trying until the lease would have expired.
                }
            }
        }, CancellationToken.None);
        var keepLease = false;
        try
        {
            await new CampaignDriver(_services, campaignId, lease).RunAsync(held.Token);
        }
        catch (OperationCanceledException) when (held.IsCancellationRequested)
        {
        }
        catch (LeaseLostException ex)
        {
            _services.Log?.Invoke(ex.Message);
        }
        catch (Exception ex)
        {
            _services.Log?.Invoke($"campaign {campaignId}: learner: {ex.GetType().Name}: {FirstLine(ex.Message)}; will retry");

            // A database outage: keep the lease, so that this node takes the campaign up again in the same epoch
            // (nothing to recompute) unless it stays away long enough for the lease to expire.
            keepLease = ex is NpgsqlException or TimeoutException;
            if (ex is InvalidDataException)
            {
                await _services.Repository.TransitionAsync(campaignId, Grains.CampaignState.Failed,
                    [Grains.CampaignState.Created, Grains.CampaignState.Running, Grains.CampaignState.Paused], FirstLine(ex.Message), CancellationToken.None);
            }
        }
        finally
        {
            await held.CancelAsync();
            await renew;
            try
            {
                if (!keepLease)
                {
                    await _services.Leases.ReleaseAsync(lease, CancellationToken.None);
                }
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
            {
                // It expires instead.
            }
        }
    }

    private async Task WorkLoopAsync(
        string[] kinds, Func<ClaimedItem, CancellationToken, Task> process, CancellationToken token, int batch = 1,
        Func<IReadOnlyList<ClaimedItem>, CancellationToken, Task>? prepare = null)
    {
        while (!token.IsCancellationRequested)
        {
            IReadOnlyList<ClaimedItem> items;
            try
            {
                items = await _services.Queue.ClaimAsync(_node, kinds, batch, _options.Cluster.LeaseDuration, _options.CampaignId, cancellationToken: token);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _services.Log?.Invoke($"silo {_node}: claim: {ex.GetType().Name}: {FirstLine(ex.Message)}; retrying");
                await Delay(TimeSpan.FromSeconds(1), token);
                continue;
            }

            if (items.Count == 0)
            {
                try
                {
                    await _services.WaitForWorkAsync(token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            if (prepare is not null && items.Count > 1)
            {
                try
                {
                    await prepare(items, token);
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    // Each item is then processed alone, as without batching.
                    _services.Log?.Invoke($"silo {_node}: batch of {items.Count} {items[0].Kind} items: {ex.GetType().Name}: {FirstLine(ex.Message)}; processing them one by one");
                }
            }

            foreach (var item in items)
            {
                if (!await ProcessOneAsync(item, process, token))
                {
                    return;
                }
            }
        }
    }

    // Processes one claimed item; false when the silo is stopping.
    private async Task<bool> ProcessOneAsync(ClaimedItem item, Func<ClaimedItem, CancellationToken, Task> process, CancellationToken token)
    {
        try
        {
            await process(item, token);
            Processed.AddOrUpdate(item.Kind, 1, (_, n) => n + 1);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception ex)
        {
            _services.Log?.Invoke($"silo {_node}: {item.Kind} item {item.Id} attempt {item.Attempt}: {ex.GetType().Name}: {FirstLine(ex.Message)}");
            try
            {
                await _services.Queue.FailAsync(item, $"{ex.GetType().Name}: {FirstLine(ex.Message)}", retry: true, token);
            }
            catch (Exception failEx) when (failEx is NpgsqlException or TimeoutException)
            {
                // The lease expires and the item is rescued.
            }
        }

        return true;
    }

    // Rolls out the claimed rollout items of each campaign and policy version in one batched generation; the results
    // wait in _prepared for ProcessRolloutAsync (an item without one is rolled out alone).
    private async Task PrepareRolloutsAsync(IReadOnlyList<ClaimedItem> items, CancellationToken cancellationToken)
    {
        _prepared.Clear();
        var works = items.Where(i => i.Kind == CampaignWork.Rollout)
            .Select(i => (Item: i, Work: CampaignJson.Deserialize<RolloutWork>(i.Payload, "rollout item")))
            .ToList();
        foreach (var group in works.GroupBy(w => (w.Work.CampaignId, w.Work.PolicyVersion)).Where(g => g.Count() > 1))
        {
            var list = group.ToList();
            var results = await _rollout.RolloutManyAsync([.. list.Select(w => w.Work)], cancellationToken);
            if (results is null)
            {
                continue;
            }

            for (var i = 0; i < list.Count; i++)
            {
                _prepared[list[i].Item.Id] = results[i];
            }
        }
    }

    private async Task ProcessRolloutAsync(ClaimedItem item, CancellationToken cancellationToken)
    {
        if (item.Kind == CampaignWork.Evaluation)
        {
            var evaluation = CampaignJson.Deserialize<EvaluationWork>(item.Payload, "eval item");
            var chunk = await _rollout.EvaluateAsync(evaluation, cancellationToken);
            await _services.Queue.CompleteAsync(item, CampaignJson.Serialize(chunk), NotifyAsync, cancellationToken);
            return;
        }

        var work = CampaignJson.Deserialize<RolloutWork>(item.Payload, "rollout item");
        var definition = await _services.Catalog.GetAsync(work.CampaignId, cancellationToken);
        var result = _prepared.TryRemove(item.Id, out var prepared) ? prepared : await _rollout.RolloutAsync(work, cancellationToken);
        var prompt = definition.Train[work.PromptIndex].Prompt;
        var records = result.Completions.Select((c, i) => new CompletionRecord(
            work.CampaignId, work.Step, item.Id, i, work.PolicyVersion, prompt, c.TokenIds, c.Text, c.LogProbs, c.FinishReason)).ToList();
        var resultJson = CampaignJson.Serialize(new
        {
            seconds = result.Seconds,
            policy_load_seconds = result.PolicyLoadSeconds,
            completion_tokens = result.CompletionTokens,
            completions = records.Count,
            endpoint_errors = result.EndpointErrors,
        });
        await _services.Queue.CompleteAsync(item, resultJson, async (connection, transaction, ct) =>
        {
            await SampleStore.WriteCompletionsAsync(connection, transaction, records, ct);
            var reward = new RewardWork(work.CampaignId, work.Step, item.Id);
            await WorkQueue.EnqueueAsync(connection, transaction,
                [new NewWorkItem(work.CampaignId, CampaignWork.Reward, $"reward/{work.Step}/{work.Round}/{work.Slot}",
                    CampaignJson.Serialize(reward), work.PolicyVersion, Priority: 10)], ct);
            await CampaignRepository.AddCountersAsync(connection, transaction, work.CampaignId,
                [new("samples_generated", records.Count), new("endpoint_errors", result.EndpointErrors), new("completion_tokens", result.CompletionTokens)], ct);
        }, cancellationToken);
    }

    private async Task ProcessRewardAsync(ClaimedItem item, CancellationToken cancellationToken)
    {
        var work = CampaignJson.Deserialize<RewardWork>(item.Payload, "reward item");
        var definition = await _services.Catalog.GetAsync(work.CampaignId, cancellationToken);
        var completions = new List<StoredCompletion>();
        await using (var command = _services.DataSource.CreateCommand("""
            SELECT c.id, c.step, c.policy_version, (w.payload->>'prompt_index')::int, c.prompt, c.text, cardinality(c.token_ids), c.finish_reason
              FROM completions c JOIN work_items w ON w.id = c.item_id
             WHERE c.item_id = $1 ORDER BY c.sample_index
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = work.RolloutItemId });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var tokens = reader.GetInt32(6);
                completions.Add(new StoredCompletion(reader.GetInt64(0), reader.GetInt32(1), reader.GetInt32(2), reader.GetInt32(3),
                    reader.GetString(4), reader.GetString(5), tokens > 0 ? tokens : null, reader.GetString(7)));
            }
        }

        var scored = await _reward.ScoreAsync(work, completions, cancellationToken);
        var accepted = new SampleFilter(definition, _services.DataSource).Select(completions, scored.Scores);
        var samples = accepted.Select(a => new SftSample(work.CampaignId, a.Completion.Step, a.Completion.PolicyVersion, a.Completion.Id,
            a.Completion.Prompt, a.Reasoning, a.Answer, a.Reward, a.ScoresJson, a.VerdictsJson)).ToList();
        var scores = scored.Scores.SelectMany(s => s.Scores.Select(r => new RewardScore(s.CompletionId, r.Key, r.Value))).ToList();
        var resultJson = CampaignJson.Serialize(new { seconds = scored.Seconds, scored = completions.Count, accepted = samples.Count });
        await _services.Queue.CompleteAsync(item, resultJson, async (connection, transaction, ct) =>
        {
            await SampleStore.WriteScoresAsync(connection, transaction, scores, ct);
            await using (var update = new NpgsqlCommand(
                "UPDATE completions c SET reward = u.r FROM unnest($1::bigint[], $2::float8[]) AS u(id, r) WHERE c.id = u.id", connection, transaction))
            {
                update.Parameters.Add(new NpgsqlParameter { Value = scored.Scores.Select(s => s.CompletionId).ToArray() });
                update.Parameters.Add(new NpgsqlParameter { Value = scored.Scores.Select(s => s.Reward).ToArray() });
                await update.ExecuteNonQueryAsync(ct);
            }

            if (samples.Count > 0)
            {
                await SampleStore.IngestSftSamplesAsync(connection, transaction, samples, ct);
            }

            var counters = new List<KeyValuePair<string, long>> { new("samples_scored", completions.Count), new("samples_accepted", samples.Count) };
            counters.AddRange(scored.MissingByRule.Select(m => new KeyValuePair<string, long>($"reward_missing/{m.Key}", m.Value)));
            await CampaignRepository.AddCountersAsync(connection, transaction, work.CampaignId, counters, ct);
            await NotifyAsync(connection, transaction, ct);
        }, cancellationToken);
    }

    private static async Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var notify = new NpgsqlCommand($"SELECT pg_notify('{WorkQueue.Channel}', 'done')", connection, transaction);
        await notify.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task Delay(TimeSpan delay, CancellationToken token)
    {
        try
        {
            await Task.Delay(delay, token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static string FirstLine(string message)
    {
        var cut = message.IndexOfAny(['\r', '\n']);
        return cut < 0 ? message : message[..cut];
    }
}
