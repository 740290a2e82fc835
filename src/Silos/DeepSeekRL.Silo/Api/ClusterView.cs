using System.Text.Json.Nodes;
using DeepSeekRL.Storage.Membership;
using Npgsql;

namespace DeepSeekRL.Silo.Api;

/// <summary>The Nodes view: the Orleans silos of the database's clusters as their membership rows record them, with
/// the leases they hold and, for the silos of the API's own cluster, their grain activations by type.</summary>
internal static class ClusterView
{
    /// <summary>Lists the silos (dead ones too: a recent death is worth seeing), newest first within each cluster.</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="grains">The API's silo, or null.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>One JSON object per silo.</returns>
    public static async Task<JsonArray> NodesAsync(NpgsqlDataSource dataSource, IGrainFactory? grains, CancellationToken cancellationToken)
    {
        var rows = await new MembershipStore(dataSource).ListAsync(null, includeDead: true, cancellationToken);
        var activations = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        if (grains is not null)
        {
            try
            {
                var statistics = await grains.GetGrain<IManagementGrain>(0).GetSimpleGrainStatistics(cancellationToken).WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
                foreach (var statistic in statistics)
                {
                    var key = $"{statistic.SiloAddress.Endpoint}@{statistic.SiloAddress.Generation}";
                    var byType = activations.TryGetValue(key, out var found) ? found : activations[key] = new Dictionary<string, int>(StringComparer.Ordinal);
                    var type = statistic.GrainType[(statistic.GrainType.LastIndexOf('.') + 1)..];
                    if (type.StartsWith("DeepSeekRL", StringComparison.Ordinal) || statistic.GrainType.StartsWith("DeepSeekRL", StringComparison.Ordinal))
                    {
                        byType[type] = byType.GetValueOrDefault(type) + statistic.ActivationCount;
                    }
                }
            }
            catch (Exception ex) when (ex is TimeoutException or OrleansException or SiloUnavailableException)
            {
                // The activations column stays empty; the rest comes from the database.
            }
        }

        // A silo that stopped writing I-am-alive (every 10 s) a minute ago is silent: a process killed while alone in
        // its cluster (a killed 'campaign run') is never declared dead by anyone. Silent and dead silos show for 10 minutes.
        var now = TimeProvider.System.GetUtcNow();
        var list = new JsonArray();
        foreach (var row in rows.Where(r => r.AliveAt > now.AddMinutes(-10) || (r.Status != "Dead" && r.Status != "Active")).Take(200))
        {
            var state = row.Status == "Active" && row.AliveAt < now.AddMinutes(-1) ? "silent" : row.Status.ToLowerInvariant();
            var node = new JsonObject
            {
                ["node_id"] = row.Name,
                ["cluster_id"] = row.ClusterId,
                ["address"] = row.Address,
                ["generation"] = row.Generation,
                ["roles"] = new JsonArray([.. row.Roles.Select(r => (JsonNode?)r)]),
                ["state"] = state,
                ["alive_at"] = row.AliveAt,
                ["started_at"] = row.StartedAt,
                ["host"] = row.Host,
                ["leases"] = row.Leases,
                ["singletons"] = new JsonArray([.. row.Singletons.Select(s => (JsonNode?)s)]),
            };
            if (activations.TryGetValue($"{row.Address}@{row.Generation}", out var byType))
            {
                node["activations"] = new JsonObject(byType.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value)));
            }

            list.Add(node);
        }

        return list;
    }
}
