using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Queue;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Grains.Hosting;

/// <summary>
/// A silo's work pump: for each of its worker roles it leases items from the queue under the silo's identity (its
/// name and Orleans generation) and hands them to the local stateless worker grain; it renews the leases of the items
/// it holds, and puts back items whose lease expired or whose holder the membership table says is dead. A silo
/// pulls only what it can work on, so work spreads over however many silos there are.
/// </summary>
/// <param name="services">The silo's services.</param>
/// <param name="grains">The grain factory.</param>
/// <param name="silo">The local silo.</param>
/// <param name="settings">The silo's settings.</param>
/// <param name="lifetime">The host's lifetime (the pump starts once the silo is up).</param>
/// <param name="logger">The log.</param>
internal sealed partial class WorkPump(
    SiloServices services, IGrainFactory grains, ILocalSiloDetails silo, SiloSettings settings, IHostApplicationLifetime lifetime, ILogger<WorkPump> logger)
    : BackgroundService
{
    private NodeIdentity Owner => new(silo.Name, silo.SiloAddress.Generation);

    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await SiloHost.WaitUntilStartedAsync(lifetime, stoppingToken))
        {
            return;
        }

        var loops = new List<Task>
        {
            EveryAsync("lease renewal", services.Cluster.LeaseDuration / 3, ct => services.Queue.RenewLeasesAsync(Owner, services.Cluster.LeaseDuration, ct), stoppingToken),
            EveryAsync("rescue", TimeSpan.FromSeconds(1), ct => services.Queue.RescueAsync(ct), stoppingToken),
        };
        if (settings.Roles.Contains(SiloRoles.Rollout))
        {
            var worker = grains.GetGrain<IRolloutWorkerGrain>(0);
            loops.Add(PumpAsync([CampaignWork.Rollout, CampaignWork.Evaluation], Math.Max(1, settings.RolloutBatch), worker.ProcessAsync, stoppingToken));
            loops.Add(EveryAsync("policy release", PolicyReleaseInterval, ReleaseFinishedPoliciesAsync, stoppingToken));
        }

        if (settings.Roles.Contains(SiloRoles.Reward))
        {
            var worker = grains.GetGrain<IRewardWorkerGrain>(0);
            loops.Add(PumpAsync([CampaignWork.Reward], 1, worker.ProcessAsync, stoppingToken));
        }

        await Task.WhenAll(loops);
    }

    // How often the rollout role drops the policies of campaigns that are no longer created, running or paused.
    private static readonly TimeSpan PolicyReleaseInterval = TimeSpan.FromSeconds(5);

    private async Task ReleaseFinishedPoliciesAsync(CancellationToken token)
    {
        var held = services.Policies.HeldCampaigns;
        if (held.Count == 0)
        {
            return;
        }

        var active = (await services.Campaigns.ActiveAsync(token)).ToHashSet();
        var finished = held.Where(id => !active.Contains(id)).ToList();
        if (finished.Count > 0 && await services.Sampler.ReleaseAsync(finished, token) is var released and > 0)
        {
            LogReleased(logger, released, string.Join(", ", finished));
        }
    }

    private async Task PumpAsync(string[] kinds, int batch, Func<ClaimedWork[], Task<WorkOutcome[]>> process, CancellationToken token)
    {
        while (!token.IsCancellationRequested)
        {
            IReadOnlyList<ClaimedItem> items;
            try
            {
                items = await services.Queue.ClaimAsync(Owner, kinds, batch, services.Cluster.LeaseDuration, settings.CampaignId, cancellationToken: token);
                if (items.Count == 0)
                {
                    await services.WaitForWorkAsync(token);
                    continue;
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogRetrying(logger, "claim", ex.GetType().Name, WorkResults.FirstLine(ex.Message));
                await DelayAsync(TimeSpan.FromSeconds(1), token);
                continue;
            }

            try
            {
                var outcomes = await process([.. items.Select(WorkResults.ToMessage)]);
                services.CountProcessed(items[0].Kind, outcomes.Count(o => o.Completed));
            }
            catch (Exception ex)
            {
                // The worker did not answer (the silo is stopping, or a call failed): the items' leases expire, or
                // are released when this silo is declared dead, and another attempt takes them.
                LogRetrying(logger, $"{items.Count} {items[0].Kind} items", ex.GetType().Name, WorkResults.FirstLine(ex.Message));
            }
        }
    }

    private async Task EveryAsync(string name, TimeSpan interval, Func<CancellationToken, Task> body, CancellationToken token)
    {
        while (!token.IsCancellationRequested)
        {
            try
            {
                await body(token);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogRetrying(logger, name, ex.GetType().Name, WorkResults.FirstLine(ex.Message));
            }

            await DelayAsync(interval, token);
        }
    }

    private static async Task DelayAsync(TimeSpan delay, CancellationToken token)
    {
        try
        {
            await Task.Delay(delay, token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "released the held policies of {Count} finished campaigns ({Campaigns})")]
    private static partial void LogReleased(ILogger logger, int count, string campaigns);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{What}: {Type}: {Error}; retrying")]
    private static partial void LogRetrying(ILogger logger, string what, string type, string error);
}
