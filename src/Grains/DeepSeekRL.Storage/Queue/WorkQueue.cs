using DeepSeekRL.Storage.Membership;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Resilience;
using Npgsql;
using NpgsqlTypes;
using Polly;

namespace DeepSeekRL.Storage.Queue;

/// <summary>
/// The work queue on PostgreSQL (the River / Oban / Solid Queue pattern): batch claims with
/// <c>FOR UPDATE SKIP LOCKED</c> committed at once, leases owned by a node incarnation and renewed by its heartbeat,
/// conditional completion that writes the result in the same transaction (at most one accepted result per item,
/// ever), rescue of expired leases, one NOTIFY per enqueued batch, and archiving of finished items.
/// </summary>
/// <remarks>
/// Every state change is a single conditional UPDATE whose WHERE names the state it expects, so that a rescue never
/// overwrites a finished item and an item can never be both completed and failed: PostgreSQL re-checks the WHERE
/// against the newest row version after waiting for a concurrent writer.
/// </remarks>
public sealed class WorkQueue(NpgsqlDataSource dataSource, ResiliencePipeline? pipeline = null)
{
    /// <summary>The NOTIFY channel announcing new work; the payload is the kind.</summary>
    public const string Channel = "deepseekrl_work";

    private readonly ResiliencePipeline _pipeline = pipeline ?? DatabaseResilience.Default;

    /// <summary>The data source.</summary>
    public NpgsqlDataSource DataSource => dataSource;

    /// <summary>
    /// A data source for queue traffic whose sessions commit asynchronously (<c>synchronous_commit = off</c>): claims,
    /// lease renewals and completions then cost no disk flush each.
    /// </summary>
    /// <remarks>
    /// Safe for the queue because every transition is recoverable by the lease protocol: a server crash (not a clean
    /// restart, which flushes) loses at most the last few hundred milliseconds of transitions, atomically with what
    /// was written in the same transaction; lost claims and completions leave items leased, and they are released by
    /// rescue or the dead-node sweep and done again, still with at most one accepted result. Do not use it for writes
    /// that are not redone by the queue (SFT samples, policy versions, step metrics).
    /// </remarks>
    /// <param name="connectionString">The connection string.</param>
    /// <returns>The data source.</returns>
    public static NpgsqlDataSource CreateFastDataSource(string connectionString)
    {
        // Queue statements repeat all day: let Npgsql prepare them (parse and plan once per connection).
        // No reset on close: sessions keep their prepared statements and staging tables between uses.
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { MaxAutoPrepare = 32, AutoPrepareMinUsages = 2, NoResetOnClose = true };
        builder.Options = string.IsNullOrEmpty(builder.Options) ? "-c synchronous_commit=off" : builder.Options + " -c synchronous_commit=off";
        return NpgsqlDataSource.Create(builder.ConnectionString);
    }

