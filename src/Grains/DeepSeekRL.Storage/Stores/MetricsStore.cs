using Npgsql;

namespace DeepSeekRL.Storage.Stores;

/// <summary>A step's or an evaluation's metrics as stored (a JSON object).</summary>
/// <param name="Step">The step (-1: an evaluation before any update).</param>
/// <param name="Json">The metrics object.</param>
public sealed record StoredMetrics(int Step, string Json);

/// <summary>Reads what campaigns recorded: step metrics, evaluations and published policy versions (for the CLI, the
/// API and the demo; the learner writes them, fenced).</summary>
/// <param name="dataSource">The database.</param>
public sealed class MetricsStore(NpgsqlDataSource dataSource)
{
    /// <summary>Step metrics after a step, in step order.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="afterStep">Only steps after this one (-1: all).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The metrics.</returns>
    public Task<IReadOnlyList<StoredMetrics>> StepsAsync(long campaignId, int afterStep, CancellationToken cancellationToken) =>
        ReadAsync("SELECT step, metrics::text FROM step_metrics WHERE campaign_id = $1 AND step > $2 ORDER BY step", campaignId, afterStep, cancellationToken);

    /// <summary>Evaluations after a step, in step order.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="afterStep">Only evaluations after this step (-2: all, including the one before any update).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The metrics.</returns>
    public Task<IReadOnlyList<StoredMetrics>> EvaluationsAsync(long campaignId, int afterStep, CancellationToken cancellationToken) =>
        ReadAsync("SELECT step, metrics::text FROM evaluations WHERE campaign_id = $1 AND step > $2 ORDER BY step", campaignId, afterStep, cancellationToken);

    /// <summary>The newest step's metrics, if any.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The metrics or null.</returns>
    public async Task<StoredMetrics?> LastStepAsync(long campaignId, CancellationToken cancellationToken)
    {
        var rows = await ReadAsync(
            "SELECT step, metrics::text FROM step_metrics WHERE campaign_id = $1 AND step > $2 ORDER BY step DESC LIMIT 1", campaignId, -1, cancellationToken);
        return rows.Count == 0 ? null : rows[0];
    }

    /// <summary>The published policy versions, as JSON objects {version, sha256, size_bytes, created_at}.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The versions in order.</returns>
    public Task<IReadOnlyList<StoredMetrics>> PolicyVersionsAsync(long campaignId, CancellationToken cancellationToken) => ReadAsync("""
        SELECT version, json_build_object('version', version, 'sha256', sha256, 'size_bytes', size_bytes, 'created_at', created_at)::text
          FROM policy_versions WHERE campaign_id = $1 AND version > $2 ORDER BY version
        """, campaignId, -1, cancellationToken);

    private async Task<IReadOnlyList<StoredMetrics>> ReadAsync(string sql, long campaignId, int after, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
        command.Parameters.Add(new NpgsqlParameter { Value = after });
        var rows = new List<StoredMetrics>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new StoredMetrics(reader.GetInt32(0), reader.GetString(1)));
        }

        return rows;
    }
}
