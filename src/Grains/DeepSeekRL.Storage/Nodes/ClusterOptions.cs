namespace DeepSeekRL.Storage.Nodes;

/// <summary>Timing of the cluster protocol: heartbeats, leases, dead-node detection, polling.</summary>
public sealed class ClusterOptions
{
    /// <summary>How often a node heartbeats (which also renews all of its leases). Default 1 s; range 100 ms .. 1 min.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Silence after which a node is declared dead and its leases released. Default 5 s; at least 2 heartbeat intervals.</summary>
    public TimeSpan DeadAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Lease time given at claim and at each heartbeat. Default 30 s; longer than <see cref="DeadAfter"/>, so that detection, not expiry, is the usual path.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Fallback polling interval when no NOTIFY arrives. Default 1 s.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Checks the options; returns a message naming the bad option and value, or <see langword="null"/>.</summary>
    /// <returns>The error or <see langword="null"/>.</returns>
    public string? Validate()
    {
        if (HeartbeatInterval < TimeSpan.FromMilliseconds(100) || HeartbeatInterval > TimeSpan.FromMinutes(1))
        {
            return $"ClusterOptions.HeartbeatInterval = {HeartbeatInterval}: expected between 100 ms and 1 min";
        }

        if (DeadAfter < 2 * HeartbeatInterval)
        {
            return $"ClusterOptions.DeadAfter = {DeadAfter}: expected at least two heartbeat intervals ({2 * HeartbeatInterval})";
        }

        if (LeaseDuration <= DeadAfter)
        {
            return $"ClusterOptions.LeaseDuration = {LeaseDuration}: expected longer than DeadAfter ({DeadAfter})";
        }

        return PollInterval <= TimeSpan.Zero ? $"ClusterOptions.PollInterval = {PollInterval}: expected a positive interval" : null;
    }
}
