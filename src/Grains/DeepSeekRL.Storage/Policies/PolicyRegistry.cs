using System.Globalization;
using System.Security.Cryptography;
using DeepSeekRL.Storage.Resilience;
using Npgsql;
using NpgsqlTypes;
using Polly;

namespace DeepSeekRL.Storage.Policies;

/// <summary>A published policy version.</summary>
/// <param name="CampaignId">The campaign.</param>
/// <param name="Version">The version number.</param>
/// <param name="Uri"><c>pg-lo:OID</c> for bytes kept in PostgreSQL, or a <c>file://</c> URI.</param>
/// <param name="Sha256">The SHA-256 of the checkpoint bytes (lower-case hex).</param>
/// <param name="SizeBytes">The size of the checkpoint.</param>
/// <param name="CreatedAt">When it was published (server clock).</param>
public sealed record PolicyVersion(long CampaignId, int Version, string Uri, string Sha256, long SizeBytes, DateTimeOffset CreatedAt);

/// <summary>Options of the policy registry.</summary>
public sealed class PolicyRegistryOptions
{
    /// <summary>Checkpoints up to this size are stored inside PostgreSQL as large objects. Default 256 MiB; 0 stores every checkpoint as a file.</summary>
    public long MaxDatabaseBytes { get; set; } = 256L << 20;

    /// <summary>Where larger checkpoints are written (must be shared by every node that loads them). Required for files beyond <see cref="MaxDatabaseBytes"/>.</summary>
    public string? ArtifactDirectory { get; set; }
}

/// <summary>
/// The registry of policy versions. Publishing writes the artifact (a large object, or a file beyond the size limit),
/// then the row and one NOTIFY in the same transaction; readers verify the SHA-256 of what they read.
/// </summary>
public sealed class PolicyRegistry(NpgsqlDataSource dataSource, PolicyRegistryOptions? options = null, ResiliencePipeline? pipeline = null)
{
    /// <summary>The NOTIFY channel; the payload is <c>campaign:version</c>.</summary>
    public const string Channel = "deepseekrl_policy";

    private const int ChunkBytes = 4 << 20;
    private readonly PolicyRegistryOptions _options = options ?? new PolicyRegistryOptions();
    private readonly ResiliencePipeline _pipeline = pipeline ?? DatabaseResilience.Default;

