using System.Text.Json.Nodes;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>The learner's recording of evaluations: every evaluation whose chunks have all finished becomes one row.</summary>
public sealed partial class CampaignLearner
{
    /// <summary>Records every evaluation whose chunks are all finished (fenced).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many evaluations are still outstanding.</returns>
    public async Task<int> RecordEvaluationsAsync(CancellationToken cancellationToken)
    {
        var (finished, outstanding) = await _store.PendingEvaluationsAsync(_definition.Id, cancellationToken);
        foreach (var e in finished)
        {
            var metrics = new JsonObject
            {
                ["accuracy"] = e.Prompts > 0 ? e.Correct / e.Prompts : null,
                ["reward_mean"] = e.Samples > 0 ? e.RewardSum / e.Samples : null,
                ["response_length_mean"] = e.Samples > 0 ? e.LengthSum / e.Samples : null,
                ["reasoning_fraction"] = e.Samples > 0 ? e.Reasoning / e.Samples : null,
                ["accuracy_when_reasoning"] = e.Reasoning > 0 ? e.CorrectWhenReasoning / e.Reasoning : null,
                ["prompts"] = e.Prompts,
                ["samples"] = e.Samples,
                ["failed_chunks"] = e.Chunks - e.CompletedChunks,
                ["step"] = e.Step,
                ["policy_version"] = e.PolicyVersion,
            };
            AddReflectionMetrics(metrics, e.Reflection);
            await _store.RecordEvaluationAsync(_lease, _definition.Id, e.Step, e.PolicyVersion, metrics.ToJsonString(CampaignJson.Options), cancellationToken);
        }

        return outstanding;
    }
}
