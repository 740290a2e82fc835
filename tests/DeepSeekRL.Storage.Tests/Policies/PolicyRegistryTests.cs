using DeepSeekRL.Testing;
using DeepSeekRL.Storage.Policies;
using Npgsql;

namespace DeepSeekRL.Storage.Tests.Policies;

public sealed class PolicyRegistryTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "dsrl-policy-" + Guid.NewGuid().ToString("N")[..8]);

    public PolicyRegistryTests() => Directory.CreateDirectory(_directory);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task PublishAsync_SmallCheckpoint_StoresLargeObjectAndDownloadsIdenticalBytes()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new PolicyRegistry(db.DataSource);
        // Larger than one 4 MiB chunk, so writing and reading both take several round trips.
        var bytes = RandomBytes((4 << 20) + 12345, seed: 1);
        var checkpoint = await WriteCheckpointAsync("small.bin", bytes);

        var published = await registry.PublishAsync(1, 3, checkpoint, cancellationToken: Ct);

        Assert.True(published.Succeeded, published.Error);
        Assert.StartsWith("pg-lo:", published.Value.Uri, StringComparison.Ordinal);
        Assert.Equal(bytes.Length, published.Value.SizeBytes);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), published.Value.Sha256);
        Assert.Equal("pg-lo:" + await db.DataSource.ScalarAsync<uint>("SELECT lo_oid FROM policy_versions", Ct), published.Value.Uri);
        var destination = Path.Combine(_directory, "downloaded.bin");
        var downloaded = await registry.DownloadAsync(published.Value, destination, Ct);
        Assert.True(downloaded.Succeeded, downloaded.Error);
        Assert.Equal(destination, downloaded.Value);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(destination, Ct));
        Assert.Equal(published.Value, await registry.GetAsync(1, 3, Ct));
        Assert.Null(await registry.GetAsync(1, 4, Ct));
    }

    [Fact]
    public async Task PublishAsync_BeyondMaxDatabaseBytes_WritesArtifactFileAndDownloadsIdenticalBytes()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var artifacts = Path.Combine(_directory, "artifacts");
        var registry = new PolicyRegistry(db.DataSource, new PolicyRegistryOptions { MaxDatabaseBytes = 1000, ArtifactDirectory = artifacts });
        var bytes = RandomBytes(5000, seed: 2);
        var checkpoint = await WriteCheckpointAsync("large.bin", bytes);

        var published = await registry.PublishAsync(7, 1, checkpoint, cancellationToken: Ct);

        Assert.True(published.Succeeded, published.Error);
        var uri = new Uri(published.Value.Uri);
        Assert.True(uri.IsFile);
        Assert.StartsWith(Path.Combine(artifacts, "campaign-7") + Path.DirectorySeparatorChar, uri.LocalPath, StringComparison.Ordinal);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(uri.LocalPath, Ct));
        Assert.True(await db.DataSource.ScalarAsync<bool>("SELECT lo_oid IS NULL FROM policy_versions", Ct));
        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM pg_largeobject_metadata", Ct));
        var destination = Path.Combine(_directory, "downloaded.bin");
        var downloaded = await registry.DownloadAsync(published.Value, destination, Ct);
        Assert.True(downloaded.Succeeded, downloaded.Error);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(destination, Ct));
    }

    [Fact]
    public async Task PublishAsync_BeyondMaxDatabaseBytesWithoutArtifactDirectory_FailsAndStoresNothing()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new PolicyRegistry(db.DataSource, new PolicyRegistryOptions { MaxDatabaseBytes = 10 });
        var checkpoint = await WriteCheckpointAsync("large.bin", RandomBytes(100, seed: 3));

        var published = await registry.PublishAsync(1, 1, checkpoint, cancellationToken: Ct);

        Assert.False(published.Succeeded);
        Assert.Contains("MaxDatabaseBytes", published.Error, StringComparison.Ordinal);
        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM policy_versions", Ct));
    }

    [Fact]
    public async Task PublishAsync_SameVersionAgain_SameBytesReturnsTheRowOtherBytesFail()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new PolicyRegistry(db.DataSource);
        var checkpoint = await WriteCheckpointAsync("a.bin", RandomBytes(2048, seed: 4));
        var other = await WriteCheckpointAsync("b.bin", RandomBytes(2048, seed: 5));
        var first = await registry.PublishAsync(1, 1, checkpoint, cancellationToken: Ct);

        var same = await registry.PublishAsync(1, 1, checkpoint, cancellationToken: Ct);
        var different = await registry.PublishAsync(1, 1, other, cancellationToken: Ct);

        Assert.True(same.Succeeded, same.Error);
        Assert.Equal(first.Value, same.Value);
        Assert.False(different.Succeeded);
        Assert.Contains("already exists with other bytes", different.Error, StringComparison.Ordinal);
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM policy_versions", Ct));
        // No orphaned large object from the repeated publications.
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM pg_largeobject_metadata", Ct));
    }

    [Fact]
    public async Task PublishAsync_FenceRejects_FailsAndStoresNothing()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new PolicyRegistry(db.DataSource);
        var checkpoint = await WriteCheckpointAsync("a.bin", RandomBytes(100, seed: 6));

        var published = await registry.PublishAsync(1, 1, checkpoint, (_, _, _) => Task.FromResult(false), Ct);

        Assert.False(published.Succeeded);
        Assert.Contains("stale", published.Error, StringComparison.Ordinal);
        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM policy_versions", Ct));
        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM pg_largeobject_metadata", Ct));
    }

    [Fact]
    public async Task DownloadAsync_CorruptedLargeObject_FailsWithChecksumMismatchAndLeavesNoFile()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new PolicyRegistry(db.DataSource);
        var bytes = RandomBytes(4096, seed: 7);
        bytes[0] = 0xFF;
        var published = await registry.PublishAsync(1, 1, await WriteCheckpointAsync("a.bin", bytes), cancellationToken: Ct);
        Assert.True(published.Succeeded, published.Error);
        await db.DataSource.ExecuteAsync("SELECT lo_put(lo_oid, 0, '\\x00'::bytea) FROM policy_versions", Ct);
        var destination = Path.Combine(_directory, "downloads", "policy.bin");
        Directory.CreateDirectory(Path.GetDirectoryName(destination)!);

        var downloaded = await registry.DownloadAsync(published.Value, destination, Ct);

        Assert.False(downloaded.Succeeded);
        Assert.Contains("checksum mismatch", downloaded.Error, StringComparison.Ordinal);
        Assert.Contains("policy version 1 of campaign 1", downloaded.Error, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(destination)!));
    }

    [Fact]
    public async Task DownloadAsync_CorruptedOrMissingArtifactFile_Fails()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new PolicyRegistry(db.DataSource, new PolicyRegistryOptions { MaxDatabaseBytes = 0, ArtifactDirectory = Path.Combine(_directory, "artifacts") });
        var published = await registry.PublishAsync(1, 1, await WriteCheckpointAsync("a.bin", RandomBytes(300, seed: 8)), cancellationToken: Ct);
        Assert.True(published.Succeeded, published.Error);
        var artifact = new Uri(published.Value.Uri).LocalPath;
        var destination = Path.Combine(_directory, "downloaded.bin");

        await File.WriteAllBytesAsync(artifact, RandomBytes(300, seed: 9), Ct);
        var corrupted = await registry.DownloadAsync(published.Value, destination, Ct);
        File.Delete(artifact);
        var missing = await registry.DownloadAsync(published.Value, destination, Ct);

        Assert.False(corrupted.Succeeded);
        Assert.Contains("checksum mismatch", corrupted.Error, StringComparison.Ordinal);
        Assert.False(missing.Succeeded);
        Assert.Contains("does not exist", missing.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(destination));
    }

    [Fact]
    public async Task LatestAsync_SeveralVersions_ReturnsTheHighestOfThatCampaign()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new PolicyRegistry(db.DataSource);
        Assert.Null(await registry.LatestAsync(1, Ct));
        foreach (var (campaign, version) in new[] { (1L, 0), (1L, 2), (1L, 1), (2L, 9) })
        {
            var file = await WriteCheckpointAsync($"c{campaign}v{version}.bin", RandomBytes(64, seed: version));
            Assert.True((await registry.PublishAsync(campaign, version, file, cancellationToken: Ct)).Succeeded);
        }

        var latest = await registry.LatestAsync(1, Ct);

        Assert.NotNull(latest);
        Assert.Equal(2, latest.Version);
        Assert.Equal(await registry.GetAsync(1, 2, Ct), latest);
        Assert.Equal(9, (await registry.LatestAsync(2, Ct))!.Version);
        Assert.Null(await registry.LatestAsync(3, Ct));
    }

    [Fact]
    public async Task PublishAsync_Listener_ReceivesNotificationWithCampaignAndVersion()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var registry = new PolicyRegistry(db.DataSource);
        await using var listener = await db.DataSource.OpenConnectionAsync(Ct);
        var payloads = new List<string>();
        listener.Notification += (_, e) =>
        {
            if (e.Channel == PolicyRegistry.Channel)
            {
                payloads.Add(e.Payload);
            }
        };
        await using (var listen = new NpgsqlCommand($"LISTEN {PolicyRegistry.Channel}", listener))
        {
            await listen.ExecuteNonQueryAsync(Ct);
        }

        var published = await registry.PublishAsync(4, 5, await WriteCheckpointAsync("a.bin", RandomBytes(10, seed: 10)), cancellationToken: Ct);
        Assert.True(published.Succeeded, published.Error);

        Assert.True(await listener.WaitAsync(TimeSpan.FromSeconds(30), Ct), "no notification arrived");
        Assert.Equal(["4:5"], payloads);
    }

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private async Task<string> WriteCheckpointAsync(string name, byte[] bytes)
    {
        var path = Path.Combine(_directory, name);
        await File.WriteAllBytesAsync(path, bytes, Ct);
        return path;
    }
}
