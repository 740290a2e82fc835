using DeepSeekRL.Testing;
using System.Collections.Concurrent;
using DeepSeekRL.Storage.Database;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Storage.Tests.Database;
using Npgsql;

namespace DeepSeekRL.Storage.Tests.Queue;

public sealed class WorkQueueTests(ScratchClusters scratch) : IClassFixture<ScratchClusters>
{
    private static readonly string[] Rollout = ["rollout"];
    private static readonly TimeSpan LongLease = TimeSpan.FromMinutes(10);
    private static readonly NodeIdentity NodeA = new("node-a", 1);
    private static readonly NodeIdentity NodeB = new("node-b", 1);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EnqueueAsync_SameKeyTwice_StoresOneItemPerCampaignAndKey()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);

        var first = await queue.EnqueueAsync([EngineDatabase.Item(1, "a"), EngineDatabase.Item(1, "b")], Ct);
        var second = await queue.EnqueueAsync([EngineDatabase.Item(1, "a"), EngineDatabase.Item(1, "b"), EngineDatabase.Item(1, "c")], Ct);
        var otherCampaign = await queue.EnqueueAsync([EngineDatabase.Item(2, "a")], Ct);

        Assert.Equal(2, first);
        Assert.Equal(1, second);
        Assert.Equal(1, otherCampaign);
        Assert.Equal(3L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_items WHERE campaign_id = 1", Ct));
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_items WHERE campaign_id = 2", Ct));
    }

    [Fact]
    public async Task EnqueueAsync_KeyOfArchivedItem_IsSkipped()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        Assert.Equal(1, await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct));
        var claimed = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, LongLease, cancellationToken: Ct));
        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(claimed, "{}", cancellationToken: Ct));
        Assert.Equal(1, await queue.ArchiveFinishedAsync(TimeSpan.Zero, Ct));

        var again = await queue.EnqueueAsync([EngineDatabase.Item(1, "a"), EngineDatabase.Item(1, "b")], Ct);

        Assert.Equal(1, again);
        Assert.Equal(["b"], await db.DataSource.ColumnAsync<string>("SELECT idempotency_key FROM work_items", Ct));
        Assert.Equal(["a"], await db.DataSource.ColumnAsync<string>("SELECT idempotency_key FROM work_items_archive", Ct));
    }

    [Fact]
    public async Task ClaimAsync_MixedPriorities_TakesUpToNByPriorityThenIdWithAttemptOne()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        // Ids follow the order of the batch: k0..k5.
        await queue.EnqueueAsync(
        [
            EngineDatabase.Item(1, "k0", priority: 0), EngineDatabase.Item(1, "k1", priority: 5), EngineDatabase.Item(1, "k2", priority: 0),
            EngineDatabase.Item(1, "k3", priority: 5), EngineDatabase.Item(1, "k4", priority: 1), EngineDatabase.Item(1, "k5", priority: 0),
        ], Ct);

        var batch = await queue.ClaimAsync(NodeA, Rollout, 3, LongLease, cancellationToken: Ct);
        var oneByOne = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            oneByOne.AddRange((await queue.ClaimAsync(NodeB, Rollout, 1, LongLease, cancellationToken: Ct)).Select(c => c.IdempotencyKey));
        }

        Assert.Equal(["k1", "k3", "k4"], batch.Select(c => c.IdempotencyKey));
        Assert.All(batch, c => Assert.Equal(1, c.Attempt));
        Assert.All(batch, c => Assert.Equal(NodeA, c.Owner));
        Assert.All(batch, c => Assert.Equal("{\"key\": \"" + c.IdempotencyKey + "\"}", c.Payload));
        // After the batch, single claims continue in priority-then-id order, and an empty queue yields nothing.
        Assert.Equal(["k0", "k2", "k5"], oneByOne);
        Assert.Equal(6L, await db.DataSource.ScalarAsync<long>(
            "SELECT count(*) FROM work_items WHERE state = 'running' AND attempt = 1 AND lease_expires_at > now()", Ct));
        Assert.Equal(3L, await db.DataSource.ScalarAsync<long>(
            "SELECT count(*) FROM work_items WHERE lease_node = 'node-a' AND lease_generation = 1", Ct));
    }

    [Fact]
    public async Task ClaimAsync_Filters_RespectKindsCampaignAndMaxPolicyVersion()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync(
        [
            EngineDatabase.Item(1, "r-none"), EngineDatabase.Item(1, "r-v1", policyVersion: 1), EngineDatabase.Item(1, "r-v2", policyVersion: 2),
            EngineDatabase.Item(1, "r-v3", policyVersion: 3), EngineDatabase.Item(1, "reward", kind: "reward"), EngineDatabase.Item(2, "c2"),
        ], Ct);

        var rewards = await queue.ClaimAsync(NodeA, ["reward", "eval"], 10, LongLease, cancellationToken: Ct);
        var campaign2 = await queue.ClaimAsync(NodeA, Rollout, 10, LongLease, campaignId: 2, cancellationToken: Ct);
        var upToV2 = await queue.ClaimAsync(NodeA, Rollout, 10, LongLease, campaignId: 1, maxPolicyVersion: 2, cancellationToken: Ct);
        var rest = await queue.ClaimAsync(NodeA, Rollout, 10, LongLease, cancellationToken: Ct);

        Assert.Equal(["reward"], rewards.Select(c => c.IdempotencyKey));
        Assert.Equal(["c2"], campaign2.Select(c => c.IdempotencyKey));
        Assert.Equal(2, campaign2[0].CampaignId);
        Assert.Equal(["r-none", "r-v1", "r-v2"], upToV2.Select(c => c.IdempotencyKey));
        Assert.Equal([null, 1, 2], upToV2.Select(c => c.PolicyVersion));
        Assert.Equal(["r-v3"], rest.Select(c => c.IdempotencyKey));
        Assert.Empty(await queue.ClaimAsync(NodeA, Rollout, 10, LongLease, cancellationToken: Ct));
    }

    [Fact]
    public async Task ClaimAsync_ManyConcurrentClaimers_CompleteEveryItemExactlyOnce()
    {
        const int Items = 2000;
        const int Claimers = 8;
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        for (var offset = 0; offset < Items; offset += 500)
        {
            await queue.EnqueueAsync(Enumerable.Range(offset, 500).Select(i => EngineDatabase.Item(1, "item-" + i)).ToList(), Ct);
        }

        var identities = new NodeIdentity[Claimers];
        for (var i = 0; i < Claimers; i++)
        {
            identities[i] = new NodeIdentity("worker-" + i, 1);
        }

        var accepted = new ConcurrentBag<(long Id, int Claimer)>();
        using var barrier = new Barrier(Claimers);
        var workers = Enumerable.Range(0, Claimers).Select(w => Task.Run(async () =>
        {
            barrier.SignalAndWait(Ct);
            var batchSize = 7 + (w * 5);
            while (true)
            {
                var claimed = await queue.ClaimAsync(identities[w], Rollout, batchSize, LongLease, cancellationToken: Ct);
                if (claimed.Count == 0)
                {
                    // Leases are long and nobody fails: no pending item means every item is claimed by someone.
                    return;
                }

                if (w % 2 == 0)
                {
                    var ids = await queue.CompleteBatchAsync(claimed.Select(c => (c, $$"""{"by":{{w}}}""")).ToList(), Ct);
                    Assert.Equal(claimed.Select(c => c.Id), ids);
                    foreach (var id in ids)
                    {
                        accepted.Add((id, w));
                    }
                }
                else
                {
                    foreach (var c in claimed)
                    {
                        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(c, $$"""{"by":{{w}}}""", cancellationToken: Ct));
                        accepted.Add((c.Id, w));
                    }
                }
            }
        }, Ct)).ToArray();
        await Task.WhenAll(workers);

        Assert.Equal(Items, accepted.Count);
        Assert.Equal(Items, accepted.Select(a => a.Id).Distinct().Count());
        Assert.Equal(Items, (int)await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_results", Ct));
        Assert.Equal(Items, (int)await db.DataSource.ScalarAsync<long>("SELECT count(DISTINCT item_id) FROM work_results", Ct));
        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>(
            "SELECT count(*) FROM work_items WHERE state <> 'completed' OR attempt <> 1 OR lease_node IS NOT NULL", Ct));
        // Every result names the claimer that had it accepted.
        var byClaimer = accepted.ToDictionary(a => a.Id, a => a.Claimer);
        await using (var command = db.DataSource.CreateCommand("SELECT item_id, node_id, (result->>'by')::int FROM work_results"))
        await using (var reader = await command.ExecuteReaderAsync(Ct))
        {
            while (await reader.ReadAsync(Ct))
            {
                var claimer = byClaimer[reader.GetInt64(0)];
                Assert.Equal("worker-" + claimer, reader.GetString(1));
                Assert.Equal(claimer, reader.GetInt32(2));
            }
        }

        Assert.Equal(new QueueCounts(0, 0, Items, 0), await queue.CountAsync(1, Ct));
    }

    [Fact]
    public async Task CompleteAsync_NotTheLeaseHolder_IsRejectedAndWritesNothing()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await db.DataSource.ExecuteAsync("CREATE TABLE side_effects (item_id bigint)", Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct);
        var item = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, LongLease, cancellationToken: Ct));
        var calls = 0;
        Task AlsoWrite(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken ct)
        {
            Interlocked.Increment(ref calls);
            return InsertSideEffectAsync(connection, transaction, item.Id, ct);
        }

        var otherNode = await queue.CompleteAsync(item with { Owner = NodeB }, """{"x":1}""", AlsoWrite, Ct);
        var wrongAttempt = await queue.CompleteAsync(item with { Attempt = 2 }, """{"x":1}""", AlsoWrite, Ct);
        var wrongGeneration = await queue.CompleteAsync(item with { Owner = NodeA with { Generation = 2 } }, """{"x":1}""", AlsoWrite, Ct);

        Assert.Equal(CompletionStatus.Rejected, otherNode);
        Assert.Equal(CompletionStatus.Rejected, wrongAttempt);
        Assert.Equal(CompletionStatus.Rejected, wrongGeneration);
        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_results", Ct));
        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM side_effects", Ct));
        Assert.Equal(0, calls);
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>(
            "SELECT count(*) FROM work_items WHERE state = 'running' AND lease_node = 'node-a' AND lease_generation = 1 AND attempt = 1", Ct));
    }

    [Fact]
    public async Task CompleteAsync_HolderAndRetry_AcceptedThenAlreadyAcceptedWithOneResultAndSideEffect()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await db.DataSource.ExecuteAsync("CREATE TABLE side_effects (item_id bigint)", Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct);
        var item = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, LongLease, cancellationToken: Ct));

        var first = await queue.CompleteAsync(item, """{"answer":42}""", (c, t, ct) => InsertSideEffectAsync(c, t, item.Id, ct), Ct);
        var retry = await queue.CompleteAsync(item, """{"answer":43}""", (c, t, ct) => InsertSideEffectAsync(c, t, item.Id, ct), Ct);

        Assert.Equal(CompletionStatus.Accepted, first);
        Assert.Equal(CompletionStatus.AlreadyAccepted, retry);
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM side_effects", Ct));
        Assert.Equal(42, await db.DataSource.ScalarAsync<int>("SELECT (result->>'answer')::int FROM work_results WHERE item_id = $1", Ct, item.Id));
        Assert.Equal("completed", await db.DataSource.ScalarAsync<string>("SELECT state FROM work_items WHERE id = $1", Ct, item.Id));
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>(
            "SELECT count(*) FROM work_results WHERE item_id = $1 AND attempt = 1 AND node_id = 'node-a' AND generation = 1", Ct, item.Id));
    }

    [Fact]
    public async Task CompleteAsync_AlsoWriteThrows_RollsBackResultAndKeepsLease()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await db.DataSource.ExecuteAsync("CREATE TABLE side_effects (item_id bigint)", Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct);
        var item = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, LongLease, cancellationToken: Ct));

        await Assert.ThrowsAsync<InvalidOperationException>(() => queue.CompleteAsync(item, "{}", async (c, t, ct) =>
        {
            await InsertSideEffectAsync(c, t, item.Id, ct);
            throw new InvalidOperationException("the store failed");
        }, Ct));

        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM side_effects", Ct));
        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_results", Ct));
        Assert.Equal("running", await db.DataSource.ScalarAsync<string>("SELECT state FROM work_items WHERE id = $1", Ct, item.Id));
        // The lease still holds: the holder can complete it afterwards.
        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(item, "{}", (c, t, ct) => InsertSideEffectAsync(c, t, item.Id, ct), Ct));
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM side_effects", Ct));
    }

    [Fact]
    public async Task CompleteBatchAsync_MixedLeases_AcceptsOnlyHeldOnesAndIsRetrySafe()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync(Enumerable.Range(0, 4).Select(i => EngineDatabase.Item(1, "k" + i)).ToList(), Ct);
        var claimed = await queue.ClaimAsync(NodeA, Rollout, 4, LongLease, cancellationToken: Ct);
        Assert.Equal(4, claimed.Count);
        Assert.True(await queue.FailAsync(claimed[3], "gave up", retry: false, Ct));
        List<(ClaimedItem, string)> batch =
        [
            (claimed[0], """{"i":0}"""), (claimed[1], """{"i":1}"""), (claimed[2] with { Attempt = 2 }, """{"i":2}"""), (claimed[3], """{"i":3}"""),
        ];

        var accepted = await queue.CompleteBatchAsync(batch, Ct);
        var retried = await queue.CompleteBatchAsync(batch, Ct);

        Assert.Equal([claimed[0].Id, claimed[1].Id], accepted);
        Assert.Equal([claimed[0].Id, claimed[1].Id], retried);
        Assert.Equal([claimed[0].Id, claimed[1].Id], await db.DataSource.ColumnAsync<long>("SELECT item_id FROM work_results ORDER BY item_id", Ct));
        Assert.Equal(["completed", "completed", "running", "failed"],
            await db.DataSource.ColumnAsync<string>("SELECT state FROM work_items ORDER BY id", Ct));
        var mixedOwners = new List<(ClaimedItem, string)> { (claimed[2], "{}"), (claimed[2] with { Owner = NodeB }, "{}") };
        await Assert.ThrowsAsync<ArgumentException>(() => queue.CompleteBatchAsync(mixedOwners, Ct));
        Assert.Equal("running", await db.DataSource.ScalarAsync<string>("SELECT state FROM work_items WHERE id = $1", Ct, claimed[2].Id));
    }

    [Fact]
    public async Task FailAsync_WithRetry_ReturnsToPendingUntilMaxAttemptsThenFails()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a", maxAttempts: 2)], Ct);

        var first = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, LongLease, cancellationToken: Ct));
        Assert.True(await queue.FailAsync(first, "boom 1", retry: true, Ct));
        Assert.Equal("pending", await db.DataSource.ScalarAsync<string>("SELECT state FROM work_items", Ct));
        Assert.Equal("boom 1", await db.DataSource.ScalarAsync<string>("SELECT last_error FROM work_items", Ct));
        Assert.False(await queue.FailAsync(first, "stale", retry: true, Ct));

        var second = Assert.Single(await queue.ClaimAsync(NodeB, Rollout, 1, LongLease, cancellationToken: Ct));
        Assert.Equal(2, second.Attempt);
        Assert.True(await queue.FailAsync(second, "boom 2", retry: true, Ct));

        Assert.Equal("failed", await db.DataSource.ScalarAsync<string>("SELECT state FROM work_items", Ct));
        Assert.Equal("boom 2", await db.DataSource.ScalarAsync<string>("SELECT last_error FROM work_items", Ct));
        Assert.True(await db.DataSource.ScalarAsync<bool>("SELECT finished_at IS NOT NULL AND lease_node IS NULL FROM work_items", Ct));
        Assert.Empty(await queue.ClaimAsync(NodeA, Rollout, 1, LongLease, cancellationToken: Ct));
        Assert.Equal(new QueueCounts(0, 0, 0, 1), await queue.CountAsync(1, Ct));
    }

    [Fact]
    public async Task FailAsync_WithoutRetry_FailsAtOnce()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a", maxAttempts: 5)], Ct);
        var item = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, LongLease, cancellationToken: Ct));

        Assert.True(await queue.FailAsync(item, "bad input", retry: false, Ct));

        Assert.Equal("failed", await db.DataSource.ScalarAsync<string>("SELECT state FROM work_items", Ct));
        Assert.Equal(1, await db.DataSource.ScalarAsync<int>("SELECT attempt FROM work_items", Ct));
    }

    [Fact]
    public async Task FailAsync_CompletedItem_ChangesNothing()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct);
        var item = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, LongLease, cancellationToken: Ct));
        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(item, "{}", cancellationToken: Ct));
        var before = await RowAsync(db.DataSource, item.Id);

        Assert.False(await queue.FailAsync(item, "too late", retry: true, Ct));
        Assert.False(await queue.FailAsync(item, "too late", retry: false, Ct));

        Assert.Equal(before, await RowAsync(db.DataSource, item.Id));
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_results", Ct));
    }

    [Fact]
    public async Task RescueAsync_ExpiredLeases_RequeueThenFailAfterMaxAttempts()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a", maxAttempts: 2), EngineDatabase.Item(1, "b", maxAttempts: 2)], Ct);
        var shortLease = TimeSpan.FromMilliseconds(1);

        Assert.Equal(2, (await queue.ClaimAsync(NodeA, Rollout, 2, shortLease, cancellationToken: Ct)).Count);
        await WaitForExpiredLeasesAsync(db.DataSource, 2);
        var firstRescue = await queue.RescueAsync(Ct);
        var second = await queue.ClaimAsync(NodeB, Rollout, 2, shortLease, cancellationToken: Ct);
        await WaitForExpiredLeasesAsync(db.DataSource, 2);
        var secondRescue = await queue.RescueAsync(Ct);

        Assert.Equal(new RescueReport(2, 0), firstRescue);
        Assert.Equal([2, 2], second.Select(c => c.Attempt));
        Assert.Equal(new RescueReport(0, 2), secondRescue);
        Assert.Equal(2L, await db.DataSource.ScalarAsync<long>(
            "SELECT count(*) FROM work_items WHERE state = 'failed' AND finished_at IS NOT NULL AND lease_node IS NULL AND last_error LIKE '%node-b#1 expired'", Ct));
        Assert.Equal(new RescueReport(0, 0), await queue.RescueAsync(Ct));
    }

    [Fact]
    public async Task RescueAsync_UnexpiredLease_IsLeftAlone()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct);
        var item = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, LongLease, cancellationToken: Ct));

        Assert.Equal(new RescueReport(0, 0), await queue.RescueAsync(Ct));
        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(item, "{}", cancellationToken: Ct));
    }

    [Fact]
    public async Task RescueAsync_CompletedItem_IsNeverTouched()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync(Enumerable.Range(0, 3).Select(i => EngineDatabase.Item(1, "k" + i)).ToList(), Ct);
        var claimed = await queue.ClaimAsync(NodeA, Rollout, 3, LongLease, cancellationToken: Ct);
        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(claimed[0], """{"done":true}""", cancellationToken: Ct));
        var before = await RowAsync(db.DataSource, claimed[0].Id);
        Assert.Equal(2, await db.DataSource.ExecuteAsync(
            "UPDATE work_items SET lease_expires_at = now() - interval '1 hour' WHERE state = 'running'", Ct));

        var report = await queue.RescueAsync(Ct);

        Assert.Equal(new RescueReport(2, 0), report);
        Assert.Equal(before, await RowAsync(db.DataSource, claimed[0].Id));
        Assert.Equal(["completed", "pending", "pending"], await db.DataSource.ColumnAsync<string>("SELECT state FROM work_items ORDER BY id", Ct));
        Assert.Equal([claimed[0].Id], await db.DataSource.ColumnAsync<long>("SELECT item_id FROM work_results", Ct));
    }

    [Fact]
    public async Task RescueAsync_RacingCompletions_EachItemEndsCompletedWithOneResultOrRequeuedWithNone()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync(Enumerable.Range(0, 400).Select(i => EngineDatabase.Item(1, "k" + i)).ToList(), Ct);
        var claimed = await queue.ClaimAsync(NodeA, Rollout, 400, LongLease, cancellationToken: Ct);
        Assert.Equal(400, claimed.Count);
        await db.DataSource.ExecuteAsync("UPDATE work_items SET lease_expires_at = now() - interval '1 second'", Ct);
        using var barrier = new Barrier(3);

        var completer = Task.Run(async () =>
        {
            barrier.SignalAndWait(Ct);
            var accepted = new List<long>();
            foreach (var chunk in claimed.Chunk(10))
            {
                accepted.AddRange(await queue.CompleteBatchAsync(chunk.Select(c => (c, "{}")).ToList(), Ct));
            }

            return accepted;
        }, Ct);
        var rescuers = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            barrier.SignalAndWait(Ct);
            return await queue.RescueAsync(Ct);
        }, Ct)).ToArray();
        var accepted = await completer;
        var reports = await Task.WhenAll(rescuers);

        var completed = await db.DataSource.ColumnAsync<long>("SELECT id FROM work_items WHERE state = 'completed' ORDER BY id", Ct);
        var results = await db.DataSource.ColumnAsync<long>("SELECT item_id FROM work_results ORDER BY item_id", Ct);
        var pending = await db.DataSource.ColumnAsync<long>("SELECT id FROM work_items WHERE state = 'pending' ORDER BY id", Ct);
        Assert.Equal(accepted.Order(), completed);
        Assert.Equal(completed, results);
        Assert.Equal(400, completed.Count + pending.Count);
        Assert.Equal(pending.Count, reports.Sum(r => r.Requeued));
        Assert.All(reports, r => Assert.Equal(0, r.Failed));
    }

    [Fact]
    public async Task CompleteAsync_OriginalClaimantAfterRescueAndReclaim_IsRejectedWhileNewClaimantIsAccepted()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct);
        var original = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, TimeSpan.FromMilliseconds(1), cancellationToken: Ct));
        await WaitForExpiredLeasesAsync(db.DataSource, 1);
        Assert.Equal(new RescueReport(1, 0), await queue.RescueAsync(Ct));
        var reclaimed = Assert.Single(await queue.ClaimAsync(NodeB, Rollout, 1, LongLease, cancellationToken: Ct));

        var late = await queue.CompleteAsync(original, """{"by":"a"}""", cancellationToken: Ct);
        var lateBatch = await queue.CompleteBatchAsync([(original, """{"by":"a"}""")], Ct);
        var current = await queue.CompleteAsync(reclaimed, """{"by":"b"}""", cancellationToken: Ct);

        Assert.Equal(2, reclaimed.Attempt);
        Assert.Equal(CompletionStatus.Rejected, late);
        Assert.Empty(lateBatch);
        Assert.Equal(CompletionStatus.Accepted, current);
        Assert.Equal(CompletionStatus.Rejected, await queue.CompleteAsync(original, """{"by":"a"}""", cancellationToken: Ct));
        Assert.Equal("b", await db.DataSource.ScalarAsync<string>(
            "SELECT result->>'by' FROM work_results WHERE item_id = $1 AND attempt = 2 AND node_id = 'node-b'", Ct, original.Id));
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_results", Ct));
    }

    [Fact]
    public async Task CompleteAsync_SameNodeReclaimedNextAttempt_OldAttemptIsRejected()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct);
        var first = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, TimeSpan.FromMilliseconds(1), cancellationToken: Ct));
        await WaitForExpiredLeasesAsync(db.DataSource, 1);
        await queue.RescueAsync(Ct);
        var second = Assert.Single(await queue.ClaimAsync(NodeA, Rollout, 1, LongLease, cancellationToken: Ct));

        Assert.Equal(CompletionStatus.Rejected, await queue.CompleteAsync(first, "{}", cancellationToken: Ct));
        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(second, "{}", cancellationToken: Ct));
        Assert.Equal(2, await db.DataSource.ScalarAsync<int>("SELECT attempt FROM work_results", Ct));
    }

    [Fact]
    public async Task CountAsync_ItemsInEveryState_CountsPerStateIncludingArchiveAndOnlyThatCampaign()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync(Enumerable.Range(0, 6).Select(i => EngineDatabase.Item(1, "k" + i)).Append(EngineDatabase.Item(2, "other")).ToList(), Ct);
        var claimed = await queue.ClaimAsync(NodeA, Rollout, 4, LongLease, campaignId: 1, cancellationToken: Ct);
        await queue.CompleteAsync(claimed[0], "{}", cancellationToken: Ct);
        await queue.CompleteAsync(claimed[1], "{}", cancellationToken: Ct);
        await queue.FailAsync(claimed[2], "no", retry: false, Ct);

        Assert.Equal(new QueueCounts(2, 1, 2, 1), await queue.CountAsync(1, Ct));
        Assert.Equal(new QueueCounts(1, 0, 0, 0), await queue.CountAsync(2, Ct));
        Assert.Equal(new QueueCounts(0, 0, 0, 0), await queue.CountAsync(3, Ct));
        Assert.Equal(3, await queue.ArchiveFinishedAsync(TimeSpan.Zero, Ct));
        Assert.Equal(new QueueCounts(2, 1, 2, 1), await queue.CountAsync(1, Ct));
    }

    [Fact]
    public async Task ArchiveFinishedAsync_MixedStates_MovesOnlyFinishedRowsOldEnough()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync(Enumerable.Range(0, 4).Select(i => EngineDatabase.Item(1, "k" + i)).ToList(), Ct);
        var claimed = await queue.ClaimAsync(NodeA, Rollout, 3, LongLease, cancellationToken: Ct);
        await queue.CompleteAsync(claimed[0], "{}", cancellationToken: Ct);
        await queue.FailAsync(claimed[1], "no", retry: false, Ct);
        var completedRow = await RowAsync(db.DataSource, claimed[0].Id);

        var tooYoung = await queue.ArchiveFinishedAsync(TimeSpan.FromHours(1), Ct);
        var moved = await queue.ArchiveFinishedAsync(TimeSpan.Zero, Ct);
        var again = await queue.ArchiveFinishedAsync(TimeSpan.Zero, Ct);

        Assert.Equal(0, tooYoung);
        Assert.Equal(2, moved);
        Assert.Equal(0, again);
        Assert.Equal(["running", "pending"], await db.DataSource.ColumnAsync<string>("SELECT state FROM work_items ORDER BY id", Ct));
        Assert.Equal(["completed", "failed"], await db.DataSource.ColumnAsync<string>("SELECT state FROM work_items_archive ORDER BY id", Ct));
        Assert.Equal(completedRow, await RowAsync(db.DataSource, claimed[0].Id, "work_items_archive"));
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_results", Ct));
    }

    [Fact]
    public async Task ClaimAndComplete_PostgresRestartsMidRun_EveryItemCompletedExactlyOnce()
    {
        const int Items = 3000;
        const int Loops = 3;
        var cluster = scratch.NewCluster();
        var started = await cluster.StartAsync(Ct);
        Assert.True(started.Succeeded, started.Error);
        await using var dataSource = NpgsqlDataSource.Create(started.Value);
        Assert.True((await MigrationRunner.ApplyAsync(dataSource, Migration.Embedded(), Ct)).Succeeded);
        var queue = new WorkQueue(dataSource);
        for (var offset = 0; offset < Items; offset += 1000)
        {
            await queue.EnqueueAsync(Enumerable.Range(offset, 1000).Select(i => EngineDatabase.Item(1, "item-" + i)).ToList(), Ct);
        }

        var accepted = new ConcurrentBag<long>();
        var batchesDone = 0;
        using var stopLoops = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var loops = Enumerable.Range(0, Loops).Select(w => Task.Run(async () =>
        {
            var owner = new NodeIdentity("restart-worker-" + w, 1);
            while (true)
            {
                var claimed = await queue.ClaimAsync(owner, Rollout, 16, TimeSpan.FromSeconds(5), cancellationToken: Ct);
                if (claimed.Count == 0)
                {
                    // A claim whose reply was lost in the restart leaves items leased to nobody who knows: rescue them.
                    await queue.RescueAsync(Ct);
                    var counts = await queue.CountAsync(1, Ct);
                    if (counts.Pending == 0 && counts.Running == 0)
                    {
                        return;
                    }

                    await Task.Delay(20, Ct);
                    continue;
                }

                foreach (var id in await queue.CompleteBatchAsync(claimed.Select(c => (c, "{}")).ToList(), Ct))
                {
                    accepted.Add(id);
                }

                Interlocked.Increment(ref batchesDone);
            }
        }, Ct)).ToArray();

        // Restart twice while the loops run, each time once they have made progress since the last restart.
        for (var restart = 1; restart <= 2; restart++)
        {
            var target = restart * Items / 16 / 3;
            await EngineDatabase.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref batchesDone) >= target || loops.All(l => l.IsCompleted)), Ct);
            if (loops.Any(l => l.IsCompleted))
            {
                await Task.WhenAll(loops);
                Assert.Fail("the loops finished before restart " + restart);
            }

            var stopped = await cluster.StopAsync(Ct);
            Assert.True(stopped.Succeeded, stopped.Error);
            Assert.True(stopped.Value);
            var restarted = await cluster.StartAsync(Ct);
            Assert.True(restarted.Succeeded, restarted.Error);
            Assert.Equal(started.Value, restarted.Value);
        }

        await Task.WhenAll(loops);

        Assert.Equal(Items, accepted.Count);
        Assert.Equal(Items, accepted.Distinct().Count());
        Assert.Equal((long)Items, await dataSource.ScalarAsync<long>("SELECT count(*) FROM work_results", Ct));
        Assert.Equal((long)Items, await dataSource.ScalarAsync<long>("SELECT count(DISTINCT item_id) FROM work_results", Ct));
        Assert.Equal(0L, await dataSource.ScalarAsync<long>("SELECT count(*) FROM work_items WHERE state <> 'completed'", Ct));
        Assert.Equal(new QueueCounts(0, 0, Items, 0), await queue.CountAsync(1, Ct));
    }

    private static async Task WaitForExpiredLeasesAsync(NpgsqlDataSource dataSource, long count) =>
        await EngineDatabase.WaitUntilAsync(
            async () => await dataSource.ScalarAsync<long>("SELECT count(*) FROM work_items WHERE state = 'running' AND lease_expires_at < now()", Ct) == count,
            Ct);

    private static Task InsertSideEffectAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long itemId, CancellationToken ct)
    {
        var command = new NpgsqlCommand("INSERT INTO side_effects VALUES ($1)", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = itemId });
        return ExecuteAndDisposeAsync(command, ct);
    }

    private static async Task ExecuteAndDisposeAsync(NpgsqlCommand command, CancellationToken ct)
    {
        await using (command)
        {
            await command.ExecuteNonQueryAsync(ct);
        }
    }

    private static Task<string> RowAsync(NpgsqlDataSource dataSource, long id, string table = "work_items") =>
        dataSource.ScalarAsync<string>($"SELECT row_to_json(w)::text FROM {table} w WHERE id = $1", Ct, id);
}
