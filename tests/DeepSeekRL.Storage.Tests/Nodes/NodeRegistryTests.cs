using DeepSeekRL.Testing;
using System.Text.Json;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Queue;
using Npgsql;

namespace DeepSeekRL.Storage.Tests.Nodes;

public sealed class NodeRegistryTests
{
    private static readonly string[] Rollout = ["rollout"];
    private static readonly TimeSpan LongLease = TimeSpan.FromMinutes(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RegisterAsync_NewAndAgain_GivesGenerationOneThenTwo()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new NodeRegistry(db.DataSource);
        using var capabilities = JsonDocument.Parse("""{"threads":8}""");

        var first = await registry.RegisterAsync("node-a", ["rollout", "reward"], capabilities.RootElement, Ct);
        var storedCapabilities = await db.DataSource.ScalarAsync<int>("SELECT (capabilities->>'threads')::int FROM nodes WHERE node_id = 'node-a'", Ct);
        var other = await registry.RegisterAsync("node-b", ["learner"], null, Ct);
        var second = await registry.RegisterAsync("node-a", ["rollout"], null, Ct);

        Assert.Equal(new NodeIdentity("node-a", 1), first);
        Assert.Equal(new NodeIdentity("node-b", 1), other);
        Assert.Equal(new NodeIdentity("node-a", 2), second);
        var nodes = await registry.ListAsync(Ct);
        Assert.Equal(["node-a#2", "node-b#1"], nodes.Select(n => n.Identity.ToString()));
        Assert.Equal(["rollout"], nodes[0].Roles);
        Assert.All(nodes, n => Assert.Equal("alive", n.State));
        Assert.All(nodes, n => Assert.Equal(Environment.ProcessId, n.Pid));
        Assert.Equal(8, storedCapabilities);
        Assert.Equal("{}", await db.DataSource.ScalarAsync<string>("SELECT capabilities::text FROM nodes WHERE node_id = 'node-a'", Ct));
    }

    [Fact]
    public async Task RegisterAsync_Again_ReleasesLeasesOfTheEarlierGenerationAtOnce()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new NodeRegistry(db.DataSource);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a"), EngineDatabase.Item(1, "b"), EngineDatabase.Item(1, "last", maxAttempts: 1), EngineDatabase.Item(1, "c")], Ct);
        var old = await registry.RegisterAsync("node-a", Rollout, null, Ct);
        var bystander = await registry.RegisterAsync("node-b", Rollout, null, Ct);
        var oldLeases = await queue.ClaimAsync(old, Rollout, 3, LongLease, cancellationToken: Ct);
        var bystanderLease = Assert.Single(await queue.ClaimAsync(bystander, Rollout, 1, LongLease, cancellationToken: Ct));

        var restarted = await registry.RegisterAsync("node-a", Rollout, null, Ct);

