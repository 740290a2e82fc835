using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.Options;
using Npgsql;
using OrleansClusterOptions = Orleans.Configuration.ClusterOptions;

namespace DeepSeekRL.Storage.Membership;

/// <summary>What the membership table records about the local silo beyond what Orleans gives it.</summary>
public sealed class MembershipTableOptions
{
    /// <summary>The DeepSeekRL roles of the local silo, stored with its row (the dashboard's Nodes view shows them).</summary>
    public IReadOnlyList<string> Roles { get; set; } = [];
}

/// <summary>
/// Orleans' membership table over the project's own PostgreSQL tables (<c>membership_versions</c>, <c>membership</c>;
/// migration 0005). Every change of a row advances the cluster's table version in the same transaction and only if
/// the caller read the current version (its etag), which is the optimistic concurrency Orleans' membership protocol
/// is built on; a row update also checks the row's own etag.
/// </summary>
/// <param name="dataSource">The database.</param>
/// <param name="cluster">Orleans' cluster options (the cluster id keys every row).</param>
/// <param name="options">The local silo's roles.</param>
public sealed class PostgresMembershipTable(
    NpgsqlDataSource dataSource, IOptions<OrleansClusterOptions> cluster, IOptions<MembershipTableOptions> options) : IMembershipTable
{
    private const string Columns = "address, port, generation, silo_name, host_name, status, proxy_port, suspect_times, start_time, i_am_alive_time, etag";

    private string ClusterId => cluster.Value.ClusterId;

    /// <inheritdoc/>
    public async Task InitializeMembershipTable(bool tryInitTableVersion)
    {
        if (!tryInitTableVersion)
        {
            return;
        }

        await using var command = dataSource.CreateCommand("INSERT INTO membership_versions (cluster_id) VALUES ($1) ON CONFLICT DO NOTHING");
        command.Parameters.Add(new NpgsqlParameter { Value = ClusterId });
        await command.ExecuteNonQueryAsync();
    }

    /// <inheritdoc/>
    public async Task DeleteMembershipTableEntries(string clusterId)
    {
        await using var command = dataSource.CreateCommand("DELETE FROM membership_versions WHERE cluster_id = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = clusterId });
        await command.ExecuteNonQueryAsync();
    }

    /// <inheritdoc/>
    public async Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate)
    {
        await using var command = dataSource.CreateCommand("DELETE FROM membership WHERE cluster_id = $1 AND status = $2 AND i_am_alive_time < $3");
        command.Parameters.Add(new NpgsqlParameter { Value = ClusterId });
        command.Parameters.Add(new NpgsqlParameter { Value = (int)SiloStatus.Dead });
        command.Parameters.Add(new NpgsqlParameter { Value = beforeDate.UtcDateTime });
        await command.ExecuteNonQueryAsync();
    }

    /// <inheritdoc/>
    public Task<MembershipTableData> ReadRow(SiloAddress key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return ReadAsync(key);
    }

    /// <inheritdoc/>
    public Task<MembershipTableData> ReadAll() => ReadAsync(null);

    /// <inheritdoc/>
    public async Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(tableVersion);
        return await InTableVersionAsync(tableVersion, async (connection, transaction) =>
        {
            await using var insert = new NpgsqlCommand($"""
                INSERT INTO membership (cluster_id, {Columns}, roles)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12)
                ON CONFLICT DO NOTHING
                """, connection, transaction);
            AddKey(insert, entry.SiloAddress);
            insert.Parameters.Add(new NpgsqlParameter { Value = entry.SiloName ?? string.Empty });
            insert.Parameters.Add(new NpgsqlParameter { Value = entry.HostName ?? string.Empty });
            insert.Parameters.Add(new NpgsqlParameter { Value = (int)entry.Status });
            insert.Parameters.Add(new NpgsqlParameter { Value = entry.ProxyPort });
            insert.Parameters.Add(new NpgsqlParameter { Value = (object?)FormatSuspects(entry.SuspectTimes) ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            insert.Parameters.Add(new NpgsqlParameter { Value = Utc(entry.StartTime) });
            insert.Parameters.Add(new NpgsqlParameter { Value = Utc(entry.IAmAliveTime) });
            insert.Parameters.Add(new NpgsqlParameter { Value = options.Value.Roles.ToArray() });
            return await insert.ExecuteNonQueryAsync() == 1;
        });
    }

    /// <inheritdoc/>
    public async Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(tableVersion);
        if (!long.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out var rowEtag))
        {
            return false;
        }

        return await InTableVersionAsync(tableVersion, async (connection, transaction) =>
        {
            await using var update = new NpgsqlCommand("""
                UPDATE membership SET status = $5, suspect_times = $6, i_am_alive_time = $7, etag = etag + 1
                 WHERE cluster_id = $1 AND address = $2 AND port = $3 AND generation = $4 AND etag = $8
                """, connection, transaction);
            AddKey(update, entry.SiloAddress);
            update.Parameters.Add(new NpgsqlParameter { Value = (int)entry.Status });
            update.Parameters.Add(new NpgsqlParameter { Value = (object?)FormatSuspects(entry.SuspectTimes) ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            update.Parameters.Add(new NpgsqlParameter { Value = Utc(entry.IAmAliveTime) });
            update.Parameters.Add(new NpgsqlParameter { Value = rowEtag });
            return await update.ExecuteNonQueryAsync() == 1;
        });
    }

    /// <inheritdoc/>
    public async Task UpdateIAmAlive(MembershipEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await using var command = dataSource.CreateCommand(
            "UPDATE membership SET i_am_alive_time = $5 WHERE cluster_id = $1 AND address = $2 AND port = $3 AND generation = $4");
        AddKey(command, entry.SiloAddress);
        command.Parameters.Add(new NpgsqlParameter { Value = Utc(entry.IAmAliveTime) });
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Formats death votes as <c>silo,ticks|silo,ticks</c> (null for none).</summary>
    /// <param name="suspects">The votes.</param>
    /// <returns>The text.</returns>
    internal static string? FormatSuspects(List<Tuple<SiloAddress, DateTime>>? suspects)
    {
        if (suspects is null || suspects.Count == 0)
        {
            return null;
        }

        var text = new StringBuilder();
        foreach (var (silo, time) in suspects)
        {
            text.Append(text.Length == 0 ? string.Empty : "|").Append(silo.ToParsableString()).Append(',')
                .Append(Utc(time).Ticks.ToString(CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    /// <summary>Parses death votes written by <see cref="FormatSuspects"/>; entries that do not parse are skipped.</summary>
    /// <param name="text">The text, or null.</param>
    /// <returns>The votes, or null for none.</returns>
    internal static List<Tuple<SiloAddress, DateTime>>? ParseSuspects(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        var list = new List<Tuple<SiloAddress, DateTime>>();
        foreach (var part in text.Split('|', StringSplitOptions.RemoveEmptyEntries))
        {
            var comma = part.LastIndexOf(',');
            if (comma > 0 && SiloAddress.TryParse(part[..comma], out var silo)
                && long.TryParse(part.AsSpan(comma + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                && ticks >= DateTime.MinValue.Ticks && ticks <= DateTime.MaxValue.Ticks)
            {
                list.Add(Tuple.Create(silo, new DateTime(ticks, DateTimeKind.Utc)));
            }
        }

        return list.Count == 0 ? null : list;
    }

    private static DateTime Utc(DateTime time) => time.Kind switch
    {
        DateTimeKind.Utc => time,
        DateTimeKind.Local => time.ToUniversalTime(),
        _ => DateTime.SpecifyKind(time, DateTimeKind.Utc),
    };

    private void AddKey(NpgsqlCommand command, SiloAddress silo)
    {
        command.Parameters.Add(new NpgsqlParameter { Value = ClusterId });
        command.Parameters.Add(new NpgsqlParameter { Value = silo.Endpoint.Address.ToString() });
        command.Parameters.Add(new NpgsqlParameter { Value = silo.Endpoint.Port });
        command.Parameters.Add(new NpgsqlParameter { Value = silo.Generation });
    }

    // Advances the table version from the one the caller read (its etag) and runs the row change in the same
    // transaction; false, with nothing written, when either lost a race.
    private async Task<bool> InTableVersionAsync(TableVersion tableVersion, Func<NpgsqlConnection, NpgsqlTransaction, Task<bool>> change)
    {
        if (!long.TryParse(tableVersion.VersionEtag, NumberStyles.None, CultureInfo.InvariantCulture, out var etag))
        {
            return false;
        }

        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var version = new NpgsqlCommand(
            "UPDATE membership_versions SET version = $2, etag = etag + 1, updated_at = now() WHERE cluster_id = $1 AND etag = $3", connection, transaction))
        {
            version.Parameters.Add(new NpgsqlParameter { Value = ClusterId });
            version.Parameters.Add(new NpgsqlParameter { Value = tableVersion.Version });
            version.Parameters.Add(new NpgsqlParameter { Value = etag });
            if (await version.ExecuteNonQueryAsync() != 1)
            {
                await transaction.RollbackAsync();
                return false;
            }
        }

        if (!await change(connection, transaction))
        {
            await transaction.RollbackAsync();
            return false;
        }

        await transaction.CommitAsync();
        return true;
    }

    private async Task<MembershipTableData> ReadAsync(SiloAddress? key)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
        TableVersion version;
        await using (var read = new NpgsqlCommand("SELECT version, etag FROM membership_versions WHERE cluster_id = $1", connection, transaction))
        {
            read.Parameters.Add(new NpgsqlParameter { Value = ClusterId });
            await using var reader = await read.ExecuteReaderAsync();
            version = await reader.ReadAsync()
                ? new TableVersion(reader.GetInt32(0), reader.GetInt64(1).ToString(CultureInfo.InvariantCulture))
                : new TableVersion(0, "0");
        }

        var rows = new List<Tuple<MembershipEntry, string>>();
        await using (var command = new NpgsqlCommand(
            $"SELECT {Columns} FROM membership WHERE cluster_id = $1" + (key is null ? string.Empty : " AND address = $2 AND port = $3 AND generation = $4"),
            connection, transaction))
        {
            if (key is null)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = ClusterId });
            }
            else
            {
                AddKey(command, key);
            }

            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                if (!IPAddress.TryParse(reader.GetString(0), out var address))
                {
                    continue;
                }

                var entry = new MembershipEntry
                {
                    SiloAddress = SiloAddress.New(address, reader.GetInt32(1), reader.GetInt32(2)),
                    SiloName = reader.GetString(3),
                    HostName = reader.GetString(4),
                    Status = (SiloStatus)reader.GetInt32(5),
                    ProxyPort = reader.GetInt32(6),
                    SuspectTimes = ParseSuspects(reader.IsDBNull(7) ? null : reader.GetString(7)),
                    StartTime = reader.GetFieldValue<DateTime>(8),
                    IAmAliveTime = reader.GetFieldValue<DateTime>(9),
                };
                rows.Add(Tuple.Create(entry, reader.GetInt64(10).ToString(CultureInfo.InvariantCulture)));
            }
        }

        await transaction.CommitAsync();
        return new MembershipTableData(rows, version);
    }
}
