using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Grains.Hosting;

/// <summary>
/// Keeps every active campaign driven: twice a second a silo with the learner role asks each active campaign's grain
/// to be running. Orleans places the grain (on some learner silo) on the first call and again after the silo hosting
/// it dies, so a campaign's grains come back by themselves within a membership round and half a second.
/// </summary>
/// <param name="services">The silo's services.</param>
/// <param name="grains">The grain factory.</param>
/// <param name="settings">The silo's settings (only one campaign, when given).</param>
/// <param name="lifetime">The host's lifetime (the keeper starts once the silo is up).</param>
/// <param name="logger">The log.</param>
internal sealed partial class CampaignKeeper(
    SiloServices services, IGrainFactory grains, SiloSettings settings, IHostApplicationLifetime lifetime, ILogger<CampaignKeeper> logger)
    : BackgroundService
{
    /// <summary>How often the active campaigns are pinged.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await SiloHost.WaitUntilStartedAsync(lifetime, stoppingToken))
        {
            return;
        }

        var failures = new Dictionary<long, string>();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var active = await services.Campaigns.ActiveAsync(stoppingToken);
                var ids = settings.CampaignId is { } only ? active.Where(id => id == only).ToList() : active;
                await Task.WhenAll(ids.Select(id => PingAsync(id, failures)));
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogUnreachable(logger, ex.GetType().Name, Campaigns.WorkResults.FirstLine(ex.Message));
            }

            try
            {
                await Task.Delay(Interval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task PingAsync(long id, Dictionary<long, string> failures)
    {
        try
        {
            await grains.GetGrain<ICampaignGrain>(id).EnsureRunningAsync();
            lock (failures)
            {
                failures.Remove(id);
            }
        }
        catch (Exception ex)
        {
            // Expected for a moment after the silo hosting the grain died; said once per kind of failure.
            var what = ex.GetType().Name;
            lock (failures)
            {
                if (failures.TryGetValue(id, out var last) && last == what)
                {
                    return;
                }

                failures[id] = what;
            }

            LogPing(logger, id, what, Campaigns.WorkResults.FirstLine(ex.Message));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "active campaigns: {Type}: {Error}; retrying")]
    private static partial void LogUnreachable(ILogger logger, string type, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "campaign {Campaign}: its grain did not answer ({Type}: {Error}); asking again")]
    private static partial void LogPing(ILogger logger, long campaign, string type, string error);
}
