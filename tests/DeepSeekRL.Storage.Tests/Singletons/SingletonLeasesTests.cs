using DeepSeekRL.Testing;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Singletons;
using Npgsql;

namespace DeepSeekRL.Storage.Tests.Singletons;

public sealed class SingletonLeasesTests
{
    private const string Name = "campaign:1:learner";
    private static readonly NodeIdentity NodeA = new("node-a", 1);
    private static readonly NodeIdentity NodeB = new("node-b", 1);
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TryAcquireAsync_FreeThenHeld_GivesEpochOneAndRefusesAnotherNode()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var leases = new SingletonLeases(db.DataSource);

        var first = await leases.TryAcquireAsync(Name, NodeA, Long, Ct);
        var contender = await leases.TryAcquireAsync(Name, NodeB, Long, Ct);
        var newerGenerationOfSameNode = await leases.TryAcquireAsync(Name, NodeA with { Generation = 2 }, Long, Ct);
        var otherName = await leases.TryAcquireAsync("campaign:1:coordinator", NodeB, Long, Ct);

        Assert.Equal(new SingletonLease(Name, 1, NodeA), first);
        Assert.Null(contender);
        Assert.Null(newerGenerationOfSameNode);
        Assert.Equal(new SingletonLease("campaign:1:coordinator", 1, NodeB), otherName);
        Assert.Equal("node-a", await db.DataSource.ScalarAsync<string>("SELECT owner_node FROM singleton_leases WHERE name = $1", Ct, Name));
    }

    [Fact]
    public async Task TryAcquireAsync_SameOwnerAgain_KeepsEpochAndExtends()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var leases = new SingletonLeases(db.DataSource);
        var first = await leases.TryAcquireAsync(Name, NodeA, TimeSpan.FromSeconds(30), Ct);

        var again = await leases.TryAcquireAsync(Name, NodeA, TimeSpan.FromHours(2), Ct);

        Assert.Equal(first, again);
        Assert.True(await db.DataSource.ScalarAsync<bool>("SELECT expires_at > now() + interval '1 hour' FROM singleton_leases", Ct));
    }

    [Fact]
    public async Task TryAcquireAsync_AfterExpiry_AnotherNodeTakesOverWithNextEpoch()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var leases = new SingletonLeases(db.DataSource);
        var stale = await leases.TryAcquireAsync(Name, NodeA, TimeSpan.FromMilliseconds(1), Ct);
        Assert.NotNull(stale);
        await EngineDatabase.WaitUntilAsync(() => db.DataSource.ScalarAsync<bool>("SELECT expires_at <= now() FROM singleton_leases", Ct), Ct);

        var takeover = await leases.TryAcquireAsync(Name, NodeB, Long, Ct);
        var staleComesBack = await leases.TryAcquireAsync(Name, NodeA, Long, Ct);

        Assert.Equal(new SingletonLease(Name, 2, NodeB), takeover);
        Assert.Null(staleComesBack);
        Assert.False(await leases.RenewAsync(stale, Long, Ct));
        Assert.False(await leases.ReleaseAsync(stale, Ct));
        Assert.True(await leases.RenewAsync(takeover!, Long, Ct));
        Assert.Equal(2L, await db.DataSource.ScalarAsync<long>("SELECT epoch FROM singleton_leases", Ct));
    }

    [Fact]
    public async Task TryAcquireAsync_OwnLeaseExpired_ReacquiresWithNextEpoch()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var leases = new SingletonLeases(db.DataSource);
        var first = await leases.TryAcquireAsync(Name, NodeA, Long, Ct);
        await db.DataSource.ExecuteAsync("UPDATE singleton_leases SET expires_at = now() - interval '1 second'", Ct);

        var again = await leases.TryAcquireAsync(Name, NodeA, Long, Ct);

        Assert.Equal(1, first!.Epoch);
        Assert.Equal(2, again!.Epoch);
    }

    [Fact]
    public async Task WriteFencedAsync_StaleEpoch_IsRejectedAndWritesNothingWhileCurrentEpochCommits()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await db.DataSource.ExecuteAsync("CREATE TABLE fenced_writes (epoch bigint)", Ct);
        var leases = new SingletonLeases(db.DataSource);
        var stale = await leases.TryAcquireAsync(Name, NodeA, Long, Ct);
        Assert.True(await leases.WriteFencedAsync(stale!, (c, t, ct) => InsertAsync(c, t, stale!.Epoch, ct), Ct));
        await db.DataSource.ExecuteAsync("UPDATE singleton_leases SET expires_at = now() - interval '1 second'", Ct);
        var current = await leases.TryAcquireAsync(Name, NodeB, Long, Ct);
        var staleCalls = 0;

        var staleWrite = await leases.WriteFencedAsync(stale!, (c, t, ct) =>
        {
            staleCalls++;
            return InsertAsync(c, t, stale!.Epoch, ct);
        }, Ct);
        var currentWrite = await leases.WriteFencedAsync(current!, (c, t, ct) => InsertAsync(c, t, current!.Epoch, ct), Ct);
        var unknown = await leases.WriteFencedAsync(new SingletonLease("no-such", 1, NodeA), (c, t, ct) => InsertAsync(c, t, 99, ct), Ct);

        Assert.False(staleWrite);
        Assert.Equal(0, staleCalls);
        Assert.True(currentWrite);
        Assert.False(unknown);
        Assert.Equal([1L, 2L], await db.DataSource.ColumnAsync<long>("SELECT epoch FROM fenced_writes ORDER BY epoch", Ct));
    }

    [Fact]
    public async Task WriteFencedAsync_WriteThrows_CommitsNothing()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await db.DataSource.ExecuteAsync("CREATE TABLE fenced_writes (epoch bigint)", Ct);
        var leases = new SingletonLeases(db.DataSource);
        var lease = await leases.TryAcquireAsync(Name, NodeA, Long, Ct);

        await Assert.ThrowsAsync<InvalidOperationException>(() => leases.WriteFencedAsync(lease!, async (c, t, ct) =>
        {
            await InsertAsync(c, t, 1, ct);
            throw new InvalidOperationException("boom");
        }, Ct));

        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM fenced_writes", Ct));
    }

    [Fact]
    public async Task RenewAsync_Holder_ExtendsExpiry()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var leases = new SingletonLeases(db.DataSource);
        var lease = await leases.TryAcquireAsync(Name, NodeA, TimeSpan.FromSeconds(30), Ct);

        Assert.True(await leases.RenewAsync(lease!, TimeSpan.FromHours(2), Ct));

        Assert.True(await db.DataSource.ScalarAsync<bool>("SELECT expires_at > now() + interval '1 hour' FROM singleton_leases", Ct));
        Assert.Null(await leases.TryAcquireAsync(Name, NodeB, Long, Ct));
    }

    [Fact]
    public async Task ReleaseAsync_Holder_LetsAnotherNodeTakeOverAtOnce()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var leases = new SingletonLeases(db.DataSource);
        var lease = await leases.TryAcquireAsync(Name, NodeA, Long, Ct);
        Assert.Null(await leases.TryAcquireAsync(Name, NodeB, Long, Ct));

        var released = await leases.ReleaseAsync(lease!, Ct);
        var takeover = await leases.TryAcquireAsync(Name, NodeB, Long, Ct);

        Assert.True(released);
        Assert.Equal(new SingletonLease(Name, 2, NodeB), takeover);
        Assert.False(await leases.RenewAsync(lease!, Long, Ct));
    }

    private static async Task InsertAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long epoch, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("INSERT INTO fenced_writes VALUES ($1)", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = epoch });
        await command.ExecuteNonQueryAsync(ct);
    }
}
