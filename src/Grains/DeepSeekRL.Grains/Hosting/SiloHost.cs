using System.Net;
using System.Net.Sockets;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Storage.Membership;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Storage.Singletons;
using DeepSeekRL.Storage.Stores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using DeepSeekRL.Model.Engines;
using Npgsql;
using Orleans.Configuration;

namespace DeepSeekRL.Grains.Hosting;

/// <summary>The roles a silo can play.</summary>
public static class SiloRoles
{
    /// <summary>Rollout workers (and evaluations).</summary>
    public const string Rollout = "rollout";

    /// <summary>Reward workers (and the rejection-sampling filter).</summary>
    public const string Reward = "reward";

    /// <summary>Campaign coordinators and learners.</summary>
    public const string Learner = "learner";

    /// <summary>The HTTP API and dashboard (hosted by the silo process).</summary>
    public const string Api = "api";

    /// <summary>Every role.</summary>
    public static readonly IReadOnlyList<string> All = [Rollout, Reward, Learner, Api];
}

/// <summary>How a silo joins its cluster and what it does there.</summary>
public sealed class SiloSettings
{
    /// <summary>The model engines of this process (the host picks them: the native engine, the libtorch one).</summary>
    public required ModelEngines Engines { get; init; }

    /// <summary>The silo's name (<c>--node-id</c>; default host-pid): the holder name of the leases it takes.</summary>
    public string Name { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>The roles.</summary>
    public IReadOnlyList<string> Roles { get; init; } = [SiloRoles.Rollout, SiloRoles.Reward, SiloRoles.Learner];

    /// <summary>Only this campaign's work and grains (null: all).</summary>
    public long? CampaignId { get; init; }

    /// <summary>Rollout items leased and generated together (1 leaves items to other rollout silos).</summary>
    public int RolloutBatch { get; init; } = 1;

    /// <summary>The address the silo listens on and advertises to the others (default loopback: one machine).</summary>
    public IPAddress Address { get; init; } = IPAddress.Loopback;

    /// <summary>The silo-to-silo port; 0 picks a free one.</summary>
    public int SiloPort { get; init; }

    /// <summary>The gateway (client) port; 0 picks a free one.</summary>
    public int GatewayPort { get; init; }

    /// <summary>
    /// A one-silo cluster of this process alone (<c>campaign run</c>, <c>demo</c>), named after the database's cluster id,
    /// the process and a random suffix, instead of the database's shared cluster.
    /// </summary>
    public bool Private { get; init; }
}

/// <summary>Builds and starts DeepSeekRL silos: Orleans on the Generic Host, clustered through the project's PostgreSQL.</summary>
public static class SiloHost
{
    /// <summary>Starts a silo.</summary>
    /// <param name="dataSource">The database (already migrated).</param>
    /// <param name="settings">The silo's settings.</param>
    /// <param name="threads">Model kernel threads.</param>
    /// <param name="logging">Adds log providers (nothing is logged without one).</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The started host; dispose it (after <c>StopAsync</c>) to leave the cluster.</returns>
    public static async Task<IHost> StartAsync(
        NpgsqlDataSource dataSource, SiloSettings settings, int threads, Action<ILoggingBuilder>? logging, CancellationToken cancellationToken)
    {
        var serviceId = await new MembershipStore(dataSource).ClusterIdAsync(cancellationToken);
        var clusterId = settings.Private ? $"{serviceId}-local-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}" : serviceId;
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Microsoft", LogLevel.Warning).AddFilter("Polly", LogLevel.Warning)
            .AddFilter("Orleans.Runtime.Silo", LogLevel.Error) // a note that the silo does not use server GC (deliberate: memory)
            .AddFilter("Orleans.Runtime.Watchdog", LogLevel.Error); // start-up time counted as a stalled check
        logging?.Invoke(builder.Logging);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
        builder.UseOrleans(silo => Configure(silo, dataSource, settings, threads, serviceId, clusterId));
        var host = builder.Build();
        if (settings.Private)
        {
            // A private cluster ends with its process: once the silo has stopped (its row says Dead), the items it still
            // held go back to pending and its membership rows go.
            host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopped.Register(() =>
            {
                try
                {
                    new Storage.Queue.WorkQueue(dataSource).RescueAsync(CancellationToken.None).Wait(TimeSpan.FromSeconds(5));
                    new PostgresMembershipTable(dataSource, Microsoft.Extensions.Options.Options.Create(new ClusterOptions { ClusterId = clusterId }),
                        Microsoft.Extensions.Options.Options.Create(new MembershipTableOptions())).DeleteMembershipTableEntries(clusterId).Wait(TimeSpan.FromSeconds(5));
                }
                catch (AggregateException)
                {
                    // The rows stay; they are only listed, never used by another cluster.
                }
            });
        }

        await host.StartAsync(cancellationToken);
        return host;
    }

