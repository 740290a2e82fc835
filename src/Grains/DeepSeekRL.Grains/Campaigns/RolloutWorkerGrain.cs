using DeepSeekRL.Grains.Hosting;
using DeepSeekRL.Storage.Queue;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>
/// A rollout worker grain: a stateless worker, so each silo with the rollout role runs its own activations next to
/// its work pump, which hands it the items the silo leased. Rollout items of one campaign and policy version are
/// generated in one batch; each item's completions, its reward item and its counters commit with the item's
/// completion in one transaction (<see cref="WorkResults"/>), so a crash at any point loses nothing and duplicates
/// nothing. Sampling runs off the grain's scheduler.
/// </summary>
/// <param name="services">The silo's services.</param>
/// <param name="logger">The log.</param>
[StatelessWorker]
public sealed partial class RolloutWorkerGrain(SiloServices services, ILogger<RolloutWorkerGrain> logger) : Grain, IRolloutWorkerGrain
{
    // The transaction completing the last rollout item, still committing while the next item is sampled.
    private Task _writing = Task.CompletedTask;

    /// <inheritdoc/>
    public Task<WorkOutcome[]> ProcessAsync(ClaimedWork[] items) => Task.Run(() => ProcessAllAsync(items, CancellationToken.None));

    private async Task<WorkOutcome[]> ProcessAllAsync(ClaimedWork[] items, CancellationToken cancellationToken)
    {
        var claimed = items.Select(WorkResults.ToClaimed).ToList();
        var prepared = new Dictionary<long, RolloutResult>();
        if (claimed.Count > 1)
        {
            try
            {
                await PrepareAsync(claimed, prepared, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Each item is then processed alone, as without batching.
                LogBatch(logger, claimed.Count, ex.GetType().Name, WorkResults.FirstLine(ex.Message));
            }
        }

        var outcomes = new WorkOutcome[claimed.Count];
        for (var i = 0; i < claimed.Count; i++)
        {
            var item = claimed[i];
            outcomes[i] = await WorkResults.RunAsync(services, item, logger, ct => item.Kind == CampaignWork.Evaluation
                ? EvaluateAsync(item, ct)
                : RolloutAsync(item, prepared.GetValueOrDefault(item.Id), ct), cancellationToken);
        }

        return outcomes;
    }

    // Rolls out the rollout items of each campaign and policy version in one batched generation.
    private async Task PrepareAsync(List<ClaimedItem> items, Dictionary<long, RolloutResult> prepared, CancellationToken cancellationToken)
    {
        var works = items.Where(i => i.Kind == CampaignWork.Rollout)
            .Select(i => (Item: i, Work: CampaignJson.Deserialize<RolloutWork>(i.Payload, "rollout item")))
            .ToList();
        foreach (var group in works.GroupBy(w => (w.Work.CampaignId, w.Work.PolicyVersion)).Where(g => g.Count() > 1))
        {
            var list = group.ToList();
            if (await services.Sampler.RolloutManyAsync([.. list.Select(w => w.Work)], cancellationToken) is { } results)
            {
                for (var i = 0; i < list.Count; i++)
                {
                    prepared[list[i].Item.Id] = results[i];
                }
            }
        }
    }

    private async Task EvaluateAsync(ClaimedItem item, CancellationToken cancellationToken)
    {
        var work = CampaignJson.Deserialize<EvaluationWork>(item.Payload, "eval item");
        var chunk = await services.Sampler.EvaluateAsync(work, cancellationToken);
        await services.Queue.CompleteAsync(item, CampaignJson.Serialize(chunk), WorkResults.NotifyAsync, cancellationToken);
    }

    private async Task RolloutAsync(ClaimedItem item, RolloutResult? prepared, CancellationToken cancellationToken)
    {
        var work = CampaignJson.Deserialize<RolloutWork>(item.Payload, "rollout item");
        var definition = await services.Catalog.GetAsync(work.CampaignId, cancellationToken);
        var result = prepared ?? await services.Sampler.RolloutAsync(work, cancellationToken);

        // One write in flight: the previous item's commit finishes first, then this item's commits in the background
        // while the pump leases and samples the next one, which takes the commit off the sampling's critical path.
        // Nothing changes for exactly-once: the write commits only under this attempt's lease, and a write that fails
        // fails the item (or its lease expires) for another attempt.
        await _writing;
        _writing = WriteAsync(item, work, definition.Train[work.PromptIndex].Prompt, result);
    }

    /// <inheritdoc/>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        await _writing.WaitAsync(cancellationToken).ContinueWith(static _ => { }, TaskScheduler.Current);

    private async Task WriteAsync(ClaimedItem item, RolloutWork work, string prompt, RolloutResult result)
    {
        try
        {
            await WorkResults.CompleteRolloutAsync(services.Queue, item, work, prompt, result, CancellationToken.None);
        }
        catch (Exception ex)
        {
            await WorkResults.FailAsync(services, item, logger, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "batch of {Count} rollout items: {Type}: {Error}; processing them one by one")]
    private static partial void LogBatch(ILogger logger, int count, string type, string error);
}
