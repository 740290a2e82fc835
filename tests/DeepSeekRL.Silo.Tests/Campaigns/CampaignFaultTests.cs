using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeekRL.Storage.Database;
using DeepSeekRL.Testing;
using Npgsql;

namespace DeepSeekRL.Silo.Tests.Campaigns;

/// <summary>
/// A native campaign on four Orleans silos (two rollout/reward, two learner) survives a SIGKILLed rollout silo, a
/// SIGKILLed (and restarted) learner silo mid-update, a SIGKILLed silo hosting the campaign grain and a restart of
/// PostgreSQL, and ends with exactly the state and weights of the same campaign run without faults.
/// </summary>
/// <remarks>
/// Runs on a dedicated embedded PostgreSQL cluster (in a temp directory) so that restarting it does not disturb the
/// tests running in parallel on the shared server.
/// </remarks>
public sealed class CampaignFaultTests
{
    private const int Steps = 14;
    private const int GroupSize = 4;
    private const int PromptsPerStep = 2;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task FourSilos_RolloutKilledLearnerKilledCampaignGrainKilledPostgresRestarted_CompletesExactlyOnceWithReferenceWeights()
    {
        var total = Stopwatch.StartNew();
        var root = Path.Combine(Path.GetTempPath(), "dsrl-fault-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101);
        var spec = WriteSpec(root);
        var log = new StringBuilder();
        var children = new List<CliChild>();
        var refCluster = new EmbeddedPostgres(new EmbeddedPostgresOptions { DataDirectory = Path.Combine(root, "pg"), Database = "reference" });
        var faultCluster = new EmbeddedPostgres(new EmbeddedPostgresOptions { DataDirectory = Path.Combine(root, "pg"), Database = "faults" });
        var passed = false;
        List<int> r1Items = [];
        var killedLearnerAt = -1;
        var killedCampaignHostAt = -1;
        var stepsAtDbRestart = -1;
        try
        {
            var refDb = Ok(await refCluster.StartAsync(Ct));
            var faultDb = Ok(await faultCluster.StartAsync(Ct));
            Note(log, total, "dedicated PostgreSQL started");

            // 1. Reference: the whole campaign in one process, no faults.
            var reference = await CliProcess.RunAsync(["campaign", "run", spec, "--db", refDb, "--threads", "1"], null, Ct);
            Assert.True(reference.ExitCode == 0, $"reference run failed ({reference.ExitCode}):\n{reference.StandardOutput}\n{reference.StandardError}");
            Note(log, total, $"reference run done in {reference.Elapsed.TotalSeconds:F1} s");
            Dictionary<int, string> referenceVersions;
            await using (var refSource = NpgsqlDataSource.Create(refDb))
            {
                var refId = await ScalarAsync<long>(refSource, "SELECT max(id) FROM campaigns");
                Assert.Equal("completed", await ScalarAsync<string>(refSource, $"SELECT state FROM campaigns WHERE id = {refId}"));
                Assert.Equal((long)Steps, await ScalarAsync<long>(refSource, $"SELECT count(*) FROM step_metrics WHERE campaign_id = {refId}"));
                referenceVersions = await PolicyVersionsAsync(refSource, refId);
                Assert.Equal(Steps + 1, referenceVersions.Count);
                var updated = await ScalarAsync<long>(refSource,
                    $"SELECT count(*) FROM step_metrics WHERE campaign_id = {refId} AND NOT metrics ? 'update_skipped'");
                Assert.True(updated >= Steps / 2, $"the reference run updated the policy at only {updated} of {Steps} steps: the spec gives no signal");
            }

            // 2. Fault run: create, then four silos.
            var created = await CliProcess.RunAsync(["campaign", "run", spec, "--detach", "--db", faultDb], null, Ct);
            Assert.True(created.ExitCode == 0, created.StandardOutput + created.StandardError);
            var id = long.Parse(CliProcess.Lines(created.StandardOutput)[^1], CultureInfo.InvariantCulture);
            var idText = id.ToString(CultureInfo.InvariantCulture);
            string[] SiloArgs(string roles, string node) =>
                ["silo", "--roles", roles, "--node-id", node, "--campaign", idText, "--threads", "1", "--db", faultDb];
            var r1 = Track(children, CliChild.Start("r1", SiloArgs("rollout,reward", "r1")));
            Track(children, CliChild.Start("r2", SiloArgs("rollout,reward", "r2")));
            Track(children, CliChild.Start("L", SiloArgs("learner", "L")));
            Track(children, CliChild.Start("M", SiloArgs("learner", "M")));
            Note(log, total, $"campaign {id} created; silos r1 (pid {r1.Pid}), r2, L, M started");

            var poll = new NpgsqlConnectionStringBuilder(faultDb) { Pooling = false, Timeout = 3 }.ConnectionString;
            var deadline = Stopwatch.StartNew();
            var limit = TimeSpan.FromMinutes(4);

            // Fault 1: SIGKILL r1 while it holds a rollout item, once at least two steps are done.
            while (true)
            {
                FailIfOver(deadline, limit, children, "waiting for fault 1");
                var state = await TryReadAsync(poll, $"""
                    SELECT (SELECT count(*) FROM step_metrics WHERE campaign_id = {id}),
                           (SELECT count(*) FROM work_items WHERE campaign_id = {id} AND kind = 'rollout' AND state = 'running' AND lease_node = 'r1')
                    """);
                if (state is { } s && s[0] >= 2 && (s[1] > 0 || s[0] >= 4))
                {
                    r1.Kill();
                    // Its leases stay until Orleans declares it dead (missed probes): read them now.
                    await using var read = NpgsqlDataSource.Create(poll);
                    r1Items = await ListAsync(read, $"SELECT id::int FROM work_items WHERE campaign_id = {id} AND state = 'running' AND lease_node = 'r1' ORDER BY id");
                    Note(log, total, $"fault 1: SIGKILL r1 at {s[0]} steps; rollout items leased by r1: {s[1]}; all its items: {string.Join(",", r1Items)}");
                    break;
                }

                await Task.Delay(20, Ct);
            }

            // Fault 2: SIGKILL the silo of the learner (the holder of the learner lease) while it updates: step k's
            // completions are all scored and its metrics are not written yet. The kill waits for the learner's read time
            // plus half its update time of the previous step, so that it lands inside the update; a step where that
            // moment is missed is not counted, the next one is tried. Then restart it (a new generation of that name).
            while (true)
            {
                FailIfOver(deadline, limit, children, "waiting for fault 2");
                var state = await TryReadAsync(poll, $"""
                    WITH m AS (SELECT count(*) AS n FROM step_metrics WHERE campaign_id = {id})
                    SELECT m.n,
                           (SELECT count(*) FROM work_items w WHERE w.campaign_id = {id} AND w.kind = 'reward' AND w.state = 'completed'
                               AND (w.payload->>'step')::int = m.n),
                           (SELECT count(*) FROM step_metrics WHERE campaign_id = {id} AND step = m.n),
                           (SELECT coalesce(round(1000 * ((metrics->>'learner_read_seconds')::float8 + 0.5 * (metrics->>'update_seconds')::float8)), 0)::bigint
                              FROM step_metrics WHERE campaign_id = {id} AND step = m.n - 1)
                      FROM m
                    """);
                Assert.False(state is { } over && over[0] >= Steps - 4, "the learner was never caught between scoring and recording a step");
                if (state is { } s && s[0] >= 4 && s[1] >= PromptsPerStep && s[2] == 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(s[3], 1000)), Ct);
                    var holder = await TryReadStringAsync(poll, $"SELECT owner_node FROM singleton_leases WHERE name = 'learner/{id}'");
                    var still = await TryReadAsync(poll, $"""
                        SELECT (SELECT count(*) FROM step_metrics WHERE campaign_id = {id} AND step = {s[0]}),
                               (SELECT count(*) FROM policy_versions WHERE campaign_id = {id} AND version = {s[0] + 1})
                        """);
                    if (still is [0, var published] && children.SingleOrDefault(c => c.Name == holder && !c.HasExited) is { } learner)
                    {
                        learner.Kill();
                        killedLearnerAt = (int)s[0];
                        Note(log, total,
                            $"fault 2: SIGKILL {holder} (the learner) {s[3]} ms after step {s[0]}'s {s[1]} reward items completed; its metrics not written, policy version {s[0] + 1} {(published > 0 ? "already" : "not yet")} published");
                        await Task.Delay(500, Ct);
                        Track(children, CliChild.Start(holder + "'", SiloArgs("learner", holder!)));
                        Note(log, total, $"learner silo {holder} restarted");
                        break;
                    }
                }

                await Task.Delay(10, Ct);
            }

            // Fault 3: SIGKILL the silo hosting the campaign grain (it says so when it starts driving).
            while (true)
            {
                FailIfOver(deadline, limit, children, "waiting for fault 3");
                var state = await TryReadAsync(poll, $"SELECT (SELECT count(*) FROM step_metrics WHERE campaign_id = {id}), 0::bigint");
                var host = CampaignGrainHost(children, id);
                if (state is { } s && s[0] >= killedLearnerAt + 2 && host is not null)
                {
                    host.Kill();
                    killedCampaignHostAt = (int)s[0];
                    Note(log, total, $"fault 3: SIGKILL {host.Name}, the silo hosting campaign {id}'s grain, at {s[0]} steps");
                    break;
                }

                await Task.Delay(50, Ct);
            }

            // Fault 4: restart PostgreSQL (fast shutdown: every session is cut).
            while (true)
            {
                FailIfOver(deadline, limit, children, "waiting for fault 4");
                var state = await TryReadAsync(poll, $"SELECT (SELECT count(*) FROM step_metrics WHERE campaign_id = {id}), 0::bigint");
                if (state is { } s && s[0] >= killedCampaignHostAt + 1)
                {
                    Assert.True(Ok(await faultCluster.StopAsync(Ct)));
                    stepsAtDbRestart = (int)s[0];
                    Note(log, total, $"fault 4: PostgreSQL stopped at {s[0]} steps");
                    await Task.Delay(2000, Ct);
                    Assert.Equal(faultDb, Ok(await faultCluster.StartAsync(Ct)));
                    Note(log, total, "fault 4: PostgreSQL started again (same port)");
                    break;
                }

                await Task.Delay(50, Ct);
            }

            // 3. Completion.
            while (true)
            {
                FailIfOver(deadline, limit, children, "waiting for completion");
                var state = await TryReadStringAsync(poll, $"SELECT state FROM campaigns WHERE id = {id}");
                if (state is "completed")
                {
                    break;
                }

                Assert.False(state is "failed" or "cancelled", $"campaign ended {state}");
                await Task.Delay(200, Ct);
            }

            Note(log, total, "campaign completed");
            var survivors = children.Where(c => !c.Output.Contains("test: killed", StringComparison.Ordinal)).ToList();
            Assert.All(survivors, c => Assert.False(c.HasExited, $"silo {c.Name} exited"));
            foreach (var child in children)
            {
                child.Kill();
            }

            await using var db = NpgsqlDataSource.Create(faultDb);
            await AssertExactlyOnceAsync(db, id);

            // The faults really hit: r1's items were completed by another node after r1 was declared dead ...
            Assert.NotEmpty(r1Items);
            foreach (var item in r1Items)
            {
                Assert.Equal("r2", await ScalarAsync<string>(db, $"SELECT node_id FROM work_results WHERE item_id = {item}"));
                Assert.True(await ScalarAsync<int>(db, $"SELECT attempt FROM work_items WHERE id = {item}") >= 2);
            }

            // ... the killed learner's step was recorded by its successor (a later lease epoch), which resumed from a
            // checkpoint ...
            Assert.True(killedLearnerAt >= 4, "the learner was not killed between scoring and recording a step");
            var epochs = await ListAsync(db, $"SELECT epoch::int FROM step_metrics WHERE campaign_id = {id} ORDER BY step");
            Note(log, total, $"step_metrics epochs by step: {string.Join(",", epochs)}");
            Assert.True(epochs[killedLearnerAt] > epochs[0], $"step {killedLearnerAt} was written by the killed learner's epoch");
            Assert.True(await ScalarAsync<long>(db, $"SELECT count(*) FROM learner_checkpoints WHERE campaign_id = {id} AND step < {killedLearnerAt}") >= 1);

            // ... the campaign grain's silo died with steps to go, and its grain came back on another silo ...
            Assert.InRange(killedCampaignHostAt, killedLearnerAt + 2, Steps - 1);

            // ... and steps were still to be done when PostgreSQL restarted.
            Assert.InRange(stepsAtDbRestart, killedCampaignHostAt + 1, Steps - 1);
            var versions = await PolicyVersionsAsync(db, id);
            Assert.Equal(Enumerable.Range(0, Steps + 1), versions.Keys.Order());
            var counters = await ScalarAsync<string>(db, $"SELECT coalesce(jsonb_object_agg(name, value), '{{}}')::text FROM campaign_counters WHERE campaign_id = {id}");
            Note(log, total, "counters " + counters);
            var mismatches = JsonNode.Parse(counters)!["learner_replay_mismatches"]?.GetValue<long>() ?? 0;
            Assert.Equal(0L, mismatches);

            var firstDifferent = Enumerable.Range(0, Steps + 1).FirstOrDefault(v => versions[v] != referenceVersions[v], -1);
            Assert.True(
                firstDifferent < 0,
                $"policy version {firstDifferent} differs from the fault-free run: {versions[Math.Max(0, firstDifferent)]} vs {referenceVersions[Math.Max(0, firstDifferent)]}");
            passed = true;
            Note(log, total, $"final policy sha256 {versions[Steps]} equals the reference run's");
            foreach (var child in children)
            {
                var problems = CliProcess.Lines(child.Output)
                    .Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase) || l.Contains("exception", StringComparison.OrdinalIgnoreCase)
                        || l.Contains("warn", StringComparison.OrdinalIgnoreCase) || l.Contains("lost", StringComparison.OrdinalIgnoreCase))
                    .ToList();
                Note(log, total, $"silo {child.Name}: {problems.Count} error/warning lines{(problems.Count > 0 ? ":\n  " : string.Empty)}{string.Join("\n  ", problems.Take(15))}");
            }
        }
        finally
        {
            foreach (var child in children)
            {
                child.Dispose();
            }

            var output = TestContext.Current.TestOutputHelper;
            output?.WriteLine(log.ToString());
            if (!passed)
            {
                foreach (var child in children)
                {
                    output?.WriteLine($"===== silo {child.Name} (pid {child.Pid}) =====\n{child.Output}");
                }
            }

            await refCluster.StopAsync(CancellationToken.None);
            try
            {
                Directory.Delete(root, recursive: true);
                if (refCluster.LocationNote is not null && Directory.Exists(refCluster.DataDirectory))
                {
                    // The server user could not reach the temp directory: the cluster lived in the fallback root.
                    Directory.Delete(refCluster.DataDirectory, recursive: true);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                output?.WriteLine($"could not remove {root}: {ex.Message}");
            }
        }
    }

    private static async Task AssertExactlyOnceAsync(NpgsqlDataSource db, long id)
    {
        // Work items may have been archived; look at both tables.
        var items = $"(SELECT id, kind, state, payload FROM work_items WHERE campaign_id = {id} UNION ALL SELECT id, kind, state, payload FROM work_items_archive WHERE campaign_id = {id})";
        Assert.Equal("completed", await ScalarAsync<string>(db, $"SELECT state FROM campaigns WHERE id = {id}"));
        Assert.Equal((long)Steps, await ScalarAsync<long>(db, $"SELECT steps_completed::bigint FROM campaigns WHERE id = {id}"));

        // Each step's metrics exactly once.
        Assert.Equal(Enumerable.Range(0, Steps).ToList(), await ListAsync(db, $"SELECT step FROM step_metrics WHERE campaign_id = {id} ORDER BY step"));

        // No item lost, none left behind, none completed twice.
        Assert.Equal(0L, await ScalarAsync<long>(db, $"SELECT count(*) FROM {items} i WHERE state NOT IN ('completed', 'cancelled')"));
        Assert.Equal(0L, await ScalarAsync<long>(db, $"SELECT count(*) FROM (SELECT id FROM {items} i GROUP BY id HAVING count(*) > 1) d"));
        Assert.Equal(
            await ScalarAsync<long>(db, $"SELECT count(*) FROM {items} i WHERE state = 'completed'"),
            await ScalarAsync<long>(db, $"SELECT count(*) FROM work_results WHERE campaign_id = {id}"));
        Assert.Equal(0L, await ScalarAsync<long>(db,
            $"SELECT count(*) FROM work_results r WHERE r.campaign_id = {id} AND NOT EXISTS (SELECT 1 FROM {items} i WHERE i.id = r.item_id AND i.state = 'completed')"));

        // Every step rolled out every prompt: one completed rollout item per prompt slot of the step.
        Assert.Equal(0L, await ScalarAsync<long>(db, $"""
            SELECT count(*) FROM generate_series(0, {Steps - 1}) s(step)
             WHERE (SELECT count(*) FROM {items} i WHERE kind = 'rollout' AND state = 'completed' AND (payload->>'step')::int = s.step) <> {PromptsPerStep}
            """));

        // Every completed rollout item has exactly G completions; every completion belongs to a completed rollout item.
        Assert.Equal(0L, await ScalarAsync<long>(db, $"""
            SELECT count(*) FROM {items} i
             WHERE kind = 'rollout' AND state = 'completed'
               AND (SELECT count(*) FROM completions c WHERE c.item_id = i.id) <> {GroupSize}
            """));
        Assert.Equal(0L, await ScalarAsync<long>(db, $"""
            SELECT count(*) FROM completions c
             WHERE c.campaign_id = {id}
               AND NOT EXISTS (SELECT 1 FROM {items} i WHERE i.id = c.item_id AND kind = 'rollout' AND state = 'completed')
            """));

        // Every completed rollout item has exactly one reward item, and it is completed.
        Assert.Equal(0L, await ScalarAsync<long>(db, $"""
            SELECT count(*) FROM {items} i
             WHERE kind = 'rollout' AND state = 'completed'
               AND (SELECT count(*) FILTER (WHERE r.state = 'completed') || '/' || count(*) FROM {items} r
                     WHERE r.kind = 'reward' AND (r.payload->>'rollout_item_id')::bigint = i.id) <> '1/1'
            """));

        // SFT samples: at most one per completion, as many as were accepted.
        Assert.Equal(0L, await ScalarAsync<long>(db,
            $"SELECT count(*) FROM (SELECT completion_id FROM sft_samples WHERE campaign_id = {id} GROUP BY completion_id HAVING count(*) > 1) d"));
        Assert.Equal(0L, await ScalarAsync<long>(db, $"SELECT count(*) FROM sft_samples WHERE campaign_id = {id} AND completion_id IS NULL"));
        var accepted = await ScalarAsync<long>(db, $"SELECT coalesce((SELECT value FROM campaign_counters WHERE campaign_id = {id} AND name = 'samples_accepted'), -1)");
        Assert.Equal(accepted, await ScalarAsync<long>(db, $"SELECT count(*) FROM sft_samples WHERE campaign_id = {id}"));
        Assert.Equal(
            await ScalarAsync<long>(db, $"SELECT count(*) FROM completions WHERE campaign_id = {id}"),
            await ScalarAsync<long>(db, $"SELECT coalesce((SELECT value FROM campaign_counters WHERE campaign_id = {id} AND name = 'samples_generated'), -1)"));
    }

    private static string WriteSpec(string root)
    {
        var examples = Path.Combine(RepositoryPaths.Root, "examples");
        var spec = new JsonObject
        {
            ["name"] = "fault-native",
            ["policy"] = new JsonObject
            {
                ["native"] = new JsonObject
                {
                    ["config"] = Path.Combine(examples, "models", "quick.json"),
                    ["seed"] = 1,
                    ["tokenizer"] = Path.Combine(examples, "models", "tiny-tokenizer.json"),
                },
            },
            ["dataset"] = new JsonObject
            {
                ["path"] = Path.Combine(examples, "data", "arithmetic.jsonl"),
                ["template"] = "r1_zero",
                ["eval_fraction"] = 0.2,
            },
            // Accuracy is 0 for a random model; cosine scores a wrong answer by its length in characters, which varies
            // within every group of random text, so every step has a reward signal and really updates the policy.
            ["rewards"] = new JsonObject
            {
                ["rules"] = new JsonArray(
                    new JsonObject { ["rule"] = "accuracy", ["weight"] = 1.0 },
                    new JsonObject { ["rule"] = "cosine", ["weight"] = 1.0, ["options"] = new JsonObject { ["max_length"] = 120 } },
                    new JsonObject
                    {
                        ["rule"] = "language_consistency",
                        ["weight"] = 0.0,
                        ["options"] = new JsonObject { ["language"] = "en", ["scope"] = "completion", ["no_words_score"] = 0 },
                    }),
            },
            ["algorithm"] = new JsonObject
            {
                ["variant"] = "grpo",
                ["group_size"] = GroupSize,
                ["prompts_per_step"] = PromptsPerStep,
                ["learning_rate"] = 1e-3,
                ["beta"] = 0.0,
                ["max_new_tokens"] = 24,
                ["temperature"] = 1.0,
                ["top_p"] = 1.0,
                ["steps"] = Steps,
                ["dynamic_sampling"] = false,
                ["allowed_staleness"] = 0,
            },
            // Some samples are rejected, so that "accepted" is not simply "all".
            ["rejection_sampling"] = new JsonArray(new JsonObject { ["rule"] = "language_consistency", ["op"] = ">=", ["value"] = 0.5 }),
            ["evaluation"] = new JsonObject { ["every_steps"] = 4, ["mode"] = "greedy", ["k"] = 1, ["set"] = "eval_split" },
            ["checkpoint_every_steps"] = 3,
            ["seed"] = 7,
        };
        var path = Path.Combine(root, "spec.json");
        File.WriteAllText(path, spec.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return path;
    }

    // The live silo that most recently said it drives the campaign (its campaign grain's activation logs it).
    private static CliChild? CampaignGrainHost(List<CliChild> children, long id)
    {
        var marker = $"campaign {id}: coordinator active on silo ";
        return children.Where(c => !c.HasExited)
            .Select(c => (Child: c, Line: CliProcess.Lines(c.Output).LastOrDefault(l => l.Contains(marker, StringComparison.Ordinal))))
            .Where(x => x.Line is not null)
            .OrderByDescending(x => System.Text.RegularExpressions.Regex.Match(x.Line!, @"\[(\d\d:\d\d:\d\d\.\d+)\]").Groups[1].Value, StringComparer.Ordinal)
            .Select(x => x.Child)
            .FirstOrDefault();
    }

    private static CliChild Track(List<CliChild> children, CliChild child)
    {
        children.Add(child);
        return child;
    }

    private static T Ok<T>(Outcome<T> outcome) =>
        outcome.Succeeded ? outcome.Value : throw new InvalidOperationException(outcome.Error);

    private static void Note(StringBuilder log, Stopwatch total, string line) =>
        log.Append(CultureInfo.InvariantCulture, $"[{total.Elapsed.TotalSeconds,6:F1} s] {line}\n");

    private static void FailIfOver(Stopwatch deadline, TimeSpan limit, List<CliChild> children, string what)
    {
        Assert.True(deadline.Elapsed < limit, $"timed out after {limit.TotalMinutes} min {what}");
        var dead = children.Where(c => c.HasExited && !c.Output.Contains("test: killed", StringComparison.Ordinal)).Select(c => c.Name).ToList();
        Assert.True(dead.Count == 0, $"silo(s) {string.Join(", ", dead)} exited on their own {what}");
    }

    private static async Task<long[]?> TryReadAsync(string connectionString, string sql)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(Ct);
            await using var command = new NpgsqlCommand(sql, connection);
            await using var reader = await command.ExecuteReaderAsync(Ct);
            if (!await reader.ReadAsync(Ct))
            {
                return null;
            }

            var values = new long[reader.FieldCount];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = Convert.ToInt64(reader.GetValue(i), CultureInfo.InvariantCulture);
            }

            return values;
        }
        catch (NpgsqlException)
        {
            return null;
        }
    }

    private static async Task<string?> TryReadStringAsync(string connectionString, string sql)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(Ct);
            await using var command = new NpgsqlCommand(sql, connection);
            return await command.ExecuteScalarAsync(Ct) as string;
        }
        catch (NpgsqlException)
        {
            return null;
        }
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        var value = await command.ExecuteScalarAsync(Ct);
        return (T)Convert.ChangeType(value, typeof(T), CultureInfo.InvariantCulture)!;
    }

    private static async Task<List<int>> ListAsync(NpgsqlDataSource db, string sql)
    {
        var list = new List<int>();
        await using var command = db.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            list.Add(reader.GetInt32(0));
        }

        return list;
    }

    private static async Task<Dictionary<int, string>> PolicyVersionsAsync(NpgsqlDataSource db, long id)
    {
        var versions = new Dictionary<int, string>();
        await using var command = db.CreateCommand($"SELECT version, sha256 FROM policy_versions WHERE campaign_id = {id}");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            versions[reader.GetInt32(0)] = reader.GetString(1);
        }

        return versions;
    }
}
