using System.Text.Json;
using DeepSeekRL.Storage.Resilience;
using Npgsql;
using NpgsqlTypes;
using Polly;

namespace DeepSeekRL.Storage.Nodes;

/// <summary>One incarnation of a silo process: its id and the generation of this registration.</summary>
/// <param name="NodeId">The node id (stable across restarts when configured, e.g. a host name).</param>
/// <param name="Generation">Grows each time the node id registers again.</param>
public readonly record struct NodeIdentity(string NodeId, long Generation)
{
    /// <inheritdoc/>
    public override string ToString() => $"{NodeId}#{Generation}";
}

/// <summary>A registered node as stored.</summary>
/// <param name="Identity">The identity.</param>
/// <param name="Roles">The roles it runs.</param>
/// <param name="State"><c>alive</c>, <c>dead</c> or <c>left</c>.</param>
/// <param name="HeartbeatAt">The last heartbeat (server clock).</param>
/// <param name="Host">The host name.</param>
/// <param name="Pid">The process id.</param>
public sealed record NodeInfo(NodeIdentity Identity, IReadOnlyList<string> Roles, string State, DateTimeOffset HeartbeatAt, string Host, int Pid);

/// <summary>What a dead-node sweep did.</summary>
/// <param name="DeadNodes">The nodes declared dead by this sweep.</param>
/// <param name="ReleasedItems">Work items whose leases were released at once (back to pending, or failed).</param>
public sealed record DeadNodeSweep(IReadOnlyList<NodeIdentity> DeadNodes, int ReleasedItems);

/// <summary>
/// The node registry: registration with a generation, heartbeats that also renew every lease the node holds (one
/// statement for the leases), and detection of dead nodes whose leases are then released at once instead of waiting
/// for them to expire.
/// </summary>
/// <remarks>All times are the database server's clock, so machines with skewed clocks agree.</remarks>
public sealed class NodeRegistry(NpgsqlDataSource dataSource, ResiliencePipeline? pipeline = null)
{
    private readonly ResiliencePipeline _pipeline = pipeline ?? DatabaseResilience.Default;

    /// <summary>Registers (or re-registers) a node; a re-registration gets the next generation and releases the
    /// leases of every earlier generation, which cannot be running any more.</summary>
    /// <param name="nodeId">The node id.</param>
    /// <param name="roles">The roles it runs.</param>
    /// <param name="capabilities">Free-form capabilities (JSON object), e.g. threads, model families.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The identity of this incarnation.</returns>
    public async Task<NodeIdentity> RegisterAsync(string nodeId, IReadOnlyList<string> roles, JsonElement? capabilities, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nodeId);
        ArgumentNullException.ThrowIfNull(roles);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            await using var command = new NpgsqlCommand("""
                INSERT INTO nodes AS n (node_id, generation, roles, capabilities, host, pid, state, started_at, heartbeat_at)
                VALUES ($1, 1, $2, $3, $4, $5, 'alive', now(), now())
                ON CONFLICT (node_id) DO UPDATE
                   SET generation = n.generation + 1, roles = EXCLUDED.roles, capabilities = EXCLUDED.capabilities,
                       host = EXCLUDED.host, pid = EXCLUDED.pid, state = 'alive', started_at = now(), heartbeat_at = now()
                RETURNING generation
                """, connection, transaction);
            command.Parameters.Add(new NpgsqlParameter { Value = nodeId });
            command.Parameters.Add(new NpgsqlParameter { Value = roles.ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = capabilities?.GetRawText() ?? "{}", NpgsqlDbType = NpgsqlDbType.Jsonb });
            command.Parameters.Add(new NpgsqlParameter { Value = Environment.MachineName });
            command.Parameters.Add(new NpgsqlParameter { Value = Environment.ProcessId });
            var generation = (long)(await command.ExecuteScalarAsync(ct))!;

