using DeepSeekRL.Grains.Hosting;
using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>
/// One drive of a campaign by its coordinator grain: the learner grain opens (taking the lease and loading its
/// checkpoint), steps are cut up to the allowed staleness ahead of it, complete steps are closed by it, evaluations
/// are cut and recorded, and the campaign is completed. Cutting is idempotent, so a drive that starts over (after a
/// crash anywhere) cuts the same work again without duplicating it.
/// </summary>
/// <param name="services">The silo's services.</param>
/// <param name="learner">The campaign's learner grain.</param>
/// <param name="campaignId">The campaign.</param>
/// <param name="logger">The log.</param>
internal sealed partial class CampaignDrive(SiloServices services, ILearnerGrain learner, long campaignId, ILogger logger)
{
    private readonly HashSet<int> _cut = [];
    private readonly Dictionary<int, int> _rounds = [];

    /// <summary>Runs until the campaign completes, is cancelled or fails.</summary>
    /// <param name="cancellationToken">Stops the drive.</param>
    /// <returns>A task.</returns>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var definition = await services.Catalog.GetAsync(campaignId, cancellationToken);
        var campaign = new CampaignSteps(definition, services.Campaigns, services.Queue);
        var status = await campaign.GetStatusAsync(cancellationToken);
        if (status.State is CampaignState.Cancelled or CampaignState.Completed or CampaignState.Failed)
        {
            return;
        }

        var position = await learner.OpenAsync();
        var (step, version) = (position.NextStep, position.PolicyVersion);
        if (status.State == CampaignState.Created)
        {
            await campaign.StartAsync(cancellationToken);
        }

        var algorithm = definition.Spec.Algorithm;
        var evaluate = definition.Spec.Evaluation.EverySteps > 0 && definition.Eval.Count > 0;
        if (evaluate && step == 0)
        {
            await campaign.EvaluateAsync(-1, 0, cancellationToken);
        }

        var ahead = definition.Trains ? algorithm.AllowedStaleness : 1;
        LogActive(logger, campaignId, position.Epoch, step, algorithm.Steps);
        while (step < algorithm.Steps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            status = await campaign.GetStatusAsync(cancellationToken);
            if (status.State is CampaignState.Cancelled or CampaignState.Completed or CampaignState.Failed)
            {
                return;
            }

            if (status.State == CampaignState.Paused)
            {
                await Task.Delay(services.PollInterval, cancellationToken);
                continue;
            }

            for (var j = step; j <= Math.Min(algorithm.Steps - 1, step + ahead); j++)
            {
                if (_cut.Add(j))
                {
                    await campaign.CutStepAsync(j, 0, algorithm.PromptsPerStep, definition.Trains ? version : 0, cancellationToken);
                }
            }

            var groups = await learner.StepGroupsAsync(step);
            if (groups is null)
            {
                if (evaluate)
                {
                    await learner.RecordEvaluationsAsync();
                }

                await services.WaitForWorkAsync(cancellationToken);
                continue;
            }

            var round = _rounds.GetValueOrDefault(step);
            if (algorithm.DynamicSampling && definition.Trains && groups < algorithm.PromptsPerStep && round < CampaignWork.MaxExtraRounds)
            {
                _rounds[step] = round + 1;
                await campaign.CutStepAsync(step, round + 1, algorithm.PromptsPerStep - groups.Value, version, cancellationToken);
                continue;
            }

            var result = await learner.CloseStepAsync(step);
            version = result.PolicyVersion;
            LogClosed(logger, campaignId, step, result.Replayed ? " (replayed)" : string.Empty, version);
            if (evaluate && ((step + 1) % definition.Spec.Evaluation.EverySteps == 0 || step + 1 == algorithm.Steps))
            {
                await campaign.EvaluateAsync(step, version, cancellationToken);
            }

            if (evaluate)
            {
                await learner.RecordEvaluationsAsync();
            }

            step++;
        }

        // The final evaluations, then done (the learner writes its last checkpoint and records completion, fenced).
        while (evaluate && await learner.RecordEvaluationsAsync() > 0)
        {
            await services.WaitForWorkAsync(cancellationToken);
        }

        await learner.CompleteAsync();
        LogCompleted(logger, campaignId);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "campaign {Campaign}: learner active (lease epoch {Epoch}) from step {Step} of {Steps}")]
    private static partial void LogActive(ILogger logger, long campaign, long epoch, int step, int steps);

    [LoggerMessage(Level = LogLevel.Information, Message = "campaign {Campaign}: step {Step} closed{Replayed}, policy version {Version}")]
    private static partial void LogClosed(ILogger logger, long campaign, int step, string replayed, int version);

    [LoggerMessage(Level = LogLevel.Information, Message = "campaign {Campaign}: completed")]
    private static partial void LogCompleted(ILogger logger, long campaign);
}
