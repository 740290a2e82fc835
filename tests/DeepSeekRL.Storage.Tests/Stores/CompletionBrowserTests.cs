using System.Text.Json;
using DeepSeekRL.Grains;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Storage.Tests.Stores;

public sealed class CompletionBrowserTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PageAsync_ReflectionFilter_SelectsTheCompletionsWithThatBit()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        // Campaign 1: a check that passes (1), a failed check repaired (7), a failed check left (3), no check (0), not
        // scored yet (null); campaign 2 holds a repair the filter of campaign 1 must not show.
        var ids = await WriteAsync(db, 1, [ReflectionFlags.Verifies, ReflectionFlags.Verifies | ReflectionFlags.Detects | ReflectionFlags.Repairs,
            ReflectionFlags.Verifies | ReflectionFlags.Detects, ReflectionFlags.None, null]);
        await WriteAsync(db, 2, [ReflectionFlags.Verifies | ReflectionFlags.Detects | ReflectionFlags.Repairs]);
        var browser = new CompletionBrowser(db.DataSource);

        async Task<long[]> IdsAsync(ReflectionFlags reflection, long afterId = 0, int limit = 50) =>
            [.. (await browser.PageAsync(new CompletionFilter(1, afterId, limit, null, null, null, null, null, null, reflection), Ct)).Items
                .Select(i => Field(i, "completion_id")!.Value)];

        Assert.Equal(ids, await IdsAsync(ReflectionFlags.None));
        Assert.Equal([ids[0], ids[1], ids[2]], await IdsAsync(ReflectionFlags.Verifies));
        Assert.Equal([ids[1], ids[2]], await IdsAsync(ReflectionFlags.Detects));
        Assert.Equal([ids[1]], await IdsAsync(ReflectionFlags.Repairs));

        // Keyset paging goes on within the filter.
        var first = await browser.PageAsync(new CompletionFilter(1, 0, 2, null, null, null, null, null, null, ReflectionFlags.Verifies), Ct);
        Assert.Equal(ids[1], first.NextAfterId);
        Assert.Equal([ids[2]], await IdsAsync(ReflectionFlags.Verifies, first.NextAfterId!.Value));
    }

    [Fact]
    public async Task PageAsync_Items_CarryTheStoredReflectionOrNull()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var ids = await WriteAsync(db, 1, [ReflectionFlags.Verifies | ReflectionFlags.Detects, ReflectionFlags.None, null]);

        var page = await new CompletionBrowser(db.DataSource).PageAsync(new CompletionFilter(1, 0, 50, null, null, null, null, null, null), Ct);

        Assert.Equal(ids, page.Items.Select(i => Field(i, "completion_id")!.Value));
        Assert.Equal(new long?[] { 3, 0, null }, page.Items.Select(i => Field(i, "reflection")));
    }

    /// <summary>A numeric field of a page item (null when the field is JSON null).</summary>
    private static long? Field(string item, string name)
    {
        using var document = JsonDocument.Parse(item);
        var value = document.RootElement.GetProperty(name);
        return value.ValueKind == JsonValueKind.Null ? null : value.GetInt64();
    }

    /// <summary>Stores one completion per entry; a non-null entry is scored (reward and reflection) as the reward worker does.</summary>
    private static async Task<long[]> WriteAsync(TestDatabase db, long campaignId, ReflectionFlags?[] reflection)
    {
        var records = reflection.Select((_, i) => new CompletionRecord(
            campaignId, 0, 100 * campaignId, i, 0, "Using 3, 5, 2 make 16.", [1, 2], $"<think>attempt {i}</think> 16", [-0.5f, -0.25f], "stop")).ToList();
        await using var connection = await db.DataSource.OpenConnectionAsync(Ct);
        await using var transaction = await connection.BeginTransactionAsync(Ct);
        var ids = await SampleStore.WriteCompletionsAsync(connection, transaction, records, Ct);
        var scored = Enumerable.Range(0, ids.Length).Where(i => reflection[i] is not null).ToArray();
        await SampleStore.WriteRewardsAsync(connection, transaction, [.. scored.Select(i => ids[i])], [.. scored.Select(_ => 1.0)],
            [.. scored.Select(i => reflection[i]!.Value)], Ct);
        await transaction.CommitAsync(Ct);
        Assert.True(ids.SequenceEqual(ids.Order()), "completion ids follow the sample order");
        return ids;
    }
}