    /// <summary>Enqueues items in one transaction; keys already present (hot or archived) are skipped. One NOTIFY per
    /// kind in the batch, sent at commit.</summary>
    /// <param name="items">The items.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many new items were stored.</returns>
    public async Task<int> EnqueueAsync(IReadOnlyList<NewWorkItem> items, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0)
        {
            return 0;
        }

        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            var inserted = await EnqueueAsync(connection, transaction, items, ct);
            await transaction.CommitAsync(ct);
            return inserted;
        }, cancellationToken);
    }

    /// <summary>Enqueues items inside the caller's transaction (for example together with the step that creates them).</summary>
    /// <param name="connection">The open connection.</param>
    /// <param name="transaction">The caller's transaction; the NOTIFY is delivered when it commits.</param>
    /// <param name="items">The items.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many new items were stored.</returns>
    public static async Task<int> EnqueueAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<NewWorkItem> items, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        var n = items.Count;
        var campaigns = new long[n];
        var kinds = new string[n];
        var keys = new string[n];
        var payloads = new string[n];
        var versions = new int?[n];
        var priorities = new int[n];
        var maxAttempts = new int[n];
        for (var i = 0; i < n; i++)
        {
            var item = items[i];
            ArgumentException.ThrowIfNullOrEmpty(item.Kind);
            ArgumentException.ThrowIfNullOrEmpty(item.IdempotencyKey);
            campaigns[i] = item.CampaignId;
            kinds[i] = item.Kind;
            keys[i] = item.IdempotencyKey;
            payloads[i] = item.Payload;
            versions[i] = item.PolicyVersion;
            priorities[i] = item.Priority;
            maxAttempts[i] = item.MaxAttempts;
        }

        await using var command = new NpgsqlCommand("""
            WITH input AS (
                SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[], $5::int[], $6::int[], $7::int[])
                       AS t(campaign_id, kind, idempotency_key, payload, policy_version, priority, max_attempts)
            ), inserted AS (
                INSERT INTO work_items (campaign_id, kind, idempotency_key, payload, policy_version, priority, max_attempts)
                SELECT i.campaign_id, i.kind, i.idempotency_key, i.payload, i.policy_version, i.priority, i.max_attempts
                  FROM input i
                 WHERE NOT EXISTS (SELECT 1 FROM work_items_archive a
                                    WHERE a.campaign_id = i.campaign_id AND a.idempotency_key = i.idempotency_key)
                ON CONFLICT (campaign_id, idempotency_key) DO NOTHING
                RETURNING kind
            ), notified AS (
                SELECT pg_notify($8, kind) FROM (SELECT DISTINCT kind FROM inserted) k
            )
            SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM notified)
            """, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = campaigns });
        command.Parameters.Add(new NpgsqlParameter { Value = kinds });
        command.Parameters.Add(new NpgsqlParameter { Value = keys });
        command.Parameters.Add(new NpgsqlParameter { Value = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        command.Parameters.Add(new NpgsqlParameter { Value = versions, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        command.Parameters.Add(new NpgsqlParameter { Value = priorities });
        command.Parameters.Add(new NpgsqlParameter { Value = maxAttempts });
        command.Parameters.Add(new NpgsqlParameter { Value = Channel });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (int)reader.GetInt64(0);
    }

    /// <summary>
    /// Claims up to <paramref name="maxItems"/> pending items of the given kinds in one statement
    /// (<c>FOR UPDATE SKIP LOCKED</c>), committed at once, each with a lease of <paramref name="leaseDuration"/>.
    /// </summary>
    /// <param name="owner">The claiming node.</param>
    /// <param name="kinds">The kinds it works on.</param>
    /// <param name="maxItems">The batch size.</param>
    /// <param name="leaseDuration">The lease time; renewed by the node's heartbeat.</param>
    /// <param name="campaignId">Only this campaign's items, when given.</param>
    /// <param name="maxPolicyVersion">Only items needing at most this policy version, when given.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The claimed items (possibly none), oldest first within priority.</returns>
    public async Task<IReadOnlyList<ClaimedItem>> ClaimAsync(
        NodeIdentity owner, IReadOnlyList<string> kinds, int maxItems, TimeSpan leaseDuration, long? campaignId = null,
        int? maxPolicyVersion = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kinds);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxItems, 1);
        // A claim whose reply is lost leaves its items leased to us; they come back through rescue or the dead-node
        // sweep, so retrying the claim can delay work but never lose or duplicate it.
        if (kinds.Count == 1)
        {
            return await ClaimKindAsync(owner, kinds[0], maxItems, leaseDuration, campaignId, maxPolicyVersion, cancellationToken);
        }

        // One statement per kind keeps every claim an ordered index scan; kinds earlier in the list go first.
        var claimed = new List<ClaimedItem>(maxItems);
        foreach (var kind in kinds)
        {
            if (claimed.Count >= maxItems)
            {
                break;
            }

            claimed.AddRange(await ClaimKindAsync(owner, kind, maxItems - claimed.Count, leaseDuration, campaignId, maxPolicyVersion, cancellationToken));
        }

        return claimed;
    }

    private async Task<IReadOnlyList<ClaimedItem>> ClaimKindAsync(
        NodeIdentity owner, string kind, int maxItems, TimeSpan leaseDuration, long? campaignId, int? maxPolicyVersion,
        CancellationToken cancellationToken)
    {
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            // Filters are spliced in only when given, so each shape gets its own plan (no "$n IS NULL OR ...").
            var filters = (campaignId is null ? string.Empty : " AND campaign_id = $4")
                + (maxPolicyVersion is null ? string.Empty : " AND (policy_version IS NULL OR policy_version <= $5)");
            await using var command = new NpgsqlCommand($"""
                WITH picked AS (
                    SELECT id FROM work_items
                     WHERE state = 'pending' AND kind = $1{filters}
                     ORDER BY priority DESC, id
                     LIMIT $2
                       FOR UPDATE SKIP LOCKED
                )
                UPDATE work_items w
                   SET state = 'running', attempt = w.attempt + 1, lease_node = $3, lease_generation = $6,
                       lease_expires_at = now() + $7, claimed_at = now(), updated_at = now()
                 WHERE w.id = ANY(ARRAY(SELECT id FROM picked))
                RETURNING w.id, w.campaign_id, w.kind, w.idempotency_key, w.payload::text, w.attempt, w.policy_version, w.lease_expires_at, w.priority
                """, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = kind });
            command.Parameters.Add(new NpgsqlParameter { Value = maxItems });
            command.Parameters.Add(new NpgsqlParameter { Value = owner.NodeId });
            command.Parameters.Add(new NpgsqlParameter { Value = (object?)campaignId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
            command.Parameters.Add(new NpgsqlParameter { Value = (object?)maxPolicyVersion ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer });
            command.Parameters.Add(new NpgsqlParameter { Value = owner.Generation });
            command.Parameters.Add(new NpgsqlParameter { Value = leaseDuration });
            var claimed = new List<(int Priority, ClaimedItem Item)>(maxItems);
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                claimed.Add((reader.GetInt32(8), new ClaimedItem(
                    reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                    reader.GetInt32(5), reader.IsDBNull(6) ? null : reader.GetInt32(6), owner, reader.GetFieldValue<DateTimeOffset>(7))));
            }

            // UPDATE ... RETURNING does not keep the picking order: restore it (priority first, then oldest).
            claimed.Sort(static (a, b) => a.Priority != b.Priority ? b.Priority.CompareTo(a.Priority) : a.Item.Id.CompareTo(b.Item.Id));
            return (IReadOnlyList<ClaimedItem>)claimed.Select(c => c.Item).ToList();
        }, cancellationToken);
    }

    /// <summary>
    /// Completes an item if the claimant still holds that attempt's lease, writing the result (and whatever
    /// <paramref name="alsoWrite"/> writes) in the same transaction.
    /// </summary>
    /// <param name="item">The lease from <see cref="ClaimAsync"/>.</param>
    /// <param name="resultJson">The result document.</param>
    /// <param name="alsoWrite">Further writes that must commit with the result, or nothing; called again on a retry.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Accepted, already accepted (a retry after a lost reply), or rejected (nothing written).</returns>
    public async Task<CompletionStatus> CompleteAsync(
        ClaimedItem item, string resultJson,
        Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task>? alsoWrite = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(item);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            // Without further writes the completion is one atomic statement: no explicit transaction, one round trip.
            await using var transaction = alsoWrite is null ? null : await connection.BeginTransactionAsync(ct);
            await using var command = new NpgsqlCommand(CompleteSql, connection, transaction);
            command.Parameters.Add(new NpgsqlParameter { Value = new[] { item.Id } });
            command.Parameters.Add(new NpgsqlParameter { Value = new[] { item.Attempt } });
            command.Parameters.Add(new NpgsqlParameter { Value = item.Owner.NodeId });
            command.Parameters.Add(new NpgsqlParameter { Value = item.Owner.Generation });
            command.Parameters.Add(new NpgsqlParameter { Value = new[] { resultJson }, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
            var accepted = await command.ExecuteNonQueryAsync(ct);
            if (accepted == 0)
            {
                if (transaction is not null)
                {
                    await transaction.RollbackAsync(ct);
                }

                return await WasAcceptedAsync(connection, item, ct) ? CompletionStatus.AlreadyAccepted : CompletionStatus.Rejected;
            }

            if (transaction is not null)
            {
                await alsoWrite!(connection, transaction, ct);
                await transaction.CommitAsync(ct);
            }

            return CompletionStatus.Accepted;
        }, cancellationToken);
    }

    /// <summary>Completes many leased items in one statement; each counts only where its lease still holds.</summary>
    /// <param name="completions">The leases and their result documents (all owned by the same node).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The ids accepted by this call or by an earlier attempt of it.</returns>
    public async Task<IReadOnlyList<long>> CompleteBatchAsync(
        IReadOnlyList<(ClaimedItem Item, string ResultJson)> completions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(completions);
        if (completions.Count == 0)
        {
            return [];
        }

        var owner = completions[0].Item.Owner;
        var ids = new long[completions.Count];
        var attempts = new int[completions.Count];
        var results = new string[completions.Count];
        for (var i = 0; i < completions.Count; i++)
        {
            if (completions[i].Item.Owner != owner)
            {
                throw new ArgumentException("All items of a batch completion must have the same owner.", nameof(completions));
            }

            ids[i] = completions[i].Item.Id;
            attempts[i] = completions[i].Item.Attempt;
            results[i] = completions[i].ResultJson;
        }

        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            // Accepted now or by an earlier attempt of this call whose reply was lost: both are in work_results
            // under this very lease once the first statement has run.
            await using var batch = new NpgsqlBatch(connection)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand(CompleteSql)
                    {
                        Parameters =
                        {
                            new() { Value = ids }, new() { Value = attempts }, new() { Value = owner.NodeId },
                            new() { Value = owner.Generation }, new() { Value = results, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb },
                        },
                    },
                    new NpgsqlBatchCommand("""
                        SELECT r.item_id FROM work_results r
                         WHERE r.item_id = ANY($1) AND r.node_id = $3 AND r.generation = $4
                           AND r.attempt = ($2::int[])[array_position($1, r.item_id)]
                         ORDER BY r.item_id
                        """)
                    {
                        Parameters = { new() { Value = ids }, new() { Value = attempts }, new() { Value = owner.NodeId }, new() { Value = owner.Generation } },
                    },
                },
            };
            var accepted = new List<long>(ids.Length);
            // The INSERT returns no rows, so the reader starts on the SELECT's result.
            await using var reader = await batch.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                accepted.Add(reader.GetInt64(0));
            }

            return (IReadOnlyList<long>)accepted;
        }, cancellationToken);
    }

    /// <summary>Gives up an attempt: the item goes back to pending (if <paramref name="retry"/> and attempts remain) or fails.</summary>
    /// <param name="item">The lease.</param>
    /// <param name="error">Why, stored on the item.</param>
    /// <param name="retry">Whether another attempt may help.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether the lease was still held (otherwise nothing changed).</returns>
    public async Task<bool> FailAsync(ClaimedItem item, string error, bool retry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand("""
                UPDATE work_items
                   SET state = CASE WHEN $5 AND attempt < max_attempts THEN 'pending' ELSE 'failed' END,
                       finished_at = CASE WHEN $5 AND attempt < max_attempts THEN NULL ELSE now() END,
                       last_error = $6, lease_node = NULL, lease_generation = NULL, lease_expires_at = NULL, updated_at = now()
                 WHERE id = $1 AND state = 'running' AND attempt = $2 AND lease_node = $3 AND lease_generation = $4
                """, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = item.Id });
            command.Parameters.Add(new NpgsqlParameter { Value = item.Attempt });
            command.Parameters.Add(new NpgsqlParameter { Value = item.Owner.NodeId });
            command.Parameters.Add(new NpgsqlParameter { Value = item.Owner.Generation });
            command.Parameters.Add(new NpgsqlParameter { Value = retry });
            command.Parameters.Add(new NpgsqlParameter { Value = error });
            return await command.ExecuteNonQueryAsync(ct) == 1;
        }, cancellationToken);
    }

    /// <summary>
    /// Puts back to pending (or fails, after their last attempt) the running items whose lease expired or whose holder
    /// the membership table says is dead: Orleans' failure detection, not a lease timeout, is the usual way a dead
    /// silo's work comes back.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The counts.</returns>
    public async Task<RescueReport> RescueAsync(CancellationToken cancellationToken)
    {
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand($"""
                WITH rescued AS (
                    UPDATE work_items
                       SET state = CASE WHEN attempt >= max_attempts THEN 'failed' ELSE 'pending' END,
                           last_error = CASE WHEN lease_expires_at < now() THEN 'lease of ' || lease_node || '#' || lease_generation || ' expired'
                                             ELSE 'lease released: silo ' || lease_node || '#' || lease_generation || ' is dead' END,
                           finished_at = CASE WHEN attempt >= max_attempts THEN now() END,
                           lease_node = NULL, lease_generation = NULL, lease_expires_at = NULL, updated_at = now()
                     WHERE state = 'running'
                       AND (lease_expires_at < now() OR {MembershipStore.HolderIsDead("lease_node", "lease_generation")})
                    RETURNING state
                )
                SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'failed') FROM rescued
                """, connection);
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            return new RescueReport((int)reader.GetInt64(0), (int)reader.GetInt64(1));
        }, cancellationToken);
    }

    /// <summary>Extends the leases of every item a holder is running, in one statement.</summary>
    /// <param name="owner">The holder.</param>
    /// <param name="leaseDuration">The new remaining lease time.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many leases were renewed.</returns>
    public async Task<int> RenewLeasesAsync(NodeIdentity owner, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand("""
                UPDATE work_items SET lease_expires_at = now() + $3, updated_at = now()
                 WHERE state = 'running' AND lease_node = $1 AND lease_generation = $2
                """, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = owner.NodeId });
            command.Parameters.Add(new NpgsqlParameter { Value = owner.Generation });
            command.Parameters.Add(new NpgsqlParameter { Value = leaseDuration });
            return await command.ExecuteNonQueryAsync(ct);
        }, cancellationToken);
    }

    /// <summary>Wakes the listeners of <see cref="Channel"/> when the caller's transaction commits.</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="transaction">The transaction.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public static async Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var notify = new NpgsqlCommand($"SELECT pg_notify('{Channel}', 'done')", connection, transaction);
        await notify.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Moves items finished longer than <paramref name="olderThan"/> ago to the archive, in batches.</summary>
    /// <param name="olderThan">The age of finished items to move.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many items were archived.</returns>
    public async Task<int> ArchiveFinishedAsync(TimeSpan olderThan, CancellationToken cancellationToken)
    {
        var total = 0;
        while (true)
        {
            // Short transactions of bounded size: a long one would hold back vacuum for the whole database.
            var moved = await _pipeline.ExecuteAsync(async ct =>
            {
                await using var connection = await dataSource.OpenConnectionAsync(ct);
                await using var command = new NpgsqlCommand("""
                    WITH victims AS (
                        SELECT id FROM work_items
                         WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at < now() - $1
                         ORDER BY id LIMIT 5000 FOR UPDATE SKIP LOCKED
                    ), moved AS (
                        DELETE FROM work_items w USING victims v WHERE w.id = v.id RETURNING w.*
                    )
                    INSERT INTO work_items_archive SELECT * FROM moved ON CONFLICT DO NOTHING
                    """, connection);
                command.Parameters.Add(new NpgsqlParameter { Value = olderThan });
                return await command.ExecuteNonQueryAsync(ct);
            }, cancellationToken);
            total += moved;
            if (moved < 5000)
            {
                return total;
            }
        }
    }

    /// <summary>Counts a campaign's items by state (hot table and archive).</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The counts.</returns>
    public async Task<QueueCounts> CountAsync(long campaignId, CancellationToken cancellationToken)
    {
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand("""
                SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'running'),
                       count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE state = 'failed')
                  FROM (SELECT state FROM work_items WHERE campaign_id = $1
                        UNION ALL SELECT state FROM work_items_archive WHERE campaign_id = $1) s
                """, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            return new QueueCounts(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));
        }, cancellationToken);
    }

    // $1 ids, $2 attempts, $3 node, $4 generation, $5 results: completes the rows whose lease still holds and
    // records each result; the primary key of work_results makes a second accepted result impossible.
    // $1 ids, $2 attempts, $3 node, $4 generation, $5 results: completes the rows whose lease still holds and
    // records each result; the primary key of work_results makes a second accepted result impossible. Rows are found
    // with "id = ANY(array)", an index lookup whatever the table statistics say (a join with unnest() was planned as
    // a sequential scan on young tables).
    private const string CompleteSql = """
        WITH done AS (
            UPDATE work_items w
               SET state = 'completed', finished_at = now(), updated_at = now(),
                   lease_node = NULL, lease_generation = NULL, lease_expires_at = NULL
             WHERE w.id = ANY($1) AND w.state = 'running' AND w.lease_node = $3 AND w.lease_generation = $4
               AND w.attempt = ($2::int[])[array_position($1, w.id)]
            RETURNING w.id, w.campaign_id, w.attempt
        )
        INSERT INTO work_results (item_id, campaign_id, attempt, node_id, generation, result)
        SELECT d.id, d.campaign_id, d.attempt, $3, $4, ($5::jsonb[])[array_position($1, d.id)] FROM done d
        """;

    private static async Task<bool> WasAcceptedAsync(NpgsqlConnection connection, ClaimedItem item, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT 1 FROM work_results WHERE item_id = $1 AND attempt = $2 AND node_id = $3 AND generation = $4", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = item.Id });
        command.Parameters.Add(new NpgsqlParameter { Value = item.Attempt });
        command.Parameters.Add(new NpgsqlParameter { Value = item.Owner.NodeId });
        command.Parameters.Add(new NpgsqlParameter { Value = item.Owner.Generation });
        return await command.ExecuteScalarAsync(cancellationToken) is not null;
    }
}
