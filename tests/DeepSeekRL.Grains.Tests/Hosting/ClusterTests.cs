using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Grains.Hosting;
using DeepSeekRL.Storage.Membership;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Singletons;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Testing;
using Npgsql;

namespace DeepSeekRL.Grains.Tests.Hosting;

/// <summary>
/// Several DeepSeekRL silos in one test process, each a Generic Host built by the production <see cref="SiloHost"/>
/// (real loopback sockets), clustered through the project's own PostgreSQL membership table, running real campaigns
/// with the tiny model. (Orleans 10.4.2's <c>InProcessTestClusterBuilder</c> always installs its in-memory membership
/// table, its <c>UseTestClusterMembership</c> switch not being public, so it would bypass the provider under test.)
/// </summary>
public sealed class ClusterTests : IDisposable
{
    private static readonly string Examples = Path.Combine(RepositoryPaths.Root, "examples");
    private readonly string _dir = Directory.CreateTempSubdirectory("cluster-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ThreeSilos_CampaignLifecycle_PauseResumeThroughTheGrainAndCompleteOnce()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await using var cluster = await Cluster.StartAsync(db.DataSource, 3);
        Assert.Equal(3, (await new MembershipStore(db.DataSource).ListAsync(null, includeDead: false, Ct)).Count(s => s.Status == "Active"));
        var id = await CreateAsync(db.DataSource, steps: 6);

        // The keepers start it; the grain answers lifecycle calls while it drives.
        await WaitAsync(db.DataSource, id, "steps_completed >= 1", TimeSpan.FromMinutes(2));
        var campaign = cluster.Grains.GetGrain<ICampaignGrain>(id);
        Assert.Equal(CampaignState.Paused, await campaign.PauseAsync());
        var paused = await ScalarAsync<int>(db.DataSource, $"SELECT steps_completed FROM campaigns WHERE id = {id}");
        await Task.Delay(1500, Ct);
        Assert.InRange(await ScalarAsync<int>(db.DataSource, $"SELECT steps_completed FROM campaigns WHERE id = {id}"), paused, paused + 1);
        Assert.Equal(CampaignState.Running, await campaign.ResumeAsync());
        await WaitAsync(db.DataSource, id, "state = 'completed'", TimeSpan.FromMinutes(3));

        Assert.Equal(Enumerable.Range(0, 6), await ListAsync(db.DataSource, $"SELECT step FROM step_metrics WHERE campaign_id = {id} ORDER BY step"));
        Assert.Equal(CampaignState.Completed, await campaign.EnsureRunningAsync());
        Assert.Equal(CampaignState.Completed, await campaign.CancelAsync());
    }

    [Fact]
    public async Task SiloHostingTheCampaignGrainKilled_ItsGrainsComeBackElsewhereAndTheCampaignCompletesExactlyOnce()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        await using var cluster = await Cluster.StartAsync(db.DataSource, 3);
        var id = await CreateAsync(db.DataSource, steps: 8);
        await WaitAsync(db.DataSource, id, "steps_completed >= 2", TimeSpan.FromMinutes(2));

        // Where the campaign grain lives, from Orleans' own statistics; kill that silo without a goodbye.
        var host = await HostOfAsync(cluster.Grains.GetGrain<IManagementGrain>(0), typeof(CampaignGrain), id);
        var stepsAtKill = await ScalarAsync<int>(db.DataSource, $"SELECT steps_completed FROM campaigns WHERE id = {id}");
        await cluster.KillAsync(host!);

        await WaitAsync(db.DataSource, id, "state = 'completed'", TimeSpan.FromMinutes(3));
        Assert.True(stepsAtKill < 8, "the campaign had finished before the kill");
        var newHost = await HostOfAsync(cluster.Grains.GetGrain<IManagementGrain>(0), typeof(CampaignGrain), id, allowNone: true);
        Assert.NotEqual(host, newHost);

