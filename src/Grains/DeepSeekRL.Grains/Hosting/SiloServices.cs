using System.Collections.Concurrent;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Storage.Singletons;
using DeepSeekRL.Storage.Stores;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace DeepSeekRL.Grains.Hosting;

/// <summary>Lease timing of the work queue.</summary>
public sealed class WorkLeaseOptions
{
    /// <summary>Lease time given at claim and at each renewal (every third of it). Default 30 s. A silo that dies
    /// loses its leases as soon as it is declared dead; expiry covers the rest (a silo of another cluster).</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>What a silo's grains share: the database, the stores, the loaded campaigns and policies (one per silo,
/// from the Generic Host's container).</summary>
public sealed class SiloServices : IAsyncDisposable
{
    private readonly WorkListener _listener;

    /// <summary>Creates the services over a database, with stores of their own.</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="engines">The model engines.</param>
    /// <param name="threads">Kernel threads for the model.</param>
    /// <param name="loggers">Loggers, or null for none.</param>
    public SiloServices(NpgsqlDataSource dataSource, ModelEngines engines, int threads = 2, ILoggerFactory? loggers = null)
        : this(dataSource, new WorkQueue(dataSource), new SingletonLeases(dataSource), new PolicyRegistry(dataSource), new CampaignStore(dataSource), engines, threads, loggers)
    {
    }

    /// <summary>Creates the services over the stores a host's container holds.</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="queue">The work queue.</param>
    /// <param name="leases">The singleton leases.</param>
    /// <param name="registry">The policy registry.</param>
    /// <param name="campaigns">The campaign store.</param>
    /// <param name="engines">The model engines.</param>
    /// <param name="threads">Kernel threads for the model.</param>
    /// <param name="loggers">Loggers, or null for none.</param>
    public SiloServices(
        NpgsqlDataSource dataSource, WorkQueue queue, SingletonLeases leases, PolicyRegistry registry, CampaignStore campaigns, ModelEngines engines,
        int threads, ILoggerFactory? loggers)
    {
        DataSource = dataSource;
        Engines = engines;
        Threads = threads;
        Loggers = loggers ?? NullLoggerFactory.Instance;
        Queue = queue;
        Leases = leases;
        Registry = registry;
        Campaigns = campaigns;
        Learners = new LearnerStore(dataSource, leases);
        Creator = new CampaignCreator(campaigns);
        Catalog = new CampaignCatalog(campaigns);
        Policies = new NativePolicyCache(Registry, Catalog, engines, threads);
        Endpoints = new EndpointPolicies();
        Sampler = new RolloutSampler(Catalog, Policies, Endpoints);
        _listener = new WorkListener(dataSource);
    }

    /// <summary>The database.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>The model engines (backend name → engine).</summary>
    public ModelEngines Engines { get; }

    /// <summary>Kernel threads.</summary>
    public int Threads { get; }

    /// <summary>Loggers.</summary>
    public ILoggerFactory Loggers { get; }

    /// <summary>The work queue.</summary>
    public WorkQueue Queue { get; }

    /// <summary>Singleton leases.</summary>
    public SingletonLeases Leases { get; }

    /// <summary>The policy registry.</summary>
    public PolicyRegistry Registry { get; }

    /// <summary>The campaign store.</summary>
    public CampaignStore Campaigns { get; }

    /// <summary>The learners' rows.</summary>
    public LearnerStore Learners { get; }

    /// <summary>Creates campaigns.</summary>
    public CampaignCreator Creator { get; }

    /// <summary>Loaded campaign definitions.</summary>
    public CampaignCatalog Catalog { get; }

    /// <summary>Held native policies.</summary>
    public NativePolicyCache Policies { get; }

    /// <summary>Endpoint clients.</summary>
    public EndpointPolicies Endpoints { get; }

    /// <summary>Samples rollouts and evaluations.</summary>
    public RolloutSampler Sampler { get; }

    /// <summary>Work item lease timing.</summary>
    public WorkLeaseOptions Cluster { get; } = new();

    /// <summary>The learner lease's duration (renewed at a third of it).</summary>
    public TimeSpan LearnerLease { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long waits poll when no notification arrives.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Items this silo's workers completed, by kind (for tests and progress).</summary>
    public ConcurrentDictionary<string, long> Processed { get; } = new();

    /// <summary>Counts completed items.</summary>
    /// <param name="kind">Their kind.</param>
    /// <param name="count">How many.</param>
    public void CountProcessed(string kind, int count) => Processed.AddOrUpdate(kind, count, (_, n) => n + count);

    /// <summary>Waits for a queue notification or the poll interval.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task.</returns>
    public Task WaitForWorkAsync(CancellationToken cancellationToken) => _listener.WaitAsync(PollInterval, cancellationToken);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _listener.DisposeAsync();
        Catalog.Dispose();
        Endpoints.Dispose();
    }
}