    /// <summary>Configures an Orleans silo as a DeepSeekRL silo (also used by in-process test clusters).</summary>
    /// <param name="silo">The silo builder.</param>
    /// <param name="dataSource">The database.</param>
    /// <param name="settings">The silo's settings.</param>
    /// <param name="threads">Model kernel threads.</param>
    /// <param name="serviceId">The service id (the database's cluster id).</param>
    /// <param name="clusterId">The cluster id.</param>
    /// <param name="endpoints">Whether to set the silo's endpoints from <paramref name="settings"/> (test clusters set their own).</param>
    public static void Configure(
        ISiloBuilder silo, NpgsqlDataSource dataSource, SiloSettings settings, int threads, string serviceId, string clusterId, bool endpoints = true)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(settings);
        silo.Configure<ClusterOptions>(o => (o.ServiceId, o.ClusterId) = (serviceId, clusterId));
        silo.Configure<SiloOptions>(o => o.SiloName = settings.Name);
        if (endpoints)
        {
            var siloPort = settings.SiloPort != 0 ? settings.SiloPort : FreePort(settings.Address);
            var gatewayPort = settings.GatewayPort != 0 ? settings.GatewayPort : FreePort(settings.Address);
            silo.ConfigureEndpoints(settings.Address, siloPort, gatewayPort, listenOnAnyHostAddress: false);
        }

        // Failure detection tuned for campaigns: a silo killed with -9 is declared dead within about 2 s.
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(1);
            o.NumMissedProbesLimit = 2;
            o.TableRefreshTimeout = TimeSpan.FromSeconds(5);
            o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(10);
            o.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(20);
            o.DefunctSiloExpiration = TimeSpan.FromDays(1);
            o.DefunctSiloCleanupPeriod = TimeSpan.FromHours(1);
        });

        // No caller waits long on a dead silo: calls to it are broken once it is declared dead, and a call that is
        // simply lost times out after 10 s (long operations set their own limits on the grain interfaces).
        silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
        silo.Configure<MembershipTableOptions>(o => o.Roles = settings.Roles);
        silo.Services.AddSingleton<IMembershipTable, PostgresMembershipTable>();

        // A silo hosts only the grains of its roles.
        silo.Services.PostConfigure<GrainTypeOptions>(o =>
        {
            if (!settings.Roles.Contains(SiloRoles.Learner))
            {
                o.Classes.Remove(typeof(CampaignGrain));
                o.Classes.Remove(typeof(LearnerGrain));
            }

            if (!settings.Roles.Contains(SiloRoles.Rollout))
            {
                o.Classes.Remove(typeof(RolloutWorkerGrain));
            }

            if (!settings.Roles.Contains(SiloRoles.Reward))
            {
                o.Classes.Remove(typeof(RewardWorkerGrain));
            }
        });

        silo.Services.AddSingleton(dataSource);
        silo.Services.AddSingleton(settings);
        // The stores, one per silo; grains reach them through SiloServices, which also holds the loaded campaigns and policies.
        silo.Services.AddSingleton(_ => new WorkQueue(dataSource));
        silo.Services.AddSingleton(_ => new SingletonLeases(dataSource));
        silo.Services.AddSingleton(_ => new PolicyRegistry(dataSource));
        silo.Services.AddSingleton(_ => new CampaignStore(dataSource));
        silo.Services.AddSingleton(sp => new SiloServices(
            dataSource, sp.GetRequiredService<WorkQueue>(), sp.GetRequiredService<SingletonLeases>(), sp.GetRequiredService<PolicyRegistry>(),
            sp.GetRequiredService<CampaignStore>(), settings.Engines, threads, sp.GetRequiredService<ILoggerFactory>()));
        silo.Services.AddSingleton(sp => sp.GetRequiredService<SiloServices>().Learners);
        silo.Services.AddHostedService<WorkPump>();
        if (settings.Roles.Contains(SiloRoles.Learner))
        {
            silo.Services.AddHostedService<CampaignKeeper>();
        }
    }

    /// <summary>Waits until the host (and so the silo) has started; background services start their loops after it.</summary>
    /// <param name="lifetime">The host's lifetime.</param>
    /// <param name="stoppingToken">The service's stopping token.</param>
    /// <returns>True once started; false if the host stops first.</returns>
    public static async Task<bool> WaitUntilStartedAsync(IHostApplicationLifetime lifetime, CancellationToken stoppingToken)
    {
        ArgumentNullException.ThrowIfNull(lifetime);
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stoppingToken.Register(() => started.TrySetCanceled(stoppingToken)))
        {
            try
            {
                await started.Task;
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
    }

    /// <summary>A port free on <paramref name="address"/> right now.</summary>
    /// <param name="address">The address.</param>
    /// <returns>The port.</returns>
    public static int FreePort(IPAddress address)
    {
        using var listener = new TcpListener(address, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