        // Exactly once: every step's metrics once, no item left running or failed.
        Assert.Equal(Enumerable.Range(0, 8), await ListAsync(db.DataSource, $"SELECT step FROM step_metrics WHERE campaign_id = {id} ORDER BY step"));
        Assert.Equal(0L, await ScalarAsync<long>(db.DataSource, $"SELECT count(*) FROM work_items WHERE campaign_id = {id} AND state NOT IN ('completed', 'cancelled')"));

        // The dead silo is Dead in the membership table.
        var rows = await new MembershipStore(db.DataSource).ListAsync(null, includeDead: true, Ct);
        Assert.Equal("Dead", rows.Single(r => r.Address == host!.Endpoint.ToString() && r.Generation == host.Generation).Status);
    }

    [Fact]
    public async Task StaleLearner_ItsFencedWritesAreRefusedAfterASuccessorTookTheLease()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var id = await CreateAsync(db.DataSource, steps: 2);
        await using var services = new SiloServices(db.DataSource, TestEngines.All, threads: 1);
        var definition = await services.Catalog.GetAsync(id, Ct);
        var leases = new SingletonLeases(db.DataSource);
        var name = CampaignLearner.LeaseName(id);

        // Learner A opens; its silo is then declared dead (as Orleans would write it), and learner B takes over.
        var a = await leases.TryAcquireAsync(name, new NodeIdentity("silo-a", 1), TimeSpan.FromMinutes(5), Ct);
        Assert.NotNull(a);
        var stale = new CampaignLearner(definition, new LearnerStore(db.DataSource, leases), a, services.Registry, TestEngines.All, 1);
        Assert.Equal(0, await stale.ActivateAsync(Ct));
        Assert.Null(await leases.TryAcquireAsync(name, new NodeIdentity("silo-b", 1), TimeSpan.FromMinutes(5), Ct));
        await ExecuteAsync(db.DataSource, "INSERT INTO membership_versions (cluster_id) VALUES ('test')");
        await ExecuteAsync(db.DataSource, """
            INSERT INTO membership (cluster_id, address, port, generation, silo_name, host_name, status, start_time, i_am_alive_time)
            VALUES ('test', '127.0.0.1', 1, 1, 'silo-a', 'h', 6, now(), now())
            """);
        var b = await leases.TryAcquireAsync(name, new NodeIdentity("silo-b", 1), TimeSpan.FromMinutes(5), Ct);
        Assert.Equal(a.Epoch + 1, b!.Epoch);

        // The stale learner cannot complete the campaign or record anything.
        await Assert.ThrowsAsync<LeaseLostException>(() => stale.CompleteCampaignAsync(Ct));
        Assert.Equal("created", await ScalarAsync<string>(db.DataSource, $"SELECT state FROM campaigns WHERE id = {id}"));
        Assert.Equal(0L, await ScalarAsync<long>(db.DataSource, $"SELECT count(*) FROM step_metrics WHERE campaign_id = {id}"));
        var successor = new CampaignLearner(definition, new LearnerStore(db.DataSource, leases), b, services.Registry, TestEngines.All, 1);
        Assert.Equal(0, await successor.ActivateAsync(Ct));
    }

    private static async Task<SiloAddress?> HostOfAsync(IManagementGrain management, Type grainClass, long id, bool allowNone = false)
    {
        var deadline = TimeProvider.System.GetUtcNow() + TimeSpan.FromSeconds(30);
        while (true)
        {
            var statistics = await management.GetDetailedGrainStatistics(null, null, Ct);
            var found = statistics.Where(s => s.GrainType.Contains(grainClass.Name, StringComparison.Ordinal) && s.GrainId.Key.ToString() == id.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
            if (found.Count == 1 || (allowNone && found.Count == 0))
            {
                return found.FirstOrDefault()?.SiloAddress;
            }

            Assert.True(TimeProvider.System.GetUtcNow() < deadline, $"{found.Count} activations of {grainClass.Name} {id}");
            await Task.Delay(200, Ct);
        }
    }

    private async Task<long> CreateAsync(NpgsqlDataSource dataSource, int steps)
    {
        var path = Path.Combine(_dir, $"cluster-{Guid.NewGuid():N}.json");
        var model = Json(Path.Combine(Examples, "models", "quick.json"));
        var tokenizer = Json(Path.Combine(Examples, "models", "tiny-tokenizer.json"));
        var data = Json(Path.Combine(Examples, "data", "arithmetic.jsonl"));
        await File.WriteAllTextAsync(path, $$$"""
            {"name": "cluster", "policy": {"native": {"config": {{{model}}}, "seed": 1, "tokenizer": {{{tokenizer}}}}},
             "dataset": {"path": {{{data}}}, "eval_fraction": 0.2},
             "rewards": {"rules": [{"rule": "accuracy"}, {"rule": "cosine", "options": {"max_length": 60}}]},
             "algorithm": {"group_size": 4, "prompts_per_step": 2, "learning_rate": 1e-3, "beta": 0, "max_new_tokens": 16, "steps": {{{steps}}}},
             "evaluation": {"every_steps": 0}, "checkpoint_every_steps": 2, "seed": 7}
            """, Ct);
        var validation = CampaignSpecValidator.Load(path);
        Assert.True(validation.Spec is not null, string.Join("; ", validation.Errors));
        var created = await new CampaignCreator(new CampaignStore(dataSource)).CreateAsync(
            validation.Spec!, await File.ReadAllTextAsync(path, Ct), _dir, new PolicyRegistry(dataSource), Ct);
        Assert.True(created.Succeeded, created.Error);
        return created.Value.Id;
    }

    private static async Task WaitAsync(NpgsqlDataSource dataSource, long id, string condition, TimeSpan timeout)
    {
        var deadline = TimeProvider.System.GetUtcNow() + timeout;
        while (!await ScalarAsync<bool>(dataSource, $"SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = {id} AND {condition})"))
        {
            var state = await ScalarAsync<string>(dataSource, $"SELECT state || ' at step ' || steps_completed || coalesce(': ' || error, '') FROM campaigns WHERE id = {id}");
            Assert.True(TimeProvider.System.GetUtcNow() < deadline, $"campaign {id} never reached {condition}: {state}");
            Assert.False(state.StartsWith("failed", StringComparison.Ordinal), state);
            await Task.Delay(100, Ct);
        }
    }

    private static string Json(string s) => JsonSerializer.Serialize(s);

    /// <summary>Silos started with the production host, in this process.</summary>
    private sealed class Cluster(List<Microsoft.Extensions.Hosting.IHost> silos) : IAsyncDisposable
    {
        /// <summary>The grain factory of the first live silo.</summary>
        public IGrainFactory Grains => Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<IGrainFactory>(silos[0].Services);

        public static async Task<Cluster> StartAsync(NpgsqlDataSource dataSource, int count)
        {
            var silos = new List<Microsoft.Extensions.Hosting.IHost>();
            for (var i = 0; i < count; i++)
            {
                silos.Add(await SiloHost.StartAsync(dataSource, new SiloSettings { Engines = TestEngines.All, Name = $"test-silo-{i}-{Guid.NewGuid():N}" }, 1, null, Ct));
            }

            return new Cluster(silos);
        }

        /// <summary>Stops a silo the way a crash does: no goodbye, no deactivations, its membership row left Active.</summary>
        public async Task KillAsync(SiloAddress address)
        {
            var victim = silos.Single(s => Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ILocalSiloDetails>(s.Services).SiloAddress.Equals(address));
            silos.Remove(victim);
            try
            {
                await victim.StopAsync(new CancellationToken(canceled: true));
            }
            catch (OperationCanceledException)
            {
            }

            victim.Dispose();
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var silo in silos)
            {
                using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                try
                {
                    await silo.StopAsync(stopping.Token);
                }
                catch (OperationCanceledException)
                {
                }

                silo.Dispose();
            }
        }
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<List<int>> ListAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        var list = new List<int>();
        await using var reader = await command.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            list.Add(reader.GetInt32(0));
        }

        return list;
    }
}