        Assert.Equal(2, restarted.Generation);
        Assert.Equal(["pending", "pending", "failed", "running"], await db.DataSource.ColumnAsync<string>("SELECT state FROM work_items ORDER BY id", Ct));
        Assert.Equal(3L, await db.DataSource.ScalarAsync<long>(
            "SELECT count(*) FROM work_items WHERE last_error = 'lease released: node node-a#1 is gone'", Ct));
        Assert.Equal(3, oldLeases.Count);
        foreach (var lease in oldLeases)
        {
            Assert.Equal(CompletionStatus.Rejected, await queue.CompleteAsync(lease, "{}", cancellationToken: Ct));
        }

        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(bystanderLease, "{}", cancellationToken: Ct));
        var reclaimed = await queue.ClaimAsync(restarted, Rollout, 10, LongLease, cancellationToken: Ct);
        Assert.Equal(["a", "b"], reclaimed.Select(c => c.IdempotencyKey));
        Assert.All(reclaimed, c => Assert.Equal(2, c.Attempt));
    }

    [Fact]
    public async Task HeartbeatAsync_AliveNode_RenewsEveryRunningLeaseOfThatNodeOnly()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new NodeRegistry(db.DataSource);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync(Enumerable.Range(0, 4).Select(i => EngineDatabase.Item(1, "k" + i)).ToList(), Ct);
        var node = await registry.RegisterAsync("node-a", Rollout, null, Ct);
        var other = await registry.RegisterAsync("node-b", Rollout, null, Ct);
        var mine = await queue.ClaimAsync(node, Rollout, 3, TimeSpan.FromSeconds(30), cancellationToken: Ct);
        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(mine[2], "{}", cancellationToken: Ct));
        var theirs = Assert.Single(await queue.ClaimAsync(other, Rollout, 1, TimeSpan.FromSeconds(30), cancellationToken: Ct));
        var theirExpiry = await ExpiryAsync(db.DataSource, theirs.Id);
        await db.DataSource.ExecuteAsync("UPDATE nodes SET heartbeat_at = now() - interval '1 hour' WHERE node_id = 'node-a'", Ct);

        var (alive, renewed) = await registry.HeartbeatAsync(node, TimeSpan.FromHours(2), Ct);

        Assert.True(alive);
        Assert.Equal(2, renewed);
        foreach (var lease in mine.Take(2))
        {
            // Renewed to two hours from the server's now: far beyond the 30-second claim.
            Assert.True(await db.DataSource.ScalarAsync<bool>(
                "SELECT lease_expires_at > now() + interval '1 hour' FROM work_items WHERE id = $1", Ct, lease.Id));
        }

        Assert.Equal(theirExpiry, await ExpiryAsync(db.DataSource, theirs.Id));
        Assert.True(await db.DataSource.ScalarAsync<bool>("SELECT heartbeat_at > now() - interval '1 minute' FROM nodes WHERE node_id = 'node-a'", Ct));
        Assert.Equal("completed", await db.DataSource.ScalarAsync<string>("SELECT state FROM work_items WHERE id = $1", Ct, mine[2].Id));
    }

    [Fact]
    public async Task HeartbeatAsync_NodeDeclaredDead_ReturnsNotAliveAndRenewsNothing()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new NodeRegistry(db.DataSource);
        var node = await registry.RegisterAsync("node-a", Rollout, null, Ct);
        await db.DataSource.ExecuteAsync("UPDATE nodes SET heartbeat_at = now() - interval '1 hour'", Ct);
        Assert.Equal([node], (await registry.SweepDeadAsync(TimeSpan.FromMinutes(1), Ct)).DeadNodes);

        var (alive, renewed) = await registry.HeartbeatAsync(node, LongLease, Ct);
        var oldGeneration = await registry.HeartbeatAsync(node with { Generation = 0 }, LongLease, Ct);

        Assert.False(alive);
        Assert.Equal(0, renewed);
        Assert.False(oldGeneration.Alive);
        Assert.Equal("dead", (await registry.ListAsync(Ct)).Single().State);
    }

    [Fact]
    public async Task SweepDeadAsync_SilentNode_IsDeclaredDeadAndItsLeasesReleasedAtOnce()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new NodeRegistry(db.DataSource);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync(
        [
            EngineDatabase.Item(1, "retry"), EngineDatabase.Item(1, "last", maxAttempts: 1), EngineDatabase.Item(1, "done"), EngineDatabase.Item(1, "alive"),
        ], Ct);
        var silent = await registry.RegisterAsync("silent", Rollout, null, Ct);
        var healthy = await registry.RegisterAsync("healthy", Rollout, null, Ct);
        var silentLeases = await queue.ClaimAsync(silent, Rollout, 3, LongLease, cancellationToken: Ct);
        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(silentLeases[2], "{}", cancellationToken: Ct));
        var healthyLease = Assert.Single(await queue.ClaimAsync(healthy, Rollout, 1, LongLease, cancellationToken: Ct));
        await db.DataSource.ExecuteAsync("UPDATE nodes SET heartbeat_at = now() - interval '10 seconds' WHERE node_id = 'silent'", Ct);

        var sweep = await registry.SweepDeadAsync(TimeSpan.FromSeconds(5), Ct);
        var again = await registry.SweepDeadAsync(TimeSpan.FromSeconds(5), Ct);

        Assert.Equal([silent], sweep.DeadNodes);
        Assert.Equal(2, sweep.ReleasedItems);
        Assert.Empty(again.DeadNodes);
        Assert.Equal(0, again.ReleasedItems);
        Assert.Equal(["pending", "failed", "completed", "running"], await db.DataSource.ColumnAsync<string>("SELECT state FROM work_items ORDER BY id", Ct));
        Assert.Equal(["dead", "alive"], (await registry.ListAsync(Ct)).Select(n => n.State).Reverse());
        Assert.Equal(CompletionStatus.Rejected, await queue.CompleteAsync(silentLeases[0], "{}", cancellationToken: Ct));
        Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(healthyLease, "{}", cancellationToken: Ct));
    }

    [Fact]
    public async Task LeaveAsync_Node_MarksLeftAndReleasesItsLeases()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new NodeRegistry(db.DataSource);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a"), EngineDatabase.Item(1, "b")], Ct);
        var node = await registry.RegisterAsync("node-a", Rollout, null, Ct);
        var other = await registry.RegisterAsync("node-b", Rollout, null, Ct);
        var lease = Assert.Single(await queue.ClaimAsync(node, Rollout, 1, LongLease, cancellationToken: Ct));
        Assert.Single(await queue.ClaimAsync(other, Rollout, 1, LongLease, cancellationToken: Ct));

        await registry.LeaveAsync(node, Ct);

        Assert.Equal(["pending", "running"], await db.DataSource.ColumnAsync<string>("SELECT state FROM work_items ORDER BY id", Ct));
        Assert.Equal(["left", "alive"], (await registry.ListAsync(Ct)).Select(n => n.State));
        Assert.Equal(CompletionStatus.Rejected, await queue.CompleteAsync(lease, "{}", cancellationToken: Ct));
        Assert.False((await registry.HeartbeatAsync(node, LongLease, Ct)).Alive);
        // A node that left is not declared dead later; a silent alive one is.
        await db.DataSource.ExecuteAsync("UPDATE nodes SET heartbeat_at = now() - interval '1 hour'", Ct);
        Assert.Equal([other], (await registry.SweepDeadAsync(TimeSpan.FromMinutes(1), Ct)).DeadNodes);
    }

    private static Task<DateTime> ExpiryAsync(NpgsqlDataSource dataSource, long id) =>
        dataSource.ScalarAsync<DateTime>("SELECT lease_expires_at FROM work_items WHERE id = $1", Ct, id);
}
