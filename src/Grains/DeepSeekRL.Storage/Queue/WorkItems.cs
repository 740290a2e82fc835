using DeepSeekRL.Storage.Nodes;

namespace DeepSeekRL.Storage.Queue;

/// <summary>A work item to enqueue.</summary>
/// <param name="CampaignId">The campaign.</param>
/// <param name="Kind">The kind (rollout, reward, eval, ...): workers claim by kind.</param>
/// <param name="IdempotencyKey">Unique per campaign: enqueueing the same key twice stores one item.</param>
/// <param name="Payload">The payload as a JSON document.</param>
/// <param name="PolicyVersion">The policy version the item needs, if any.</param>
/// <param name="Priority">Higher is claimed first; default 0.</param>
/// <param name="MaxAttempts">Claims allowed before the item fails; default 5.</param>
public sealed record NewWorkItem(
    long CampaignId, string Kind, string IdempotencyKey, string Payload, int? PolicyVersion = null, int Priority = 0, int MaxAttempts = 5);

/// <summary>A claimed item: the claimant's lease on one attempt of it.</summary>
/// <param name="Id">The item id.</param>
/// <param name="CampaignId">The campaign.</param>
/// <param name="Kind">The kind.</param>
/// <param name="IdempotencyKey">The idempotency key.</param>
/// <param name="Payload">The payload JSON.</param>
/// <param name="Attempt">The attempt this lease is for (1 on the first claim).</param>
/// <param name="PolicyVersion">The required policy version, if any.</param>
/// <param name="Owner">The claimant.</param>
/// <param name="LeaseExpiresAt">When the lease expires unless renewed (server clock).</param>
public sealed record ClaimedItem(
    long Id, long CampaignId, string Kind, string IdempotencyKey, string Payload, int Attempt, int? PolicyVersion,
    NodeIdentity Owner, DateTimeOffset LeaseExpiresAt);

/// <summary>How a completion was received.</summary>
public enum CompletionStatus
{
    /// <summary>The result was accepted now.</summary>
    Accepted,

    /// <summary>This very lease's result had been accepted before (a retry after a lost reply): nothing was written again.</summary>
    AlreadyAccepted,

    /// <summary>The claimant no longer holds that attempt's lease (expired and rescued, node declared dead, or another attempt won): nothing was written.</summary>
    Rejected,
}

/// <summary>What a rescue of expired leases did.</summary>
/// <param name="Requeued">Items put back to pending for another attempt.</param>
/// <param name="Failed">Items failed because they used their last attempt.</param>
public sealed record RescueReport(int Requeued, int Failed);

/// <summary>Counts of a campaign's items by state.</summary>
/// <param name="Pending">Waiting to be claimed.</param>
/// <param name="Running">Leased.</param>
/// <param name="Completed">Completed (hot table and archive).</param>
/// <param name="Failed">Failed (hot table and archive).</param>
public sealed record QueueCounts(long Pending, long Running, long Completed, long Failed);