            await using var release = new NpgsqlCommand(ReleaseSql("lease_node = $1 AND lease_generation < $2"), connection, transaction);
            release.Parameters.Add(new NpgsqlParameter { Value = nodeId });
            release.Parameters.Add(new NpgsqlParameter { Value = generation });
            await release.ExecuteNonQueryAsync(ct);
            await transaction.CommitAsync(ct);
            return new NodeIdentity(nodeId, generation);
        }, cancellationToken);
    }

    /// <summary>
    /// Records a heartbeat and renews all of the node's leases to <paramref name="leaseDuration"/> from now, in one
    /// round trip. A node that was declared dead meanwhile learns it here (its leases are gone) and must re-register.
    /// </summary>
    /// <param name="node">The node.</param>
    /// <param name="leaseDuration">The new remaining lease time of every item it holds.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether the node is still alive, and how many leases were renewed.</returns>
    public async Task<(bool Alive, int LeasesRenewed)> HeartbeatAsync(NodeIdentity node, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var batch = new NpgsqlBatch(connection)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("UPDATE nodes SET heartbeat_at = now() WHERE node_id = $1 AND generation = $2 AND state = 'alive'")
                    {
                        Parameters = { new() { Value = node.NodeId }, new() { Value = node.Generation } },
                    },
                    new NpgsqlBatchCommand("""
                        UPDATE work_items SET lease_expires_at = now() + $3, updated_at = now()
                         WHERE state = 'running' AND lease_node = $1 AND lease_generation = $2
                           AND EXISTS (SELECT 1 FROM nodes WHERE node_id = $1 AND generation = $2 AND state = 'alive')
                        """)
                    {
                        Parameters = { new() { Value = node.NodeId }, new() { Value = node.Generation }, new() { Value = leaseDuration } },
                    },
                },
            };
            await using var reader = await batch.ExecuteReaderAsync(ct);
            while (await reader.NextResultAsync(ct))
            {
            }

            return (batch.BatchCommands[0].RecordsAffected == 1, batch.BatchCommands[1].RecordsAffected);
        }, cancellationToken);
    }

    /// <summary>
    /// Declares dead every alive node whose last heartbeat is older than <paramref name="deadAfter"/> and releases
    /// its leases at once: items go back to pending, or to failed when they used their last attempt.
    /// </summary>
    /// <param name="deadAfter">The silence after which a node is dead (several heartbeat intervals).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The nodes declared dead and the number of items released.</returns>
    public async Task<DeadNodeSweep> SweepDeadAsync(TimeSpan deadAfter, CancellationToken cancellationToken)
    {
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand($"""
                WITH dead AS (
                    UPDATE nodes SET state = 'dead'
                     WHERE state = 'alive' AND heartbeat_at < now() - $1
                    RETURNING node_id, generation
                ), released AS (
                    {ReleaseSql("(lease_node, lease_generation) IN (SELECT node_id, generation FROM dead)")}
                    RETURNING 1
                )
                SELECT d.node_id, d.generation, (SELECT count(*) FROM released) FROM dead d
                UNION ALL
                SELECT NULL, NULL, (SELECT count(*) FROM released) WHERE NOT EXISTS (SELECT 1 FROM dead)
                """, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = deadAfter });
            var dead = new List<NodeIdentity>();
            var released = 0;
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                released = (int)reader.GetInt64(2);
                if (!reader.IsDBNull(0))
                {
                    dead.Add(new NodeIdentity(reader.GetString(0), reader.GetInt64(1)));
                }
            }

            return new DeadNodeSweep(dead, released);
        }, cancellationToken);
    }

    /// <summary>Marks the node as having left cleanly and releases its leases.</summary>
    /// <param name="node">The node.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public async Task LeaveAsync(NodeIdentity node, CancellationToken cancellationToken)
    {
        await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand($"""
                WITH left_node AS (
                    UPDATE nodes SET state = 'left' WHERE node_id = $1 AND generation = $2 RETURNING 1
                )
                {ReleaseSql("lease_node = $1 AND lease_generation = $2")}
                """, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = node.NodeId });
            command.Parameters.Add(new NpgsqlParameter { Value = node.Generation });
            await command.ExecuteNonQueryAsync(ct);
        }, cancellationToken);
    }

    /// <summary>Lists the registered nodes.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The nodes, by id.</returns>
    public async Task<IReadOnlyList<NodeInfo>> ListAsync(CancellationToken cancellationToken)
    {
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand("SELECT node_id, generation, roles, state, heartbeat_at, host, pid FROM nodes ORDER BY node_id", connection);
            var nodes = new List<NodeInfo>();
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                nodes.Add(new NodeInfo(
                    new NodeIdentity(reader.GetString(0), reader.GetInt64(1)), reader.GetFieldValue<string[]>(2), reader.GetString(3),
                    reader.GetFieldValue<DateTimeOffset>(4), reader.GetString(5), reader.GetInt32(6)));
            }

            return nodes;
        }, cancellationToken);
    }

    /// <summary>The statement that releases running items matching <paramref name="where"/>.</summary>
    /// <param name="where">The condition on <c>work_items</c>.</param>
    /// <returns>An UPDATE statement (without RETURNING).</returns>
    internal static string ReleaseSql(string where) => $"""
        UPDATE work_items
           SET state = CASE WHEN attempt >= max_attempts THEN 'failed' ELSE 'pending' END,
               last_error = 'lease released: node ' || lease_node || '#' || lease_generation || ' is gone',
               finished_at = CASE WHEN attempt >= max_attempts THEN now() END,
               lease_node = NULL, lease_generation = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE state = 'running' AND {where}
        """;
}
