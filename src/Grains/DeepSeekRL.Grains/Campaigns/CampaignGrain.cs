using DeepSeekRL.Grains.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>
/// A campaign's coordinator grain. While the campaign is active it drives it from its activation: cuts steps (up to
/// the allowed staleness ahead of the learner) into rollout rows, asks the learner grain to close complete steps,
/// cuts and records evaluations, and completes the campaign. It is reentrant so that status and lifecycle calls are
/// answered while it drives; any failure (a learner whose silo died, a database outage) restarts the drive, which
/// derives everything from PostgreSQL again.
/// </summary>
/// <param name="services">The silo's services.</param>
/// <param name="silo">The local silo.</param>
/// <param name="logger">The log.</param>
[Reentrant]
public sealed partial class CampaignGrain(SiloServices services, Orleans.Runtime.ILocalSiloDetails silo, ILogger<CampaignGrain> logger) : Grain, ICampaignGrain
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(250);
    private readonly CancellationTokenSource _stop = new();
    private Task? _drive;

    private long Id => this.GetPrimaryKeyLong();

    /// <inheritdoc/>
    public async Task<CampaignState> EnsureRunningAsync()
    {
        var state = (await services.Campaigns.GetStatusAsync(Id, _stop.Token))?.State
            ?? throw new InvalidOperationException($"campaign {Id} does not exist");
        if (state is CampaignState.Completed or CampaignState.Cancelled or CampaignState.Failed)
        {
            this.DeactivateOnIdle();
        }
        else if (_drive is null || _drive.IsCompleted)
        {
            _drive = DriveAsync(_stop.Token);
        }

        return state;
    }

    /// <inheritdoc/>
    public Task<CampaignState> PauseAsync() => TransitionAsync(CampaignState.Paused, [CampaignState.Created, CampaignState.Running]);

    /// <inheritdoc/>
    public Task<CampaignState> ResumeAsync() => TransitionAsync(CampaignState.Running, [CampaignState.Paused]);

    /// <inheritdoc/>
    public Task<CampaignState> CancelAsync() =>
        TransitionAsync(CampaignState.Cancelled, [CampaignState.Created, CampaignState.Running, CampaignState.Paused]);

    /// <inheritdoc/>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        await _stop.CancelAsync();
        if (_drive is not null)
        {
            await _drive.WaitAsync(cancellationToken).ContinueWith(static _ => { }, TaskScheduler.Current);
        }

        _stop.Dispose();
    }

    private async Task<CampaignState> TransitionAsync(CampaignState to, CampaignState[] from) =>
        await services.Campaigns.TransitionAsync(Id, to, from, null, CancellationToken.None)
        ?? throw new InvalidOperationException($"campaign {Id} does not exist");

    // Drives until the campaign ends or the activation stops; a failed drive starts over after a short delay.
    private async Task DriveAsync(CancellationToken cancellationToken)
    {
        LogDriving(logger, Id, silo.Name);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await new CampaignDrive(services, GrainFactory.GetGrain<ILearnerGrain>(Id), Id, logger).RunAsync(cancellationToken);
                this.DeactivateOnIdle();
                return;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (InvalidDataException ex)
            {
                LogFailed(logger, Id, ex.Message);
                await services.Campaigns.TransitionAsync(Id, CampaignState.Failed,
                    [CampaignState.Created, CampaignState.Running, CampaignState.Paused], FirstLine(ex.Message), CancellationToken.None);
                return;
            }
            catch (Exception ex)
            {
                LogRetrying(logger, Id, ex.GetType().Name, FirstLine(ex.Message));
            }

            try
            {
                await Task.Delay(RetryDelay, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static string FirstLine(string message)
    {
        var cut = message.IndexOfAny(['\r', '\n']);
        return cut < 0 ? message : message[..cut];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "campaign {Campaign}: coordinator active on silo {Silo}")]
    private static partial void LogDriving(ILogger logger, long campaign, string silo);

    [LoggerMessage(Level = LogLevel.Error, Message = "campaign {Campaign}: failed: {Error}")]
    private static partial void LogFailed(ILogger logger, long campaign, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "campaign {Campaign}: {Type}: {Error}; driving it again")]
    private static partial void LogRetrying(ILogger logger, long campaign, string type, string error);
}
