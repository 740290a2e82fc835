using DeepSeekRL.Storage.Membership;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Resilience;
using Npgsql;
using Polly;

namespace DeepSeekRL.Storage.Singletons;

/// <summary>A held singleton lease: its name and the fencing epoch of this tenure.</summary>
/// <param name="Name">The singleton's name, e.g. <c>campaign:7:learner</c>.</param>
/// <param name="Epoch">Grows at every change of owner; every write by the holder carries it.</param>
/// <param name="Owner">The holder.</param>
public sealed record SingletonLease(string Name, long Epoch, NodeIdentity Owner);

/// <summary>
/// Singleton leases with fencing epochs (a campaign's coordinator and learner): acquire, renew, release, hand over on
/// expiry. A write made under a lease runs in a transaction that first locks the lease row (<c>FOR SHARE</c>) and
/// checks the epoch, so a stale owner's write is rejected and a takeover waits for an in-flight write to finish.
/// </summary>
public sealed class SingletonLeases(NpgsqlDataSource dataSource, ResiliencePipeline? pipeline = null)
{
    private readonly ResiliencePipeline _pipeline = pipeline ?? DatabaseResilience.Default;

    /// <summary>
    /// Acquires the singleton if it is free, expired, held by a silo the membership table says is dead (taken over at
    /// once, with a new epoch), or already ours (then it is renewed, same epoch).
    /// </summary>
    /// <param name="name">The singleton's name.</param>
    /// <param name="owner">The would-be owner.</param>
    /// <param name="duration">The lease time.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The lease, or <see langword="null"/> when another live owner holds it.</returns>
    public async Task<SingletonLease?> TryAcquireAsync(string name, NodeIdentity owner, TimeSpan duration, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand($"""
                INSERT INTO singleton_leases AS s (name, epoch, owner_node, owner_generation, expires_at)
                VALUES ($1, 1, $2, $3, now() + $4)
                ON CONFLICT (name) DO UPDATE
                   SET epoch = CASE WHEN s.owner_node = $2 AND s.owner_generation = $3 AND s.expires_at > now()
                                    THEN s.epoch ELSE s.epoch + 1 END,
                       acquired_at = CASE WHEN s.owner_node = $2 AND s.owner_generation = $3 AND s.expires_at > now()
                                    THEN s.acquired_at ELSE now() END,
                       owner_node = $2, owner_generation = $3, expires_at = now() + $4, renewed_at = now()
                 WHERE s.expires_at <= now() OR (s.owner_node = $2 AND s.owner_generation = $3)
                    OR {MembershipStore.HolderIsDead("s.owner_node", "s.owner_generation")}
                RETURNING epoch
                """, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = name });
            command.Parameters.Add(new NpgsqlParameter { Value = owner.NodeId });
            command.Parameters.Add(new NpgsqlParameter { Value = owner.Generation });
            command.Parameters.Add(new NpgsqlParameter { Value = duration });
            var epoch = await command.ExecuteScalarAsync(ct);
            return epoch is long e ? new SingletonLease(name, e, owner) : null;
        }, cancellationToken);
    }

    /// <summary>Extends a held lease; fails once another owner has taken over.</summary>
    /// <param name="lease">The lease.</param>
    /// <param name="duration">The new remaining time.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether the lease is still ours.</returns>
    public async Task<bool> RenewAsync(SingletonLease lease, TimeSpan duration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand(
                "UPDATE singleton_leases SET expires_at = now() + $3, renewed_at = now() WHERE name = $1 AND epoch = $2", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = lease.Name });
            command.Parameters.Add(new NpgsqlParameter { Value = lease.Epoch });
            command.Parameters.Add(new NpgsqlParameter { Value = duration });
            return await command.ExecuteNonQueryAsync(ct) == 1;
        }, cancellationToken);
    }

    /// <summary>Releases a held lease so that another node can take over at once.</summary>
    /// <param name="lease">The lease.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether it was still ours.</returns>
    public async Task<bool> ReleaseAsync(SingletonLease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand(
                "UPDATE singleton_leases SET expires_at = '-infinity' WHERE name = $1 AND epoch = $2", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = lease.Name });
            command.Parameters.Add(new NpgsqlParameter { Value = lease.Epoch });
            return await command.ExecuteNonQueryAsync(ct) == 1;
        }, cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="write"/> in a transaction fenced by <paramref name="lease"/>: the lease row is locked and
    /// its epoch checked first; if another owner has taken over, nothing is written.
    /// </summary>
    /// <param name="lease">The lease the write is made under.</param>
    /// <param name="write">The writes; they see the open connection and transaction.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> when committed; <see langword="false"/> when rejected as stale.</returns>
    public async Task<bool> WriteFencedAsync(
        SingletonLease lease, Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(write);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            if (!await Fence(lease)(connection, transaction, ct))
            {
                await transaction.RollbackAsync(ct);
                return false;
            }

            await write(connection, transaction, ct);
            await transaction.CommitAsync(ct);
            return true;
        }, cancellationToken);
    }

    /// <summary>A check, inside another store's transaction, that a lease's epoch is still current (a fence for
    /// writes made elsewhere, such as a policy publication).</summary>
    /// <param name="lease">The lease.</param>
    /// <returns>The check: true while the epoch is current (the row is share-locked until the transaction ends).</returns>
    public static Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task<bool>> Fence(SingletonLease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        return async (connection, transaction, ct) =>
        {
            await using var check = new NpgsqlCommand("SELECT epoch FROM singleton_leases WHERE name = $1 FOR SHARE", connection, transaction);
            check.Parameters.Add(new NpgsqlParameter { Value = lease.Name });
            return await check.ExecuteScalarAsync(ct) is long epoch && epoch == lease.Epoch;
        };
    }
}
