using Npgsql;

namespace DeepSeekRL.Storage.Membership;

/// <summary>A silo as its membership row records it.</summary>
/// <param name="ClusterId">The cluster it belongs to.</param>
/// <param name="Address">Its IP address and silo port (<c>ip:port</c>).</param>
/// <param name="Generation">Its Orleans generation (one per process start).</param>
/// <param name="Name">Its silo name (<c>--node-id</c>).</param>
/// <param name="Host">The host name.</param>
/// <param name="Status">Orleans' status name: Created, Joining, Active, ShuttingDown, Stopping, Dead.</param>
/// <param name="GatewayPort">The gateway (client) port, 0 when none.</param>
/// <param name="Roles">DeepSeekRL roles.</param>
/// <param name="StartedAt">When it started.</param>
/// <param name="AliveAt">Its last I-am-alive write.</param>
/// <param name="Leases">Work items it holds.</param>
/// <param name="Singletons">Singleton leases it holds (e.g. <c>learner/7</c>).</param>
public sealed record SiloRow(
    string ClusterId, string Address, int Generation, string Name, string Host, string Status, int GatewayPort,
    IReadOnlyList<string> Roles, DateTimeOffset StartedAt, DateTimeOffset AliveAt, long Leases, IReadOnlyList<string> Singletons);

/// <summary>Reads the cluster's identity and its silos for people (CLI, API, dashboard) and for lease hand-over.</summary>
/// <param name="dataSource">The database.</param>
public sealed class MembershipStore(NpgsqlDataSource dataSource)
{
    /// <summary>Orleans' <c>SiloStatus.Dead</c>, as stored.</summary>
    public const int DeadStatus = 6;

    /// <summary>The SQL condition "the silo named <paramref name="name"/> of generation <paramref name="generation"/> is dead".</summary>
    /// <param name="name">The SQL expression of the holder's silo name.</param>
    /// <param name="generation">The SQL expression of its generation.</param>
    /// <returns>An EXISTS condition.</returns>
    public static string HolderIsDead(string name, string generation) =>
        $"EXISTS (SELECT 1 FROM membership m WHERE m.silo_name = {name} AND m.generation = {generation} AND m.status = {DeadStatus})";

    /// <summary>The database's cluster id (<c>deepseekrl-</c> and the uuid created with the schema): the Orleans
    /// service id of every cluster on this database, and the cluster id of its shared cluster.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The id.</returns>
    public async Task<string> ClusterIdAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT cluster_id::text FROM cluster_info");
        return "deepseekrl-" + (string)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Lists silos, newest first within each cluster.</summary>
    /// <param name="clusterId">Only this cluster's silos, when given.</param>
    /// <param name="includeDead">Whether to list dead silos too.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The silos.</returns>
    public async Task<IReadOnlyList<SiloRow>> ListAsync(string? clusterId, bool includeDead, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT cluster_id, address || ':' || port, generation, silo_name, host_name, status, proxy_port, roles, start_time, i_am_alive_time,
                   (SELECT count(*) FROM work_items w WHERE w.state = 'running' AND w.lease_node = m.silo_name AND w.lease_generation = m.generation),
                   ARRAY(SELECT s.name FROM singleton_leases s
                          WHERE s.owner_node = m.silo_name AND s.owner_generation = m.generation AND s.expires_at > now() ORDER BY s.name)
              FROM membership m
             WHERE ($1::text IS NULL OR cluster_id = $1){(includeDead ? string.Empty : $" AND status <> {DeadStatus}")}
             ORDER BY cluster_id, start_time DESC, silo_name
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)clusterId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        var rows = new List<SiloRow>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new SiloRow(
                reader.GetString(0), reader.GetString(1), reader.GetInt32(2), reader.GetString(3), reader.GetString(4), StatusName(reader.GetInt32(5)),
                reader.GetInt32(6), reader.GetFieldValue<string[]>(7), reader.GetFieldValue<DateTimeOffset>(8), reader.GetFieldValue<DateTimeOffset>(9),
                reader.GetInt64(10), reader.GetFieldValue<string[]>(11)));
        }

        return rows;
    }

    /// <summary>The name of an Orleans silo status as stored.</summary>
    /// <param name="status">The stored value.</param>
    /// <returns>The name.</returns>
    public static string StatusName(int status) => status switch
    {
        0 => "None",
        1 => "Created",
        2 => "Joining",
        3 => "Active",
        4 => "ShuttingDown",
        5 => "Stopping",
        DeadStatus => "Dead",
        _ => $"status {status}",
    };
}
