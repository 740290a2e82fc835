using DeepSeekRL.Testing;
using DeepSeekRL.Storage.Queue;

namespace DeepSeekRL.Storage.Tests.Queue;

public sealed class WorkListenerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WaitAsync_EnqueueAfterListening_WakesWithTrue()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await using var listener = new WorkListener(db.DataSource);
        await listener.Listening.WaitAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        var waiting = listener.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct);

        Assert.True(await waiting);
        Assert.Equal(1, listener.Notifications);
    }

    [Fact]
    public async Task WaitAsync_EnqueueOfExistingKeysOnly_DoesNotNotify()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await using var listener = new WorkListener(db.DataSource);
        await listener.Listening.WaitAsync(Ct);
        var queue = new WorkQueue(db.DataSource);
        var first = listener.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct);
        Assert.True(await first);

        Assert.Equal(0, await queue.EnqueueAsync([EngineDatabase.Item(1, "a")], Ct));
        // A later real enqueue is the next notification: the duplicate sent none.
        var second = listener.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await queue.EnqueueAsync([EngineDatabase.Item(1, "b"), EngineDatabase.Item(1, "c")], Ct);
        Assert.True(await second);

        Assert.Equal(2, listener.Notifications);
    }

    [Fact]
    public async Task WaitAsync_NoEnqueue_ReturnsFalseAfterPollInterval()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await using var listener = new WorkListener(db.DataSource);
        await listener.Listening.WaitAsync(Ct);

        var woken = await listener.WaitAsync(TimeSpan.FromMilliseconds(50), Ct);

        Assert.False(woken);
        Assert.Equal(0, listener.Notifications);
    }
}
