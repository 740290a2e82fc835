using DeepSeekRL.Grains.Hosting;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Singletons;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>
/// A campaign's learner grain. Opening takes the campaign's learner lease (free, expired, or held by a silo the
/// membership table says is dead) with a new epoch, and loads the last checkpoint; a timer renews the lease while
/// the activation lives, even during a long update. Every write of the learner is fenced by the epoch, so a second
/// activation (Orleans' directory is eventually consistent) or one that lost its lease during an outage writes
/// nothing. The heavy work runs off the grain's scheduler.
/// </summary>
/// <param name="services">The silo's services.</param>
/// <param name="silo">The local silo (the lease holder's identity).</param>
/// <param name="logger">The log.</param>
public sealed partial class LearnerGrain(SiloServices services, ILocalSiloDetails silo, ILogger<LearnerGrain> logger) : Grain, ILearnerGrain
{
    private readonly CancellationTokenSource _stop = new();
    private CampaignLearner? _learner;
    private SingletonLease? _lease;
    private IGrainTimer? _renewal;
    private int _nextStep;

    private long Id => this.GetPrimaryKeyLong();

    /// <inheritdoc/>
    public async Task<LearnerPosition> OpenAsync()
    {
        if (_learner is not null && _lease is not null)
        {
            return new LearnerPosition(_nextStep, _learner.PolicyVersion, _lease.Epoch);
        }

        var owner = new NodeIdentity(silo.Name, silo.SiloAddress.Generation);
        var lease = await services.Leases.TryAcquireAsync(CampaignLearner.LeaseName(Id), owner, services.LearnerLease, _stop.Token)
            ?? throw new LeaseLostException($"campaign {Id}: the learner lease is held by a live silo; waiting for it");
        _lease = lease;
        _renewal ??= this.RegisterGrainTimer(RenewAsync, new GrainTimerCreationOptions(services.LearnerLease / 3, services.LearnerLease / 3) { Interleave = true });
        var definition = await services.Catalog.GetAsync(Id, _stop.Token);
        var learner = new CampaignLearner(definition, services.Learners, lease, services.Registry, services.Engines, services.Threads)
        {
            Published = (version, weights) => services.Policies.Offer(Id, version, weights),
        };
        _nextStep = await Task.Run(() => learner.ActivateAsync(_stop.Token));
        _learner = learner;
        LogOpened(logger, Id, lease.Epoch, silo.Name, _nextStep);
        return new LearnerPosition(_nextStep, learner.PolicyVersion, lease.Epoch);
    }

    /// <inheritdoc/>
    public Task<int?> StepGroupsAsync(int step) => Learner.StepGroupsAsync(step, _stop.Token);

    /// <inheritdoc/>
    public async Task<LearnerStepResult> CloseStepAsync(int step)
    {
        var learner = Learner;
        var result = await Task.Run(() => learner.CloseStepAsync(step, _stop.Token));
        _nextStep = step + 1;
        return result;
    }

    /// <inheritdoc/>
    public Task<int> RecordEvaluationsAsync() => Learner.RecordEvaluationsAsync(_stop.Token);

    /// <inheritdoc/>
    public async Task CompleteAsync()
    {
        await Learner.CompleteCampaignAsync(_stop.Token);

        // The campaign is over and no step runs: the policy's engine memory goes now, not at some later collection.
        Learner.Dispose();
        this.DeactivateOnIdle();
    }

    /// <inheritdoc/>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        await _stop.CancelAsync();
        _renewal?.Dispose();
        if (_lease is { } lease && _learner is { } learner)
        {
            try
            {
                // Hand the lease over at once (a successor need not wait for it to expire); the checkpoint first.
                await learner.FlushAsync().WaitAsync(cancellationToken);
                await services.Leases.ReleaseAsync(lease, cancellationToken);
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException or OperationCanceledException or LeaseLostException)
            {
                // It expires instead.
            }
        }

        _stop.Dispose();
    }

    private CampaignLearner Learner => _learner ?? throw new LeaseLostException($"campaign {Id}: this learner activation is not open");

    private async Task RenewAsync(CancellationToken cancellationToken)
    {
        if (_lease is not { } lease)
        {
            return;
        }

        try
        {
            if (!await services.Leases.RenewAsync(lease, services.LearnerLease, cancellationToken))
            {
                LogLost(logger, Id, lease.Epoch);
                (_lease, _learner) = (null, null);
                this.DeactivateOnIdle();
            }
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            // The database is unreachable: keep trying until the lease would have expired; fenced writes stay safe.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "campaign {Campaign}: learner opened with lease epoch {Epoch} on silo {Silo}, next step {Step}")]
    private static partial void LogOpened(ILogger logger, long campaign, long epoch, string silo, int step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "campaign {Campaign}: learner lease epoch {Epoch} lost; this activation stops")]
    private static partial void LogLost(ILogger logger, long campaign, long epoch);
}
