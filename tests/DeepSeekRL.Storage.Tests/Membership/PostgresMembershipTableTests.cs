using System.Net;
using DeepSeekRL.Storage.Membership;
using DeepSeekRL.Testing;
using Microsoft.Extensions.Options;
using OrleansClusterOptions = Orleans.Configuration.ClusterOptions;

namespace DeepSeekRL.Storage.Tests.Membership;

public sealed class PostgresMembershipTableTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static PostgresMembershipTable Table(TestDatabase db, string clusterId, params string[] roles) => new(
        db.DataSource, Options.Create(new OrleansClusterOptions { ClusterId = clusterId, ServiceId = "svc" }),
        Options.Create(new MembershipTableOptions { Roles = roles }));

    private static MembershipEntry Entry(int port, int generation, SiloStatus status = SiloStatus.Joining, string name = "silo") => new()
    {
        SiloAddress = SiloAddress.New(IPAddress.Loopback, port, generation),
        Status = status,
        HostName = "host",
        SiloName = name,
        ProxyPort = port + 1,
        StartTime = new DateTime(2026, 12, 6, 7, 0, 0, DateTimeKind.Utc),
        IAmAliveTime = new DateTime(2026, 12, 6, 7, 0, 1, DateTimeKind.Utc),
    };

    [Fact]
    public async Task InsertRow_WithTheVersionItRead_StoresTheRowAndAdvancesTheVersion()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var table = Table(db, "c1", "rollout", "learner");
        await table.InitializeMembershipTable(true);
        var empty = await table.ReadAll();
        Assert.Empty(empty.Members);
        Assert.Equal(0, empty.Version.Version);

        Assert.True(await table.InsertRow(Entry(11111, 5), empty.Version.Next()));
        var all = await table.ReadAll();
        Assert.Equal(1, all.Version.Version);
        var (entry, etag) = Assert.Single(all.Members);
        Assert.Equal(SiloAddress.New(IPAddress.Loopback, 11111, 5), entry.SiloAddress);
        Assert.Equal((SiloStatus.Joining, "silo", "host", 11112), (entry.Status, entry.SiloName, entry.HostName, entry.ProxyPort));
        Assert.Equal(new DateTime(2026, 12, 6, 7, 0, 1, DateTimeKind.Utc), entry.IAmAliveTime.ToUniversalTime());
        Assert.Equal("0", etag);
        Assert.Equal(["rollout", "learner"], await db.DataSource.ScalarAsync<string[]>("SELECT roles FROM membership", Ct));

        // A writer that read the table before that insert loses: nothing is written.
        Assert.False(await table.InsertRow(Entry(22222, 5), empty.Version.Next()));
        Assert.Single((await table.ReadAll()).Members);

        // The same silo twice is refused too (the primary key), and the version stays.
        Assert.False(await table.InsertRow(Entry(11111, 5), all.Version.Next()));
        Assert.Equal(1, (await table.ReadAll()).Version.Version);
    }

    [Fact]
    public async Task UpdateRow_ChecksTheRowEtagAndTheTableVersion()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var table = Table(db, "c1");
        await table.InitializeMembershipTable(true);
        Assert.True(await table.InsertRow(Entry(11111, 5), (await table.ReadAll()).Version.Next()));
        var read = await table.ReadRow(SiloAddress.New(IPAddress.Loopback, 11111, 5));
        var (entry, etag) = Assert.Single(read.Members);

        var dead = Entry(11111, 5, SiloStatus.Dead);
        var voter = SiloAddress.New(IPAddress.Loopback, 33333, 9);
        dead.AddSuspector(voter, new DateTime(2026, 12, 6, 7, 0, 2, DateTimeKind.Utc));
        Assert.True(await table.UpdateRow(dead, etag, read.Version.Next()));

        // The old etag (or the old version) no longer wins.
        Assert.False(await table.UpdateRow(Entry(11111, 5, SiloStatus.Active), etag, read.Version.Next().Next()));
        var again = await table.ReadRow(entry.SiloAddress);
        Assert.False(await table.UpdateRow(Entry(11111, 5, SiloStatus.Active), again.Members[0].Item2, read.Version.Next()));
        Assert.False(await table.UpdateRow(Entry(11111, 5, SiloStatus.Active), "not a number", again.Version.Next()));

        var (stored, _) = Assert.Single((await table.ReadAll()).Members);
        Assert.Equal(SiloStatus.Dead, stored.Status);
        var (suspect, time) = Assert.Single(stored.SuspectTimes!);
        Assert.Equal(voter, suspect);
        Assert.Equal(new DateTime(2026, 12, 6, 7, 0, 2, DateTimeKind.Utc), time);
        Assert.Equal(2, (await table.ReadAll()).Version.Version);
    }

    [Fact]
    public async Task UpdateIAmAlive_ChangesOnlyTheAliveTime()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var table = Table(db, "c1");
        await table.InitializeMembershipTable(true);
        Assert.True(await table.InsertRow(Entry(11111, 5), (await table.ReadAll()).Version.Next()));
        var before = await table.ReadAll();
        var alive = Entry(11111, 5, SiloStatus.Dead);
        alive.IAmAliveTime = new DateTime(2026, 12, 6, 8, 0, 0, DateTimeKind.Utc);
        await table.UpdateIAmAlive(alive);
        var after = await table.ReadAll();
        Assert.Equal(before.Version, after.Version);
        Assert.Equal(before.Members[0].Item2, after.Members[0].Item2);
        Assert.Equal(SiloStatus.Joining, after.Members[0].Item1.Status);
        Assert.Equal(new DateTime(2026, 12, 6, 8, 0, 0, DateTimeKind.Utc), after.Members[0].Item1.IAmAliveTime.ToUniversalTime());
    }

    [Fact]
    public async Task TwoClusters_OnOneDatabase_NeverSeeEachOthersSilos()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var a = Table(db, "cluster-a");
        var b = Table(db, "cluster-b");
        await a.InitializeMembershipTable(true);
        await b.InitializeMembershipTable(true);
        Assert.True(await a.InsertRow(Entry(11111, 1), (await a.ReadAll()).Version.Next()));
        Assert.True(await b.InsertRow(Entry(11111, 1), (await b.ReadAll()).Version.Next()));
        Assert.True(await b.InsertRow(Entry(22222, 1), (await b.ReadAll()).Version.Next()));
        Assert.Single((await a.ReadAll()).Members);
        Assert.Equal(2, (await b.ReadAll()).Members.Count);

        await a.DeleteMembershipTableEntries("cluster-a");
        Assert.Empty((await a.ReadAll()).Members);
        Assert.Equal(2, (await b.ReadAll()).Members.Count);
    }

    [Fact]
    public async Task CleanupDefunctSiloEntries_RemovesOnlyDeadSilosSilentSinceTheDate()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var table = Table(db, "c1");
        await table.InitializeMembershipTable(true);
        Assert.True(await table.InsertRow(Entry(1, 1, SiloStatus.Dead), (await table.ReadAll()).Version.Next()));
        Assert.True(await table.InsertRow(Entry(2, 1, SiloStatus.Active), (await table.ReadAll()).Version.Next()));
        await table.CleanupDefunctSiloEntries(new DateTimeOffset(2026, 12, 6, 7, 30, 0, TimeSpan.Zero));
        var (left, _) = Assert.Single((await table.ReadAll()).Members);
        Assert.Equal(SiloStatus.Active, left.Status);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("garbage")]
    [InlineData("S127.0.0.1:1:1,notticks|,5|S999.1.1.1:1:1,5")]
    [InlineData("S127.0.0.1:1:1,99999999999999999999")]
    public void ParseSuspects_Garbage_GivesNoVotesInsteadOfThrowing(string? text) =>
        Assert.Null(PostgresMembershipTable.ParseSuspects(text));

    [Fact]
    public async Task MembershipStore_ListsSilosWithRolesAndStatusAndTheHolderIsDeadCondition()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var table = Table(db, "c1", "reward");
        await table.InitializeMembershipTable(true);
        Assert.True(await table.InsertRow(Entry(11111, 7, SiloStatus.Dead, "r1"), (await table.ReadAll()).Version.Next()));
        var store = new MembershipStore(db.DataSource);
        var row = Assert.Single(await store.ListAsync("c1", includeDead: true, Ct));
        Assert.Equal(("127.0.0.1:11111", 7, "r1", "Dead"), (row.Address, row.Generation, row.Name, row.Status));
        Assert.Equal(["reward"], row.Roles);
        Assert.Empty(await store.ListAsync("c1", includeDead: false, Ct));
        Assert.StartsWith("deepseekrl-", await store.ClusterIdAsync(Ct), StringComparison.Ordinal);
        Assert.True(await db.DataSource.ScalarAsync<bool>($"SELECT {MembershipStore.HolderIsDead("'r1'", "7")}", Ct));
        Assert.False(await db.DataSource.ScalarAsync<bool>($"SELECT {MembershipStore.HolderIsDead("'r1'", "8")}", Ct));
    }
}
