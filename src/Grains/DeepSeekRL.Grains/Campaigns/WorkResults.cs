using DeepSeekRL.Grains.Hosting;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Storage.Stores;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>
/// How the worker grains finish an item: the results commit with the item's completion in one transaction (only
/// while this attempt's lease is held), and an item that fails is handed back for another attempt.
/// </summary>
internal static partial class WorkResults
{
    /// <summary>The queue's lease of a claimed item, from its message.</summary>
    /// <param name="work">The message.</param>
    /// <returns>The lease.</returns>
    public static ClaimedItem ToClaimed(ClaimedWork work) => new(
        work.Id, work.CampaignId, work.Kind, work.IdempotencyKey, work.Payload, work.Attempt, work.PolicyVersion,
        new NodeIdentity(work.Holder, work.HolderGeneration), work.LeaseExpiresAt);

    /// <summary>The message of a claimed item.</summary>
    /// <param name="item">The lease.</param>
    /// <returns>The message.</returns>
    public static ClaimedWork ToMessage(ClaimedItem item) => new(
        item.Id, item.CampaignId, item.Kind, item.IdempotencyKey, item.Payload, item.Attempt, item.PolicyVersion,
        item.Owner.NodeId, item.Owner.Generation, item.LeaseExpiresAt);

    /// <summary>Runs one item's processing; a failure fails the item (retried while attempts remain).</summary>
    /// <param name="services">The silo's services.</param>
    /// <param name="item">The item.</param>
    /// <param name="logger">The log.</param>
    /// <param name="process">The processing, which completes the item.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The outcome.</returns>
    public static async Task<WorkOutcome> RunAsync(
        SiloServices services, ClaimedItem item, ILogger logger, Func<CancellationToken, Task> process, CancellationToken cancellationToken)
    {
        try
        {
            await process(cancellationToken);
            return new WorkOutcome(item.Id, true, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new WorkOutcome(item.Id, false, await FailAsync(services, item, logger, ex));
        }
    }

    /// <summary>Fails an item after an error (retried while attempts remain); says so in the log.</summary>
    /// <param name="services">The silo's services.</param>
    /// <param name="item">The item.</param>
    /// <param name="logger">The log.</param>
    /// <param name="exception">What went wrong.</param>
    /// <returns>The error recorded.</returns>
    public static async Task<string> FailAsync(SiloServices services, ClaimedItem item, ILogger logger, Exception exception)
    {
        var error = $"{exception.GetType().Name}: {FirstLine(exception.Message)}";
        LogFailed(logger, item.Kind, item.Id, item.Attempt, error);
        try
        {
            await services.Queue.FailAsync(item, error, retry: true, CancellationToken.None);
        }
        catch (Exception failEx) when (failEx is NpgsqlException or TimeoutException)
        {
            // The lease expires and the item is rescued.
        }

        return error;
    }

    /// <summary>Completes a rollout item with its completions, its reward item and counters, in one transaction.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="item">The item.</param>
    /// <param name="work">Its work.</param>
    /// <param name="prompt">The prompt it rolled out.</param>
    /// <param name="result">The completions.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public static async Task CompleteRolloutAsync(
        WorkQueue queue, ClaimedItem item, RolloutWork work, string prompt, RolloutResult result, CancellationToken cancellationToken)
    {
        var records = result.Completions.Select((c, i) => new CompletionRecord(
            work.CampaignId, work.Step, item.Id, i, work.PolicyVersion, prompt, c.TokenIds, c.Text, c.LogProbs, c.FinishReason)).ToList();
        var resultJson = CampaignJson.Serialize(new
        {
            seconds = result.Seconds,
            policy_load_seconds = result.PolicyLoadSeconds,
            completion_tokens = result.CompletionTokens,
            completions = records.Count,
            endpoint_errors = result.EndpointErrors,
        });
        await queue.CompleteAsync(item, resultJson, async (connection, transaction, ct) =>
        {
            await SampleStore.WriteCompletionsAsync(connection, transaction, records, ct);
            var reward = new RewardWork(work.CampaignId, work.Step, item.Id);
            await WorkQueue.EnqueueAsync(connection, transaction,
                [new NewWorkItem(work.CampaignId, CampaignWork.Reward, $"reward/{work.Step}/{work.Round}/{work.Slot}",
                    CampaignJson.Serialize(reward), work.PolicyVersion, Priority: 10)], ct);
            await CampaignStore.AddCountersAsync(connection, transaction, work.CampaignId,
                [new("samples_generated", records.Count), new("endpoint_errors", result.EndpointErrors), new("completion_tokens", result.CompletionTokens)], ct);
        }, cancellationToken);
    }

