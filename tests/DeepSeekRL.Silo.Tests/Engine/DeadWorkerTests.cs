using System.Diagnostics;
using System.Globalization;
using DeepSeekRL.Storage.Database;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Engine;

public sealed class DeadWorkerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SigkilledWorker_ItsItemsAreClaimedAgainAndEachCompletedOnce_LateCompletionRejected()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        Assert.True((await MigrationRunner.ApplyAsync(db.DataSource, Migration.Embedded(), Ct)).Succeeded);
        var queue = new WorkQueue(db.DataSource);
        const int Items = 40;
        const int Held = 16;
        await queue.EnqueueAsync(
            Enumerable.Range(0, Items).Select(i => new NewWorkItem(7, "rollout", "k" + i.ToString(CultureInfo.InvariantCulture), "{}")).ToList(), Ct);

        // A real worker process claims 16 items and renews their leases until it is killed.
        var worker = await StartWorkerAsync(db.ConnectionString, "victim", Held, 20_000);
        var (leases, victim) = ParseLeases(worker.Lines[1]);
        Assert.Equal(Held, leases.Count);
        worker.Process.Kill();
        await worker.Process.WaitForExitAsync(Ct);

        // The survivors complete what they can; the dead worker's items stay leased until detection.
        var survivor = new NodeIdentity("survivor", 1);
        var first = await queue.ClaimAsync(survivor, ["rollout"], Items, TimeSpan.FromMinutes(1), 7, null, Ct);
        Assert.Equal(Items - Held, first.Count);
        Assert.Empty(first.Select(c => c.Id).Intersect(leases.Select(l => l.Id)));
        foreach (var item in first)
        {
            Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(item, "{\"by\":\"survivor\"}", null, Ct));
        }

        // Its leases (60 s) are still held, and no rescue releases them ...
        Assert.Equal(0, (await queue.RescueAsync(Ct)).Requeued);
        Assert.Equal((long)Held, await db.ScalarAsync<long>("SELECT count(*) FROM work_items WHERE state = 'running' AND lease_node = 'victim'"));

        // ... until the membership table says the victim's silo is dead (what Orleans writes when it declares a silo
        // dead): the rescue then releases every lease it held at once.
        await db.ExecuteAsync("INSERT INTO membership_versions (cluster_id) VALUES ('test')");
        await db.ExecuteAsync($"""
            INSERT INTO membership (cluster_id, address, port, generation, silo_name, host_name, status, start_time, i_am_alive_time)
            VALUES ('test', '127.0.0.1', 1, {victim.Generation}, 'victim', 'h', 6, now(), now())
            """);
        var rescued = await queue.RescueAsync(Ct);
        Assert.Equal(Held, rescued.Requeued);

        var again = await queue.ClaimAsync(survivor, ["rollout"], Items, TimeSpan.FromMinutes(1), 7, null, Ct);
        Assert.Equal(leases.Select(l => l.Id).Order(), again.Select(c => c.Id).Order());
        Assert.All(again, c => Assert.Equal(2, c.Attempt));

        // The dead worker's attempt completes late (its reply was in flight): rejected, nothing written.
        var late = new ClaimedItem(leases[0].Id, 7, "rollout", "?", "{}", leases[0].Attempt, null, victim, DateTimeOffset.MinValue);
        Assert.Equal(CompletionStatus.Rejected, await queue.CompleteAsync(late, "{\"by\":\"ghost\"}", null, Ct));

        foreach (var item in again)
        {
            Assert.Equal(CompletionStatus.Accepted, await queue.CompleteAsync(item, "{\"by\":\"survivor\"}", null, Ct));
        }

        Assert.Equal(CompletionStatus.Rejected, await queue.CompleteAsync(late, "{\"by\":\"ghost\"}", null, Ct));
        Assert.Equal((long)Items, await db.ScalarAsync<long>("SELECT count(*) FROM work_results"));
        Assert.Equal((long)Items, await db.ScalarAsync<long>("SELECT count(DISTINCT item_id) FROM work_results"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM work_results WHERE result->>'by' <> 'survivor'"));
        Assert.Equal((long)Items, await db.ScalarAsync<long>("SELECT count(*) FROM work_items WHERE state = 'completed'"));
    }

    [Fact]
    public async Task LiveWorker_RenewsItsLeases_TheRescueLeavesThemAlone()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        Assert.True((await MigrationRunner.ApplyAsync(db.DataSource, Migration.Embedded(), Ct)).Succeeded);
        var queue = new WorkQueue(db.DataSource);
        await queue.EnqueueAsync([new NewWorkItem(8, "rollout", "only", "{}")], Ct);
        var worker = await StartWorkerAsync(db.ConnectionString, "alive", 1, 200);
        try
        {
            // Its leases last 600 ms and are renewed every 200 ms: after several lease times, nothing was rescued.
            for (var i = 0; i < 10; i++)
            {
                await Task.Delay(200, Ct);
                Assert.Equal(0, (await queue.RescueAsync(Ct)).Requeued);
            }

            Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM work_items WHERE state = 'running' AND lease_node = 'alive'"));
        }
        finally
        {
            worker.Process.Kill();
            await worker.Process.WaitForExitAsync(CancellationToken.None);
        }
    }

    private static async Task<(Process Process, string[] Lines)> StartWorkerAsync(string connectionString, string nodeId, int hold, int renewMs)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "DeepSeekRL.Silo.dll"), "bench", "queue-worker", "--db", connectionString,
            "--node-id", nodeId, "--kind", "rollout", "--campaign", nodeId == "alive" ? "8" : "7", "--hold", hold.ToString(CultureInfo.InvariantCulture),
            "--heartbeat-ms", renewMs.ToString(CultureInfo.InvariantCulture),
        })
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info)!;
        var first = await process.StandardOutput.ReadLineAsync(Ct);
        var second = await process.StandardOutput.ReadLineAsync(Ct);
        Assert.Equal($"holding {hold}", first);
        return (process, [first!, second!]);
    }

    private static (List<(long Id, int Attempt)> Leases, NodeIdentity Node) ParseLeases(string line)
    {
        // "leases 12:1,13:1 node victim 1"
        var parts = line.Split(' ');
        var leases = parts[1].Split(',').Select(p => p.Split(':'))
            .Select(p => (long.Parse(p[0], CultureInfo.InvariantCulture), int.Parse(p[1], CultureInfo.InvariantCulture))).ToList();
        return (leases, new NodeIdentity(parts[3], long.Parse(parts[4], CultureInfo.InvariantCulture)));
    }
}
