using Npgsql;

namespace DeepSeekRL.Storage.Stores;

/// <summary>The api role's bearer token, stored as its SHA-256 only (one row).</summary>
/// <param name="dataSource">The database.</param>
public sealed class ApiTokenStore(NpgsqlDataSource dataSource)
{
    /// <summary>Sets the token's hash, replacing any other.</summary>
    /// <param name="sha256">The hash (hex).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public async Task SetAsync(string sha256, CancellationToken cancellationToken)
    {
        await using var set = dataSource.CreateCommand(
            "INSERT INTO api_tokens (singleton, sha256) VALUES (true, $1) ON CONFLICT (singleton) DO UPDATE SET sha256 = excluded.sha256, created_at = now()");
        set.Parameters.Add(new NpgsqlParameter { Value = sha256 });
        await set.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Stores the hash only if no token is stored yet.</summary>
    /// <param name="sha256">The hash (hex).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether it was stored (false: a token existed).</returns>
    public async Task<bool> TryAddAsync(string sha256, CancellationToken cancellationToken)
    {
        await using var insert = dataSource.CreateCommand("INSERT INTO api_tokens (singleton, sha256) VALUES (true, $1) ON CONFLICT DO NOTHING");
        insert.Parameters.Add(new NpgsqlParameter { Value = sha256 });
        return await insert.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    /// <summary>The stored hash, or null when none is set.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The hash.</returns>
    public async Task<string?> ReadAsync(CancellationToken cancellationToken)
    {
        await using var read = dataSource.CreateCommand("SELECT sha256 FROM api_tokens");
        return await read.ExecuteScalarAsync(cancellationToken) as string;
    }
}
