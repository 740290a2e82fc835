using DeepSeekRL.Grains.Hosting;
using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Storage.Stores;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>
/// A reward worker grain: a stateless worker next to the work pump of each silo with the reward role. It scores a
/// rollout item's stored completions with the campaign's reward pipeline, applies the rejection-sampling filter, and
/// commits scores, rewards, accepted SFT samples and counters with the reward item's completion in one transaction.
/// </summary>
/// <param name="services">The silo's services.</param>
/// <param name="logger">The log.</param>
[StatelessWorker]
public sealed class RewardWorkerGrain(SiloServices services, ILogger<RewardWorkerGrain> logger) : Grain, IRewardWorkerGrain
{
    /// <inheritdoc/>
    public Task<WorkOutcome[]> ProcessAsync(ClaimedWork[] items) => Task.Run(async () =>
    {
        var outcomes = new WorkOutcome[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            var item = WorkResults.ToClaimed(items[i]);
            outcomes[i] = await WorkResults.RunAsync(services, item, logger, ct => ScoreAsync(item, ct), CancellationToken.None);
        }

        return outcomes;
    });

    private async Task ScoreAsync(ClaimedItem item, CancellationToken cancellationToken)
    {
        var work = CampaignJson.Deserialize<RewardWork>(item.Payload, "reward item");
        var definition = await services.Catalog.GetAsync(work.CampaignId, cancellationToken);
        var completions = await WorkResults.ReadCompletionsAsync(services.DataSource, work.RolloutItemId, cancellationToken);
        var scored = await new RewardScorer(services.Catalog).ScoreAsync(work, completions, cancellationToken);
        var accepted = new SampleFilter(definition, services.DataSource).Select(completions, scored.Scores);
        var samples = accepted.Select(a => new SftSample(work.CampaignId, a.Completion.Step, a.Completion.PolicyVersion, a.Completion.Id,
            a.Completion.Prompt, a.Reasoning, a.Answer, a.Reward, a.ScoresJson, a.VerdictsJson)).ToList();
        await WorkResults.CompleteRewardAsync(services.Queue, item, work, completions.Count, scored, samples, cancellationToken);
    }
}
