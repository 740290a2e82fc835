using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Grains.Hosting;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Stores;
using Npgsql;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// <c>bench campaign</c>: a small campaign (the quick example's model and data, with a length reward so that every
/// step updates). Part 1 runs every role in this process, once per engine of <c>--backend</c>, and splits each step's wall time into sampling,
/// scoring, update (incl. publishing the policy version) and orchestration (the rest: claims, waits, reads, policy
/// reloads). Part 2 runs the reward and learner roles here and 1, 2, 3 rollout silos as child processes, and reports
/// steps per minute. Part 3 (CampaignBenchmark.Faults.cs) kills each role's silo of a four-silo cluster and times the
/// recovery, and times grain calls.
/// </summary>
internal static partial class CampaignBenchmark
{
    private const int Steps = 8;

    public static async Task RunAsync(BenchDatabase db, int runs, BenchReport report, IReadOnlyList<string> backends, CancellationToken cancellationToken)
    {
        var examples = Path.Combine(SiloEnvironment.Home(), "examples");
        var directory = Directory.CreateTempSubdirectory("deepseekrl-bench-campaign-").FullName;
        try
        {
            string? spec = null;
            foreach (var backend in backends)
            {
                var path = Path.Combine(directory, $"bench-{backend}.json");
                await File.WriteAllTextAsync(path, $$$"""
                    {"name": "bench", "policy": {"native": {"config": {{{Q(Path.Combine(examples, "models", "quick.json"))}}}, "seed": 1, "tokenizer": {{{Q(Path.Combine(examples, "models", "tiny-tokenizer.json"))}}}, "backend": "{{{backend}}}"}},
                     "dataset": {"path": {{{Q(Path.Combine(examples, "data", "arithmetic.jsonl"))}}}, "eval_fraction": 0.2},
                     "rewards": {"rules": [{"rule": "accuracy"}, {"rule": "format_r1_zero", "weight": 0.5}, {"rule": "cosine"}]},
                     "algorithm": {"group_size": 8, "prompts_per_step": 8, "learning_rate": 1e-3, "beta": 0, "max_new_tokens": 48, "steps": {{{Steps}}}},
                     "evaluation": {"every_steps": 0}, "checkpoint_every_steps": 4, "seed": 3}
                    """, cancellationToken);
                spec ??= path;
                await SplitPartAsync(db, path, backend, runs, report, cancellationToken);
            }

            for (var silos = 1; silos <= 3; silos++)
            {
                var rates = new List<double>();
                for (var run = 0; run < runs; run++)
                {
                    rates.Add(await ScaleOutAsync(db, spec!, silos, cancellationToken));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {silos} rollout silo(s), run {run + 1}: {rates[^1]:0.0} steps/min"));
                }

                report.Add($"campaign_steps_per_minute_{silos}_rollout_silos", BenchReport.Median(rates),
                    $"{silos} rollout silo process(es) with 1 kernel thread each, reward + learner in the bench process");
            }

            await ClusterFaultsAsync(db, spec!, runs, report, cancellationToken);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    // Part 1 on one engine: every role in this process, each step's wall time split (the native engine's keys are
    // campaign_*, the libtorch engine's libtorch_campaign_*).
    private static async Task SplitPartAsync(BenchDatabase db, string spec, string backend, int runs, BenchReport report, CancellationToken cancellationToken)
    {
        var split = new List<double[]>();
        for (var run = 0; run < runs; run++)
        {
            var id = await CreateAsync(db.DataSource, spec, cancellationToken);
            using (var silo = await SiloHost.StartAsync(db.DataSource, new SiloSettings { Engines = HostEngines.All, CampaignId = id, Name = $"bench-{id}", Private = true }, 2, null, cancellationToken))
            {
                await WaitAsync(new CampaignStore(db.DataSource), id, cancellationToken);
                await silo.StopAsync(cancellationToken);
            }

            split.Add(await SplitAsync(db.DataSource, id, cancellationToken));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {backend} run {run + 1}: step {split[^1][0]:0.000} s = sampling {split[^1][1]:0.000} + scoring {split[^1][2]:0.000} + update {split[^1][3]:0.000} + orchestration {split[^1][4]:0.000}"));
        }

        var prefix = backend == "native" ? "campaign_" : "libtorch_campaign_";
        var engine = backend == "native" ? "native engine" : "libtorch engine";
        double Median(int i) => BenchReport.Median(split.Select(s => s[i]).ToList());
        report.Add(prefix + "step_seconds", Median(0), $"{engine}: wall time per step (steps 2..N, one process, all roles; median of per-run means)");
        report.Add(prefix + "sampling_seconds", Median(1), $"{engine}: per step, generation of 8 prompts x G=8 (up to 48 new tokens) by the rollout worker");
        report.Add(prefix + "scoring_seconds", Median(2), $"{engine}: per step, reward pipeline (accuracy, format_r1_zero, cosine)");
        report.Add(prefix + "update_seconds", Median(3), $"{engine}: per step, GRPO update + publishing the policy version");
        report.Add(prefix + "orchestration_seconds", Median(4), $"{engine}: per step, everything else (claims, waits, reads, policy reloads)");
        report.Add(prefix + "orchestration_fraction", Median(4) / Median(0), $"{engine}: orchestration / step (target < 0.05)");
        report.Add(prefix + "policy_load_seconds", Median(5), $"{engine}: per step, fetching + loading the new policy version (part of orchestration)");
    }

    private static string Q(string s) => JsonSerializer.Serialize(s);

    private static async Task<long> CreateAsync(NpgsqlDataSource dataSource, string spec, CancellationToken cancellationToken)
    {
        var validation = CampaignSpecValidator.Load(spec);
        var created = await new CampaignCreator(new CampaignStore(dataSource)).CreateAsync(
            validation.Spec ?? throw new CliException(string.Join("; ", validation.Errors)), await File.ReadAllTextAsync(spec, cancellationToken),
            Path.GetDirectoryName(spec)!, new PolicyRegistry(dataSource), cancellationToken);
        return created.OrExit().Id;
    }

    private static async Task WaitAsync(CampaignStore repository, long id, CancellationToken cancellationToken)
    {
        while (true)
        {
            var status = await repository.GetStatusAsync(id, cancellationToken);
            if (status!.State is CampaignState.Completed or CampaignState.Failed or CampaignState.Cancelled)
            {
                if (status.State != CampaignState.Completed)
                {
                    throw new CliException($"bench campaign {id} ended {status.State}: {status.Error}");
                }

                return;
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Mean per step over steps 1..N-1 (step 0 includes start-up): wall, sampling, scoring, update, orchestration, policy load.</summary>
    private static async Task<double[]> SplitAsync(NpgsqlDataSource dataSource, long id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT step, extract(epoch FROM created_at), metrics::text FROM step_metrics WHERE campaign_id = $1 ORDER BY step
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = id });
        var rows = new List<(int Step, double ClosedAt, JsonElement Metrics)>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                rows.Add((reader.GetInt32(0), Convert.ToDouble(reader.GetValue(1), CultureInfo.InvariantCulture), JsonDocument.Parse(reader.GetString(2)).RootElement.Clone()));
            }
        }

        double Get(JsonElement m, string name) => m.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : 0;
        var sums = new double[6];
        for (var i = 1; i < rows.Count; i++)
        {
            var m = rows[i].Metrics;
            var wall = rows[i].ClosedAt - rows[i - 1].ClosedAt;
            var load = Get(m, "policy_load_seconds");
            var sampling = Get(m, "sampling_seconds");
            var scoring = Get(m, "scoring_seconds");
            var update = Get(m, "update_seconds") + Get(m, "publish_seconds");
            sums[0] += wall;
            sums[1] += sampling;
            sums[2] += scoring;
            sums[3] += update;
            sums[4] += wall - sampling - scoring - update;
            sums[5] += load;
        }

        return sums.Select(s => s / Math.Max(1, rows.Count - 1)).ToArray();
    }

    private static async Task<double> ScaleOutAsync(BenchDatabase db, string spec, int silos, CancellationToken cancellationToken)
    {
        var id = await CreateAsync(db.DataSource, spec, cancellationToken);
        var children = new List<Process>();
        try
        {
            for (var i = 0; i < silos; i++)
            {
                children.Add(StartSilo(db.ConnectionString, id, $"bench-rollout-{id}-{i}"));
            }

            var settings = new SiloSettings { Engines = HostEngines.All, CampaignId = id, Name = $"bench-learner-{id}", Roles = [SiloRoles.Reward, SiloRoles.Learner] };
            using var silo = await SiloHost.StartAsync(db.DataSource, settings, 1, null, cancellationToken);
            await WaitAsync(new CampaignStore(db.DataSource), id, cancellationToken);
            await silo.StopAsync(cancellationToken);
            await using var command = db.DataSource.CreateCommand(
                "SELECT extract(epoch FROM max(created_at) - min(created_at)), count(*) FROM step_metrics WHERE campaign_id = $1");
            command.Parameters.Add(new NpgsqlParameter { Value = id });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            var seconds = Convert.ToDouble(reader.GetValue(0), CultureInfo.InvariantCulture);
            var steps = reader.GetInt64(1) - 1;
            return steps / seconds * 60;
        }
        finally
        {
            foreach (var child in children)
            {
                if (!child.HasExited)
                {
                    child.Kill(entireProcessTree: true);
                }

                await child.WaitForExitAsync(CancellationToken.None);
                child.Dispose();
            }
        }
    }

    private static Process StartSilo(string connectionString, long campaign, string nodeId)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet") { UseShellExecute = false, RedirectStandardOutput = true };
        var entry = System.Reflection.Assembly.GetEntryAssembly()!.Location;
        if (Path.GetFileNameWithoutExtension(info.FileName) == "dotnet")
        {
            info.ArgumentList.Add(entry);
        }

        foreach (var argument in new[]
        {
            "silo", "--roles", "rollout", "--db", connectionString, "--node-id", nodeId, "--threads", "1", "--quiet",
            "--campaign", campaign.ToString(CultureInfo.InvariantCulture),
        })
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("cannot start a rollout silo");
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        return process;
    }
}