    /// <summary>Reads a rollout item's completions, in sample order.</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="rolloutItemId">The rollout item.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The completions.</returns>
    public static Task<List<StoredCompletion>> ReadCompletionsAsync(NpgsqlDataSource dataSource, long rolloutItemId, CancellationToken cancellationToken) =>
        SampleStore.ReadItemCompletionsAsync(dataSource, rolloutItemId, static (id, step, version, promptIndex, prompt, text, tokens, finish) =>
            new StoredCompletion(id, step, version, promptIndex, prompt, text, tokens, finish), cancellationToken);

    /// <summary>Completes a reward item with scores, rewards and reflection bits, accepted samples and counters, in one transaction.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="item">The item.</param>
    /// <param name="work">Its work.</param>
    /// <param name="scoredCount">How many completions were scored.</param>
    /// <param name="scored">The scores.</param>
    /// <param name="samples">The accepted samples.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public static async Task CompleteRewardAsync(
        WorkQueue queue, ClaimedItem item, RewardWork work, int scoredCount, RewardWorkResult scored, List<SftSample> samples, CancellationToken cancellationToken)
    {
        var scores = scored.Scores.SelectMany(s => s.Scores.Select(r => new RewardScore(s.CompletionId, r.Key, r.Value))).ToList();
        var resultJson = CampaignJson.Serialize(new { seconds = scored.Seconds, scored = scoredCount, accepted = samples.Count, reflection = scored.Reflection });
        await queue.CompleteAsync(item, resultJson, async (connection, transaction, ct) =>
        {
            await SampleStore.WriteScoresAsync(connection, transaction, scores, ct);
            await SampleStore.WriteRewardsAsync(connection, transaction, [.. scored.Scores.Select(s => s.CompletionId)], [.. scored.Scores.Select(s => s.Reward)],
                [.. scored.Scores.Select(s => s.Reflection)], ct);
            if (samples.Count > 0)
            {
                await SampleStore.IngestSftSamplesAsync(connection, transaction, samples, ct);
            }

            var counters = new List<KeyValuePair<string, long>> { new("samples_scored", scoredCount), new("samples_accepted", samples.Count) };
            counters.AddRange(scored.MissingByRule.Select(m => new KeyValuePair<string, long>($"reward_missing/{m.Key}", m.Value)));
            await CampaignStore.AddCountersAsync(connection, transaction, work.CampaignId, counters, ct);
            await NotifyAsync(connection, transaction, ct);
        }, cancellationToken);
    }

    /// <summary>Wakes the coordinators waiting on the queue (in the transaction, so the wake-up follows the commit).</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="transaction">The transaction.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public static Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        WorkQueue.NotifyAsync(connection, transaction, cancellationToken);

    /// <summary>The first line of a message.</summary>
    /// <param name="message">The message.</param>
    /// <returns>Its first line.</returns>
    public static string FirstLine(string message)
    {
        var cut = message.IndexOfAny(['\r', '\n']);
        return cut < 0 ? message : message[..cut];
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Kind} item {Item} attempt {Attempt}: {Error}")]
    private static partial void LogFailed(ILogger logger, string kind, long item, int attempt, string error);
}
