using DeepSeekRL.Grains;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Singletons;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Storage.Tests.Stores;

public sealed class SampleStoreTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WriteCompletionsAsync_InTransaction_ReturnsIdsInInputOrderAndReusesThemOnRetry()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        CompletionRecord[] records = [Completion(10, 2), Completion(10, 0), Completion(11, 0), Completion(10, 1)];

        var ids = await WriteCompletionsAsync(db, records);
        var again = await WriteCompletionsAsync(db, [records[3], Completion(10, 3), records[0]]);

        Assert.Equal(4, ids.Distinct().Count());
        for (var i = 0; i < records.Length; i++)
        {
            Assert.Equal($"{records[i].ItemId}/{records[i].SampleIndex}", await db.DataSource.ScalarAsync<string>(
                "SELECT item_id || '/' || sample_index FROM completions WHERE id = $1", Ct, ids[i]));
        }

        Assert.Equal(ids[3], again[0]);
        Assert.Equal(ids[0], again[2]);
        Assert.DoesNotContain(again[1], ids);
        Assert.Equal(5L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM completions", Ct));
        Assert.Equal(records[0].TokenIds, await db.DataSource.ScalarAsync<int[]>("SELECT token_ids FROM completions WHERE id = $1", Ct, ids[0]));
        Assert.Equal(records[0].Logprobs, await db.DataSource.ScalarAsync<float[]>("SELECT logprobs FROM completions WHERE id = $1", Ct, ids[0]));
        Assert.Equal(records[0].Text, await db.DataSource.ScalarAsync<string>("SELECT text FROM completions WHERE id = $1", Ct, ids[0]));
    }

    [Fact]
    public async Task WriteCompletionsAsync_TransactionRolledBack_StoresNothing()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await using (var connection = await db.DataSource.OpenConnectionAsync(Ct))
        await using (var transaction = await connection.BeginTransactionAsync(Ct))
        {
            var ids = await SampleStore.WriteCompletionsAsync(connection, transaction, [Completion(1, 0)], Ct);
            Assert.Single(ids);
            await transaction.RollbackAsync(Ct);
        }

        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM completions", Ct));
    }

    [Fact]
    public async Task WriteCompletionsAsync_TokenAndLogprobLengthsDiffer_ThrowsArgumentException()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var bad = Completion(1, 1) with { Logprobs = [-0.5f] };

        await Assert.ThrowsAsync<ArgumentException>(() => WriteCompletionsAsync(db, [Completion(1, 0), bad]));

        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM completions", Ct));
    }

    [Fact]
    public async Task WriteScoresAsync_NullAndRepeated_StoresNullAsNullAndKeepsTheFirstScore()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var store = new SampleStore(db.DataSource);
        var ids = await WriteCompletionsAsync(db, [Completion(1, 0), Completion(1, 1)]);

        var first = await store.WriteScoresAsync(
            [new RewardScore(ids[0], "format", 1.0), new RewardScore(ids[0], "accuracy", null), new RewardScore(ids[1], "format", 0.25)], Ct);
        var second = await store.WriteScoresAsync([new RewardScore(ids[0], "format", 0.0), new RewardScore(ids[0], "accuracy", 1.0)], Ct);

        Assert.Equal(3, first);
        Assert.Equal(0, second);
        Assert.True(await db.DataSource.ScalarAsync<bool>("SELECT value IS NULL FROM reward_scores WHERE completion_id = $1 AND rule = 'accuracy'", Ct, ids[0]));
        Assert.Equal(1.0, await db.DataSource.ScalarAsync<double>("SELECT value FROM reward_scores WHERE completion_id = $1 AND rule = 'format'", Ct, ids[0]));
        Assert.Equal(0.25, await db.DataSource.ScalarAsync<double>("SELECT value FROM reward_scores WHERE completion_id = $1 AND rule = 'format'", Ct, ids[1]));
        Assert.Equal(3L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM reward_scores", Ct));
    }

    [Fact]
    public async Task WriteStepMetricsAsync_WrittenThenAlreadyPresentThenRejectedForStaleLease()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var store = new SampleStore(db.DataSource);
        var leases = new SingletonLeases(db.DataSource);
        var stale = (await leases.TryAcquireAsync("campaign:1:learner", new NodeIdentity("node-a", 1), TimeSpan.FromMinutes(10), Ct))!;

        var written = await store.WriteStepMetricsAsync(leases, stale, 1, 1, """{"loss":0.5}""", Ct);
        var present = await store.WriteStepMetricsAsync(leases, stale, 1, 1, """{"loss":0.9}""", Ct);
        await db.DataSource.ExecuteAsync("UPDATE singleton_leases SET expires_at = now() - interval '1 second'", Ct);
        var current = (await leases.TryAcquireAsync("campaign:1:learner", new NodeIdentity("node-b", 1), TimeSpan.FromMinutes(10), Ct))!;
        var rejected = await store.WriteStepMetricsAsync(leases, stale, 1, 2, """{"loss":0.4}""", Ct);
        var byCurrent = await store.WriteStepMetricsAsync(leases, current, 1, 2, """{"loss":0.3}""", Ct);

        Assert.Equal(FencedWriteResult.Written, written);
        Assert.Equal(FencedWriteResult.AlreadyPresent, present);
        Assert.Equal(FencedWriteResult.RejectedStale, rejected);
        Assert.Equal(FencedWriteResult.Written, byCurrent);
        Assert.Equal(["1:1:0.5", "2:2:0.3"], await db.DataSource.ColumnAsync<string>(
            "SELECT step || ':' || epoch || ':' || (metrics->>'loss') FROM step_metrics ORDER BY step", Ct));
    }

    [Fact]
    public async Task IngestSftSamplesAsync_Duplicates_StoresRowsAndSkipsCompletionsAlreadySampled()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var store = new SampleStore(db.DataSource);

        var first = await store.IngestSftSamplesAsync([Sample(1, 100, reward: 1.0), Sample(1, 101, reward: null), Sample(1, null, reward: 0.5)], Ct);
        var second = await store.IngestSftSamplesAsync([Sample(1, 101, reward: 0.0), Sample(1, 102, reward: 0.75), Sample(1, 103), Sample(1, 103)], Ct);

        Assert.Equal(3, first);
        Assert.Equal(2, second);
        Assert.Equal([100L, 101L, 102L, 103L], await db.DataSource.ColumnAsync<long>(
            "SELECT completion_id FROM sft_samples WHERE completion_id IS NOT NULL ORDER BY completion_id", Ct));
        Assert.Equal(5L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM sft_samples", Ct));
        Assert.True(await db.DataSource.ScalarAsync<bool>("SELECT reward IS NULL FROM sft_samples WHERE completion_id = 101", Ct));
        Assert.Equal("prompt 100", await db.DataSource.ScalarAsync<string>("SELECT prompt FROM sft_samples WHERE completion_id = 100", Ct));
        Assert.Equal(1.0, await db.DataSource.ScalarAsync<double>("SELECT (scores->>'format')::float8 FROM sft_samples WHERE completion_id = 100", Ct));
        Assert.True(await db.DataSource.ScalarAsync<bool>("SELECT (verdicts->>'kept')::bool FROM sft_samples WHERE completion_id = 100", Ct));
    }

    [Fact]
    public async Task IngestSftBatchAsync_SameKeyTwice_StoresTheBatchOnce()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var store = new SampleStore(db.DataSource);

        var first = await store.IngestSftBatchAsync("step-1/item-7", [Sample(1, 200), Sample(1, 201), Sample(1, null)], Ct);
        var retry = await store.IngestSftBatchAsync("step-1/item-7", [Sample(1, 200), Sample(1, 201), Sample(1, null)], Ct);

        Assert.Equal(3, first);
        Assert.Equal(0, retry);
        Assert.Equal(3L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM sft_samples", Ct));
        Assert.Equal(3, await db.DataSource.ScalarAsync<int>("SELECT rows FROM ingest_batches WHERE batch_key = 'step-1/item-7'", Ct));
    }

    [Fact]
    public async Task IngestSftBatchAsync_CompletionAlreadySampledByAnotherBatch_FallsBackAndSkipsOnlyThatRow()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var store = new SampleStore(db.DataSource);
        Assert.Equal(2, await store.IngestSftBatchAsync("a", [Sample(1, 300), Sample(1, 301)], Ct));

        var overlapping = await store.IngestSftBatchAsync("b", [Sample(1, 301), Sample(1, 302), Sample(1, 303)], Ct);

        Assert.Equal(2, overlapping);
        Assert.Equal([300L, 301L, 302L, 303L], await db.DataSource.ColumnAsync<long>("SELECT completion_id FROM sft_samples ORDER BY completion_id", Ct));
        Assert.Equal(2L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM ingest_batches", Ct));
    }

    [Fact]
    public async Task WriteRewardsAsync_RewardsAndReflection_StoredPerCompletionAndUnscoredStayNull()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var ids = await WriteCompletionsAsync(db, [Completion(1, 0), Completion(1, 1), Completion(1, 2), Completion(1, 3), Completion(1, 4)]);

        await using (var connection = await db.DataSource.OpenConnectionAsync(Ct))
        await using (var transaction = await connection.BeginTransactionAsync(Ct))
        {
            await SampleStore.WriteRewardsAsync(connection, transaction, ids[..4], [1.0, 1.0, 0.0, 0.5],
                [ReflectionFlags.Verifies, ReflectionFlags.Verifies | ReflectionFlags.Detects | ReflectionFlags.Repairs, ReflectionFlags.Verifies | ReflectionFlags.Detects, ReflectionFlags.None], Ct);
            await transaction.CommitAsync(Ct);
        }

        Assert.Equal(["1", "7", "3", "0", "null"], await db.DataSource.ColumnAsync<string>(
            "SELECT coalesce(c.reflection::text, 'null') FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, n) JOIN completions c ON c.id = u.id ORDER BY u.n", Ct, ids));
        Assert.Equal(0.5, await db.DataSource.ScalarAsync<double>("SELECT reward FROM completions WHERE id = $1", Ct, ids[3]));
    }

    [Fact]
    public async Task WriteRewardsAsync_TransactionRolledBack_LeavesReflectionNull()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var ids = await WriteCompletionsAsync(db, [Completion(1, 0)]);

        await using (var connection = await db.DataSource.OpenConnectionAsync(Ct))
        await using (var transaction = await connection.BeginTransactionAsync(Ct))
        {
            await SampleStore.WriteRewardsAsync(connection, transaction, ids, [1.0], [ReflectionFlags.Verifies], Ct);
            await transaction.RollbackAsync(Ct);
        }

        Assert.True(await db.DataSource.ScalarAsync<bool>("SELECT reflection IS NULL AND reward IS NULL FROM completions WHERE id = $1", Ct, ids[0]));
    }

    [Fact]
    public async Task WriteRewardsAsync_LengthsDiffer_ThrowsArgumentException()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var ids = await WriteCompletionsAsync(db, [Completion(1, 0), Completion(1, 1)]);
        await using var connection = await db.DataSource.OpenConnectionAsync(Ct);
        await using var transaction = await connection.BeginTransactionAsync(Ct);

        var error = await Assert.ThrowsAsync<ArgumentException>(() =>
            SampleStore.WriteRewardsAsync(connection, transaction, ids, [1.0, 0.0], [ReflectionFlags.Verifies], Ct));

        Assert.Equal("2 completions, 2 rewards and 1 reflection values: expected one of each per completion", error.Message);
    }

    private static CompletionRecord Completion(long itemId, int sampleIndex) =>
        new(1, 3, itemId, sampleIndex, 2, "What is 2+2?", [itemId == 0 ? 1 : (int)itemId, sampleIndex, 42],
            $"<think>item {itemId} sample {sampleIndex}</think> 4", [-0.25f, -1.5f, -0.125f], "stop");

    private static SftSample Sample(long campaignId, long? completionId, double? reward = 1.0) =>
        new(campaignId, 3, 2, completionId, "prompt " + completionId, "reasoning " + completionId, "answer " + completionId, reward,
            """{"format": 1.0, "accuracy": null}""", """{"kept": true}""");

    private static async Task<long[]> WriteCompletionsAsync(TestDatabase db, IReadOnlyList<CompletionRecord> records)
    {
        await using var connection = await db.DataSource.OpenConnectionAsync(Ct);
        await using var transaction = await connection.BeginTransactionAsync(Ct);
        var ids = await SampleStore.WriteCompletionsAsync(connection, transaction, records, Ct);
        await transaction.CommitAsync(Ct);
        return ids;
    }
}
