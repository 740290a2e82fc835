using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using DeepSeekRL.Grains;
using DeepSeekRL.Grains.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// Part 3 of <c>bench campaign</c>: a campaign on four silo processes of the database's shared Orleans cluster
/// (r1, r2: rollout + reward; l1, l2: learner). Each role's silo is killed with SIGKILL in turn (a rollout silo
/// holding an item, the learner lease's holder, the silo hosting the campaign grain; each restarted under its name),
/// and the seconds from the kill until the campaign closes its next step are reported beside the median step time.
/// The bench process joins the same cluster as a silo without grains and times calls to the campaign grain.
/// </summary>
internal static partial class CampaignBenchmark
{
    private static async Task ClusterFaultsAsync(BenchDatabase db, string spec, int runs, BenchReport report, CancellationToken cancellationToken)
    {
        var figures = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        var notes = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var run = 0; run < runs; run++)
        {
            var one = new BenchReport();
            await ClusterFaultsRunAsync(db, spec, one, cancellationToken);
            foreach (var (name, note) in one.Notes)
            {
                notes[name] = note;
            }

            foreach (var (name, value) in one.Values)
            {
                (figures.TryGetValue(name, out var list) ? list : figures[name] = []).Add(value);
            }
        }

        foreach (var (name, values) in figures)
        {
            report.Add(name, BenchReport.Median(values), notes[name] + $" (median of {values.Count} runs)");
        }
    }

    private static async Task ClusterFaultsRunAsync(
        BenchDatabase db, string spec, BenchReport report, CancellationToken cancellationToken)
    {
        // The small campaign again, long enough for three kills.
        var longSpec = Path.Combine(Path.GetDirectoryName(spec)!, "bench-faults.json");
        await File.WriteAllTextAsync(longSpec, (await File.ReadAllTextAsync(spec, cancellationToken))
            .Replace($"\"steps\": {Steps}", "\"steps\": 400", StringComparison.Ordinal), cancellationToken);
        var id = await CreateAsync(db.DataSource, longSpec, cancellationToken);
        var silos = new Dictionary<string, Child>();
        try
        {
            foreach (var (name, roles) in new[] { ("r1", "rollout,reward"), ("r2", "rollout,reward"), ("l1", "learner"), ("l2", "learner") })
            {
                silos[name] = Child.Start(db.ConnectionString, id, name, roles);
            }

            // The bench process joins the cluster with no grain role: every call it makes is cross-silo.
            var settings = new SiloSettings { Engines = HostEngines.All, Name = $"bench-client-{Environment.ProcessId}", Roles = [SiloRoles.Api] };
            using var client = await SiloHost.StartAsync(db.DataSource, settings, 1, null, cancellationToken);
            await WaitForStepsAsync(db.DataSource, id, 3, TimeSpan.FromMinutes(3), cancellationToken);

            // This silo hosts no campaign grain: the interface resolves through the cluster manifest, which it has
            // by now (right after joining it may not).
            var campaign = client.Services.GetRequiredService<IGrainFactory>().GetGrain<ICampaignGrain>(id);

            var latencies = new List<double>();
            for (var i = 0; i < 2000; i++)
            {
                var started = Stopwatch.GetTimestamp();
                await campaign.EnsureRunningAsync();
                latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }

            latencies.Sort();
            report.Add("campaign_grain_call_p50_ms", latencies[latencies.Count / 2], "ICampaignGrain.EnsureRunningAsync from another silo (one status read in PostgreSQL), 2,000 calls");
            report.Add("campaign_grain_call_p99_ms", latencies[(int)(latencies.Count * 0.99)], "the same calls' 99th percentile");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  grain call (cross-silo EnsureRunningAsync): p50 {latencies[latencies.Count / 2]:0.000} ms, p99 {latencies[(int)(latencies.Count * 0.99)]:0.000} ms"));

            var stepSeconds = await MedianStepSecondsAsync(db.DataSource, id, cancellationToken);
            report.Add("campaign_cluster_step_seconds", stepSeconds, "median step time of the four-silo campaign before the kills (reference for the recovery times)");
            foreach (var role in new[] { "rollout", "learner", "campaign" })
            {
                // The victim, and what "its work moves again" means for its role.
                string? victim;
                Func<Task<bool>> resumed;
                if (role == "rollout")
                {
                    var (holder, item) = await RolloutHolderAsync(db.DataSource, id, cancellationToken);
                    victim = holder;
                    resumed = async () => await ScalarAsync<string>(db.DataSource, $"SELECT state FROM work_items WHERE id = {item}", cancellationToken) == "completed";
                }
                else if (role == "learner")
                {
                    victim = await ScalarAsync<string>(db.DataSource, $"SELECT owner_node FROM singleton_leases WHERE name = 'learner/{id}'", cancellationToken);
                    var epoch = await ScalarAsync<long>(db.DataSource, $"SELECT epoch FROM singleton_leases WHERE name = 'learner/{id}'", cancellationToken);
                    resumed = async () => await ScalarAsync<long>(db.DataSource, $"SELECT epoch FROM singleton_leases WHERE name = 'learner/{id}'", cancellationToken) > epoch;
                }
                else
                {
                    victim = CampaignHost(silos.Values, id);
                    resumed = () => Task.FromResult(silos.Values.Where(s => s.Name != victim)
                        .Any(s => s.Lines.Count(l => l.Contains($"campaign {id}: coordinator active on silo ", StringComparison.Ordinal)) > s.DrivesBefore));
                    foreach (var silo in silos.Values)
                    {
                        silo.DrivesBefore = silo.Lines.Count(l => l.Contains($"campaign {id}: coordinator active on silo ", StringComparison.Ordinal));
                    }
                }

                if (victim is null || !silos.ContainsKey(victim))
                {
                    throw new CommandLine.CliException($"bench campaign: no silo found for the {role} role");
                }

                var before = await ScalarAsync<long>(db.DataSource, $"SELECT count(*) FROM step_metrics WHERE campaign_id = {id}", cancellationToken);
                var killed = Stopwatch.GetTimestamp();
                silos[victim].Kill();
                double? resumedAfter = null;
                while (await ScalarAsync<long>(db.DataSource, $"SELECT count(*) FROM step_metrics WHERE campaign_id = {id}", cancellationToken) <= before || resumedAfter is null)
                {
                    if (resumedAfter is null && await resumed())
                    {
                        resumedAfter = Stopwatch.GetElapsedTime(killed).TotalSeconds;
                    }

                    if (Stopwatch.GetElapsedTime(killed) > TimeSpan.FromMinutes(2))
                    {
                        throw new CommandLine.CliException($"bench campaign: the campaign did not move within 2 minutes of killing {victim}");
                    }

                    await Task.Delay(20, cancellationToken);
                }

                var stepAfter = Stopwatch.GetElapsedTime(killed).TotalSeconds;
                var what = role switch
                {
                    "rollout" => ("the silo holding a rollout item", "that item completed by another silo"),
                    "learner" => ("the silo holding the learner lease", "another silo's learner took the lease"),
                    _ => ("the silo hosting the campaign grain", "the campaign grain drove again on another silo"),
                };
                report.Add($"campaign_resume_seconds_{role}", resumedAfter!.Value, $"kill -9 of {what.Item1} until {what.Item2}");
                report.Add($"campaign_recovery_seconds_{role}", stepAfter, $"kill -9 of {what.Item1} until the next step closed");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  kill -9 of {victim} ({role}): resumed after {resumedAfter:0.00} s, next step closed after {stepAfter:0.00} s (step time {stepSeconds:0.00} s)"));
                silos[victim] = Child.Start(db.ConnectionString, id, victim, victim.StartsWith('r') ? "rollout,reward" : "learner");
                await WaitForStepsAsync(db.DataSource, id, before + 4, TimeSpan.FromMinutes(2), cancellationToken);
            }

            await campaign.CancelAsync();
            await client.StopAsync(cancellationToken);
        }
        finally
        {
            foreach (var child in silos.Values)
            {
                child.Kill();
            }
        }
    }

    private static async Task<(string? Holder, long Item)> RolloutHolderAsync(NpgsqlDataSource dataSource, long id, CancellationToken cancellationToken)
    {
        for (var i = 0; i < 4000; i++)
        {
            await using var command = dataSource.CreateCommand(
                $"SELECT lease_node, id FROM work_items WHERE campaign_id = {id} AND kind = 'rollout' AND state = 'running' LIMIT 1");
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            if (await reader.ReadAsync(cancellationToken))
            {
                return (reader.GetString(0), reader.GetInt64(1));
            }

            await Task.Delay(5, cancellationToken);
        }

        return (null, 0);
    }

    private static string? CampaignHost(IEnumerable<Child> silos, long id) => silos
        .Select(s => (s.Name, Line: s.Lines.LastOrDefault(l => l.Contains($"campaign {id}: coordinator active on silo ", StringComparison.Ordinal))))
        .Where(x => x.Line is not null)
        .OrderByDescending(x => TimeStamp().Match(x.Line!).Value, StringComparer.Ordinal)
        .Select(x => x.Name)
        .FirstOrDefault();

    private static async Task<double> MedianStepSecondsAsync(NpgsqlDataSource dataSource, long id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT extract(epoch FROM created_at - lag(created_at) OVER (ORDER BY step)) FROM step_metrics WHERE campaign_id = {id} ORDER BY step
            """);
        var gaps = new List<double>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            if (!reader.IsDBNull(0))
            {
                gaps.Add(Convert.ToDouble(reader.GetValue(0), CultureInfo.InvariantCulture));
            }
        }

        return BenchReport.Median(gaps);
    }

    private static async Task WaitForStepsAsync(NpgsqlDataSource dataSource, long id, long steps, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        while (await ScalarAsync<long>(dataSource, $"SELECT count(*) FROM step_metrics WHERE campaign_id = {id}", cancellationToken) < steps)
        {
            if (Stopwatch.GetElapsedTime(started) > timeout)
            {
                throw new CommandLine.CliException($"bench campaign: campaign {id} did not reach {steps} steps within {timeout.TotalSeconds:0} s");
            }

            await Task.Delay(20, cancellationToken);
        }
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource dataSource, string sql, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    [GeneratedRegex(@"\[\d\d:\d\d:\d\d\.\d+\]")]
    private static partial Regex TimeStamp();

    /// <summary>A silo child process whose output lines are kept.</summary>
    private sealed class Child(string name, Process process)
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public string Name => name;

        public IEnumerable<string> Lines => _lines;

        public int DrivesBefore { get; set; }

        public static Child Start(string connectionString, long campaign, string name, string roles)
        {
            var info = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet") { UseShellExecute = false, RedirectStandardOutput = true };
            if (Path.GetFileNameWithoutExtension(info.FileName) == "dotnet")
            {
                info.ArgumentList.Add(System.Reflection.Assembly.GetEntryAssembly()!.Location);
            }

            foreach (var argument in new[]
            {
                "silo", "--roles", roles, "--db", connectionString, "--node-id", name, "--threads", "1",
                "--campaign", campaign.ToString(CultureInfo.InvariantCulture),
            })
            {
                info.ArgumentList.Add(argument);
            }

            var started = Process.Start(info) ?? throw new InvalidOperationException("cannot start a silo");
            var child = new Child(name, started);
            started.OutputDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    child._lines.Enqueue(e.Data);
                }
            };
            started.BeginOutputReadLine();
            return child;
        }

        private bool _killed;

        public void Kill()
        {
            if (_killed)
            {
                return;
            }

            _killed = true;
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            process.WaitForExit(10_000);
            process.Dispose();
        }
    }
}