    /// <summary>Publishes the checkpoint file <paramref name="checkpointPath"/> as <paramref name="version"/> of a campaign.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="version">The version; publishing an existing version with the same bytes is a no-op, with other bytes an error.</param>
    /// <param name="checkpointPath">The checkpoint file.</param>
    /// <param name="fence">The transaction guard of the publisher (e.g. a learner's fenced write), or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The published version, or an error (a conflicting earlier publication, a rejected fence).</returns>
    public async Task<Outcome<PolicyVersion>> PublishAsync(
        long campaignId, int version, string checkpointPath,
        Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task<bool>>? fence = null,
        CancellationToken cancellationToken = default)
    {
        var (sha, size) = await HashFileAsync(checkpointPath, cancellationToken);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            if (fence is not null && !await fence(connection, transaction, ct))
            {
                return Outcome<PolicyVersion>.Failure($"publishing policy version {version} of campaign {campaignId} was rejected: the publisher's lease is stale");
            }

            var existing = await GetAsync(connection, transaction, campaignId, version, ct);
            if (existing is not null)
            {
                return existing.Sha256 == sha
                    ? Outcome<PolicyVersion>.Success(existing)
                    : Outcome<PolicyVersion>.Failure($"policy version {version} of campaign {campaignId} already exists with other bytes (sha256 {existing.Sha256[..12]}, new {sha[..12]})");
            }

            string uri;
            uint? oid = null;
            if (size <= _options.MaxDatabaseBytes)
            {
                oid = await WriteLargeObjectAsync(connection, transaction, checkpointPath, ct);
                uri = "pg-lo:" + oid.Value.ToString(CultureInfo.InvariantCulture);
            }
            else
            {
                if (string.IsNullOrEmpty(_options.ArtifactDirectory))
                {
                    return Outcome<PolicyVersion>.Failure(
                        $"checkpoint {checkpointPath} is {size} bytes, above PolicyRegistryOptions.MaxDatabaseBytes ({_options.MaxDatabaseBytes}), and no ArtifactDirectory is configured");
                }

                var target = Path.Combine(_options.ArtifactDirectory, $"campaign-{campaignId}", $"policy-{version}-{sha[..16]}.bin");
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                var temp = target + ".tmp-" + Guid.NewGuid().ToString("N");
                File.Copy(checkpointPath, temp, overwrite: true);
                File.Move(temp, target, overwrite: true);
                uri = new Uri(target).AbsoluteUri;
            }

            await using var insert = new NpgsqlCommand("""
                INSERT INTO policy_versions (campaign_id, version, uri, sha256, size_bytes, lo_oid)
                VALUES ($1, $2, $3, $4, $5, $6)
                RETURNING created_at
                """, connection, transaction);
            insert.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            insert.Parameters.Add(new NpgsqlParameter { Value = version });
            insert.Parameters.Add(new NpgsqlParameter { Value = uri });
            insert.Parameters.Add(new NpgsqlParameter { Value = sha });
            insert.Parameters.Add(new NpgsqlParameter { Value = size });
            insert.Parameters.Add(new NpgsqlParameter { Value = oid.HasValue ? oid.Value : DBNull.Value, NpgsqlDbType = NpgsqlDbType.Oid });
            var created = (DateTime)(await insert.ExecuteScalarAsync(ct))!;

            await using (var notify = new NpgsqlCommand("SELECT pg_notify($1, $2)", connection, transaction))
            {
                notify.Parameters.Add(new NpgsqlParameter { Value = Channel });
                notify.Parameters.Add(new NpgsqlParameter { Value = $"{campaignId}:{version}" });
                await notify.ExecuteNonQueryAsync(ct);
            }

            await transaction.CommitAsync(ct);
            return Outcome<PolicyVersion>.Success(new PolicyVersion(campaignId, version, uri, sha, size, new DateTimeOffset(created, TimeSpan.Zero)));
        }, cancellationToken);
    }

    /// <summary>Looks up a version.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="version">The version.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The version, or <see langword="null"/>.</returns>
    public async Task<PolicyVersion?> GetAsync(long campaignId, int version, CancellationToken cancellationToken)
    {
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            return await GetAsync(connection, null, campaignId, version, ct);
        }, cancellationToken);
    }

    /// <summary>The newest version of a campaign.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The version, or <see langword="null"/> when none was published.</returns>
    public async Task<PolicyVersion?> LatestAsync(long campaignId, CancellationToken cancellationToken)
    {
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var command = new NpgsqlCommand(
                "SELECT max(version) FROM policy_versions WHERE campaign_id = $1", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            return await command.ExecuteScalarAsync(ct) is int v ? await GetAsync(connection, null, campaignId, v, ct) : null;
        }, cancellationToken);
    }

    /// <summary>Copies a version's checkpoint to <paramref name="destinationPath"/> and verifies its SHA-256.</summary>
    /// <param name="version">The version.</param>
    /// <param name="destinationPath">Where to write (written to a temporary name, then renamed).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Success, or an error naming the version and the mismatch.</returns>
    public async Task<Outcome<string>> DownloadAsync(PolicyVersion version, string destinationPath, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(version);
        var temp = destinationPath + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            if (version.Uri.StartsWith("pg-lo:", StringComparison.Ordinal))
            {
                var oid = uint.Parse(version.Uri.AsSpan(6), CultureInfo.InvariantCulture);
                await _pipeline.ExecuteAsync(async ct =>
                {
                    await using var connection = await dataSource.OpenConnectionAsync(ct);
                    await using var file = new FileStream(temp, FileMode.Create, FileAccess.Write);
                    for (long offset = 0; offset < version.SizeBytes; offset += ChunkBytes)
                    {
                        await using var read = new NpgsqlCommand("SELECT lo_get($1, $2, $3)", connection);
                        read.Parameters.Add(new NpgsqlParameter { Value = oid, NpgsqlDbType = NpgsqlDbType.Oid });
                        read.Parameters.Add(new NpgsqlParameter { Value = offset });
                        read.Parameters.Add(new NpgsqlParameter { Value = (int)Math.Min(ChunkBytes, version.SizeBytes - offset) });
                        var bytes = (byte[])(await read.ExecuteScalarAsync(ct))!;
                        await file.WriteAsync(bytes, ct);
                    }
                }, cancellationToken);
            }
            else if (Uri.TryCreate(version.Uri, UriKind.Absolute, out var uri) && uri.IsFile)
            {
                if (!File.Exists(uri.LocalPath))
                {
                    return Outcome<string>.Failure($"policy version {version.Version} of campaign {version.CampaignId}: {uri.LocalPath} does not exist");
                }

                File.Copy(uri.LocalPath, temp, overwrite: true);
            }
            else
            {
                return Outcome<string>.Failure($"policy version {version.Version} of campaign {version.CampaignId}: unsupported URI '{version.Uri}'");
            }

            var (sha, size) = await HashFileAsync(temp, cancellationToken);
            if (sha != version.Sha256 || size != version.SizeBytes)
            {
                return Outcome<string>.Failure(
                    $"policy version {version.Version} of campaign {version.CampaignId}: checksum mismatch (expected sha256 {version.Sha256[..12]} and {version.SizeBytes} bytes, read {sha[..12]} and {size} bytes)");
            }

            File.Move(temp, destinationPath, overwrite: true);
            return Outcome<string>.Success(destinationPath);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static async Task<uint> WriteLargeObjectAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string path, CancellationToken cancellationToken)
    {
        uint oid;
        await using (var create = new NpgsqlCommand("SELECT lo_create(0)", connection, transaction))
        {
            oid = (uint)(await create.ExecuteScalarAsync(cancellationToken))!;
        }

        // Chunked lo_put: constant memory whatever the checkpoint's size.
        var buffer = new byte[ChunkBytes];
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        long offset = 0;
        int read;
        while ((read = await file.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken)) > 0)
        {
            await using var put = new NpgsqlCommand("SELECT lo_put($1, $2, $3)", connection, transaction);
            put.Parameters.Add(new NpgsqlParameter { Value = oid, NpgsqlDbType = NpgsqlDbType.Oid });
            put.Parameters.Add(new NpgsqlParameter { Value = offset });
            put.Parameters.Add(new NpgsqlParameter { Value = new ArraySegment<byte>(buffer, 0, read), NpgsqlDbType = NpgsqlDbType.Bytea });
            await put.ExecuteNonQueryAsync(cancellationToken);
            offset += read;
        }

        return oid;
    }

    private static async Task<PolicyVersion?> GetAsync(
        NpgsqlConnection connection, NpgsqlTransaction? transaction, long campaignId, int version, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT uri, sha256, size_bytes, created_at FROM policy_versions WHERE campaign_id = $1 AND version = $2", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
        command.Parameters.Add(new NpgsqlParameter { Value = version });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new PolicyVersion(campaignId, version, reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetFieldValue<DateTimeOffset>(3))
            : null;
    }

    private static async Task<(string Sha256, long Size)> HashFileAsync(string path, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        var hash = await SHA256.HashDataAsync(file, cancellationToken);
        return (Convert.ToHexStringLower(hash), file.Length);
    }
}
