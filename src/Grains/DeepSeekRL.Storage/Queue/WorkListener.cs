using Npgsql;

namespace DeepSeekRL.Storage.Queue;

/// <summary>
/// Wakes claimers when work arrives: one connection LISTENs on <see cref="WorkQueue.Channel"/> and every waiter is
/// released on a notification. Waiters also wake after a polling interval, so a lost notification (a dropped
/// listener connection, a restart) only delays work, never strands it.
/// </summary>
/// <remarks>Thread-safe. Dispose to stop listening.</remarks>
public sealed class WorkListener : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Starts listening.</summary>
    /// <param name="dataSource">The database.</param>
    public WorkListener(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _loop = Task.Run(() => ListenLoopAsync(_stop.Token));
    }

    /// <summary>Completes once the LISTEN is active (so a test or benchmark can enqueue afterwards).</summary>
    public Task Listening => _listening.Task;

    /// <summary>The number of notifications received.</summary>
    public long Notifications { get; private set; }

    /// <summary>Waits for a notification or <paramref name="pollInterval"/>, whichever comes first.</summary>
    /// <param name="pollInterval">The polling fallback.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns><see langword="true"/> when woken by a notification.</returns>
    public async Task<bool> WaitAsync(TimeSpan pollInterval, CancellationToken cancellationToken)
    {
        var signal = Volatile.Read(ref _signal).Task;
        var delay = Task.Delay(pollInterval, cancellationToken);
        var first = await Task.WhenAny(signal, delay);
        cancellationToken.ThrowIfCancellationRequested();
        return first == signal;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task ListenLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
                connection.Notification += (_, _) =>
                {
                    Notifications++;
                    var old = Interlocked.Exchange(ref _signal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                    old.TrySetResult();
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {WorkQueue.Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(cancellationToken);
                }

                _listening.TrySetResult();
                while (!cancellationToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException)
            {
                // The connection dropped (server restart): wake everyone to poll once, then listen again.
                Interlocked.Exchange(ref _signal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
            }
        }
    }
}
