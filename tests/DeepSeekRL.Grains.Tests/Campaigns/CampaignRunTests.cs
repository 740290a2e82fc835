using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Grains.Hosting;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace DeepSeekRL.Grains.Tests.Campaigns;

/// <summary>Campaigns run in-process on a real PostgreSQL database with the real tiny model and reward rules.</summary>
public sealed class CampaignRunTests : IDisposable
{
    private static readonly string Examples = Path.Combine(RepositoryPaths.Root, "examples");
    private readonly string _dir = Directory.CreateTempSubdirectory("campaign-run-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string WriteSpec(string name, string rewards, int steps = 3, string extra = "", string? dataset = null, string? policy = null, string backend = "native")
    {
        policy ??= $$$"""{"native": {"config": {{{Json(Path.Combine(Examples, "models", "quick.json"))}}}, "seed": 1, "tokenizer": {{{Json(Path.Combine(Examples, "models", "tiny-tokenizer.json"))}}}, "backend": "{{{backend}}}"}}""";
        dataset ??= Path.Combine(Examples, "data", "arithmetic.jsonl");
        var text = $$"""
            {"name": "{{name}}", "policy": {{policy}},
             "dataset": {"path": {{Json(dataset)}}, "eval_fraction": 0.2},
             "rewards": {{rewards}},
             "algorithm": {"group_size": 4, "prompts_per_step": 2, "learning_rate": 1e-3, "beta": 0, "loss_aggregation": "dapo",
                           "max_new_tokens": 16, "steps": {{steps}}},
             "rejection_sampling": ["no_code_in_reasoning"],
             "evaluation": {"every_steps": 2},
             "checkpoint_every_steps": 2, "seed": 7{{extra}}}
            """;
        var path = Path.Combine(_dir, name + ".json");
        File.WriteAllText(path, text);
        return path;
    }

    private static string Json(string s) => JsonSerializer.Serialize(s);

    private static async Task<long> CreateAsync(NpgsqlDataSource dataSource, string specPath)
    {
        var validation = CampaignSpecValidator.Load(specPath);
        Assert.True(validation.Spec is not null, string.Join("; ", validation.Errors));
        var created = await new CampaignCreator(new CampaignStore(dataSource)).CreateAsync(
            validation.Spec!, await File.ReadAllTextAsync(specPath, Ct), Path.GetDirectoryName(specPath)!, new PolicyRegistry(dataSource), Ct);
        Assert.True(created.Succeeded, created.Error);
        return created.Value.Id;
    }

    private static async Task<CampaignStatus> RunAsync(
        NpgsqlDataSource dataSource, long id, TimeSpan timeout, int rolloutBatch = 1, Func<SiloServices, Task>? beforeStop = null)
    {
        var settings = new SiloSettings { Engines = TestEngines.All, CampaignId = id, Name = $"test-{id}-{Guid.NewGuid():N}", RolloutBatch = rolloutBatch, Private = true };
        using var silo = await SiloHost.StartAsync(dataSource, settings, 1, null, Ct);
        var repository = new CampaignStore(dataSource);
        var deadline = TimeProvider.System.GetUtcNow() + timeout;
        while (true)
        {
            var status = await repository.GetStatusAsync(id, Ct);
            if (status!.State is CampaignState.Completed or CampaignState.Failed or CampaignState.Cancelled)
            {
                if (beforeStop is not null)
                {
                    await beforeStop(silo.Services.GetRequiredService<SiloServices>());
                }

                await silo.StopAsync(Ct);
                return status;
            }

            Assert.True(TimeProvider.System.GetUtcNow() < deadline, $"campaign {id} still {status.State} at step {status.StepsCompleted}");
            await Task.Delay(100, Ct);
        }
    }

    [Theory]
    [InlineData("native")]
    [InlineData("torch")]
    public async Task Run_TrainCampaign_CompletesWithEveryStepOnceAndUpdatesThePolicy(string backend)
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var spec = WriteSpec("train-" + backend, """{"rules": [{"rule": "accuracy"}, {"rule": "cosine"}]}""", steps: 3, backend: backend);
        var id = await CreateAsync(db.DataSource, spec);
        int loads = 0;
        var released = false;
        var status = await RunAsync(db.DataSource, id, TimeSpan.FromMinutes(3), beforeStop: async services =>
        {
            // The silo held the campaign's policy to sample with; once the campaign is over it lets go of it.
            loads = services.Policies.Loads;
            var deadline = TimeProvider.System.GetUtcNow() + TimeSpan.FromSeconds(60);
            while (!(released = !services.Policies.HeldCampaigns.Contains(id)) && TimeProvider.System.GetUtcNow() < deadline)
            {
                await Task.Delay(100, Ct);
            }
        });

        Assert.Equal(CampaignState.Completed, status.State);
        Assert.True(loads > 0, "the silo never loaded the campaign's policy");
        Assert.True(released, "the completed campaign's policy is still held after 60 s");
        Assert.Equal(3, status.StepsCompleted);
        Assert.Equal(3, status.PolicyVersion);
        Assert.Equal(3L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM step_metrics WHERE campaign_id = $1", Ct, id));
        Assert.Equal(4L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM policy_versions WHERE campaign_id = $1", Ct, id));
        Assert.Equal(3L * 2 * 4, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM completions WHERE campaign_id = $1", Ct, id));
        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM completions WHERE campaign_id = $1 AND reward IS NULL", Ct, id));
        Assert.Equal(2L * 3 * 2 * 4, await db.DataSource.ScalarAsync<long>(
            "SELECT count(*) FROM reward_scores s JOIN completions c ON c.id = s.completion_id WHERE c.campaign_id = $1", Ct, id));
        Assert.Equal(0L, await db.DataSource.ScalarAsync<long>(
            "SELECT count(*) FROM work_items WHERE campaign_id = $1 AND state <> 'completed'", Ct, id));
        Assert.Equal(status.Counters["samples_accepted"],
            await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM sft_samples WHERE campaign_id = $1", Ct, id));
        Assert.Equal(24L, status.Counters["samples_generated"]);

        // Weights changed: the cosine reward differs within groups, so at least one update ran.
        var distinct = await db.DataSource.ScalarAsync<long>("SELECT count(DISTINCT sha256) FROM policy_versions WHERE campaign_id = $1", Ct, id);
        Assert.True(distinct > 1, "every policy version has the same weights");
        var metrics = await db.DataSource.ScalarAsync<string>("SELECT metrics::text FROM step_metrics WHERE campaign_id = $1 AND step = 0", Ct, id);
        using var m = JsonDocument.Parse(metrics);
        Assert.Equal(8, m.RootElement.GetProperty("samples").GetInt32());
        Assert.True(m.RootElement.TryGetProperty("rewards", out var rules) && rules.TryGetProperty("cosine", out _));

        // Evaluations: before training, after step 2 (index 1) and at the end (index 2).
        Assert.Equal([-1, 1, 2], await ListAsync(db.DataSource, "SELECT step FROM evaluations WHERE campaign_id = $1 ORDER BY step", id));

        // Two learner checkpoints (steps 1 and 2: every 2 steps, and the last).
        Assert.Equal([1, 2], await ListAsync(db.DataSource, "SELECT step FROM learner_checkpoints WHERE campaign_id = $1 ORDER BY step", id));
    }

    [Fact]
    public async Task Run_SameSpecTwice_GivesTheSameFinalWeights()
    {
        await using var a = await EngineDatabase.CreateAsync(Ct);
        await using var b = await EngineDatabase.CreateAsync(Ct);
        var spec = WriteSpec("twice", """{"rules": [{"rule": "cosine"}]}""", steps: 2);
        var idA = await CreateAsync(a.DataSource, spec);
        var idB = await CreateAsync(b.DataSource, spec);
        Assert.Equal(CampaignState.Completed, (await RunAsync(a.DataSource, idA, TimeSpan.FromMinutes(3))).State);
        Assert.Equal(CampaignState.Completed, (await RunAsync(b.DataSource, idB, TimeSpan.FromMinutes(3))).State);
        const string Final = "SELECT sha256 FROM policy_versions WHERE campaign_id = $1 AND version = 2";
        Assert.Equal(await a.DataSource.ScalarAsync<string>(Final, Ct, idA), await b.DataSource.ScalarAsync<string>(Final, Ct, idB));
    }

    [Fact]
    public async Task Run_ParquetCopyOfTheDataset_StoresTheSamePromptsAndCompletionsAsTheJsonl()
    {
        await using var a = await EngineDatabase.CreateAsync(Ct);
        await using var b = await EngineDatabase.CreateAsync(Ct);
        var jsonl = Path.Combine(Examples, "data", "arithmetic.jsonl");
        var rows = File.ReadLines(jsonl).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var parquet = Path.Combine(_dir, "arithmetic.parquet");
        await WriteParquetAsync(parquet, ("prompt", rows.Select(r => (object?)r.GetProperty("prompt").GetString()).ToArray()), ("answer", rows.Select(r => (object?)r.GetProperty("answer").GetString()).ToArray()));
        var idA = await CreateAsync(a.DataSource, WriteSpec("from-jsonl", """{"rules": [{"rule": "accuracy"}]}""", steps: 2, dataset: jsonl));
        var idB = await CreateAsync(b.DataSource, WriteSpec("from-parquet", """{"rules": [{"rule": "accuracy"}]}""", steps: 2, dataset: parquet));

        const string Prompts = "SELECT string_agg(split || '/' || idx || ':' || prompt || ':' || coalesce(answer, '-') || ':' || fields::text, chr(30) ORDER BY split, idx) FROM campaign_prompts WHERE campaign_id = $1";
        var promptsA = await a.DataSource.ScalarAsync<string>(Prompts, Ct, idA);
        Assert.Contains("What is 9 + 37?:46:{}", promptsA, StringComparison.Ordinal);
        Assert.Equal(promptsA, await b.DataSource.ScalarAsync<string>(Prompts, Ct, idB));

        Assert.Equal(CampaignState.Completed, (await RunAsync(a.DataSource, idA, TimeSpan.FromMinutes(3))).State);
        Assert.Equal(CampaignState.Completed, (await RunAsync(b.DataSource, idB, TimeSpan.FromMinutes(3))).State);
        const string Texts = "SELECT string_agg(c.step || '/' || c.sample_index || ':' || c.text, chr(30) ORDER BY c.step, c.item_id, c.sample_index) FROM completions c WHERE c.campaign_id = $1";
        Assert.Equal(await a.DataSource.ScalarAsync<string>(Texts, Ct, idA), await b.DataSource.ScalarAsync<string>(Texts, Ct, idB));
        const string Final = "SELECT sha256 FROM policy_versions WHERE campaign_id = $1 AND version = 2";
        Assert.Equal(await a.DataSource.ScalarAsync<string>(Final, Ct, idA), await b.DataSource.ScalarAsync<string>(Final, Ct, idB));
    }

    [Fact]
    public async Task Create_ParquetRowWithANullPrompt_CountedAndNamedByRowGroupRowAndColumn()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var parquet = Path.Combine(_dir, "typed.parquet");
        await WriteParquetAsync(parquet, ("prompt", new object?[] { "What is 1 + 1?", null, "What is 2 + 2?" }), ("answer", new object?[] { "2", "3", "4" }));
        var spec = CampaignSpecValidator.Load(WriteSpec("typed", """{"rules": [{"rule": "accuracy"}]}""", dataset: parquet)).Spec!;

        var created = await new CampaignCreator(new CampaignStore(db.DataSource)).CreateAsync(spec, "{}", _dir, new PolicyRegistry(db.DataSource), Ct);

        Assert.True(created.Succeeded, created.Error);
        Assert.Equal(1, created.Value.MalformedRows);
        Assert.Equal("typed.parquet row group 0, row 1: column \"prompt\" is null; expected a non-empty string; skipped", Assert.Single(created.Value.Warnings));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Create_GarbageOrTruncatedParquet_OneLineNamingTheFile(int damage)
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var parquet = Path.Combine(_dir, "bad.parquet");
        await WriteParquetAsync(parquet, ("prompt", new object?[] { "What is 1 + 1?", "What is 2 + 2?" }), ("answer", new object?[] { "2", "4" }));
        var original = await File.ReadAllBytesAsync(parquet, Ct);

        // Garbage between intact magics is drawn from 100 seeds: Parquet.Net's footer decoder, given one such file, once
        // skipped a lying list count for 14 minutes.
        foreach (var seed in damage == 2 ? Enumerable.Range(0, 100) : [0])
        {
            var bytes = original.ToArray();
            switch (damage)
            {
                case 0:
                    bytes = bytes[..(bytes.Length / 2)]; // truncated
                    break;
                case 1:
                    BitConverter.GetBytes(int.MaxValue - 7).CopyTo(bytes, bytes.Length - 8); // a footer length that lies
                    break;
                case 2:
                    new Random(seed).NextBytes(bytes.AsSpan(4, bytes.Length - 12)); // garbage between intact magics
                    break;
                default:
                    // A footer whose first field is a list claiming 2^31 - 1 one-byte elements.
                    var footer = new byte[] { 0x19, 0xF3, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x01, 0x02, 0x00 };
                    bytes = [.. "PAR1"u8, .. footer, .. BitConverter.GetBytes(footer.Length), .. "PAR1"u8];
                    break;
            }

            await File.WriteAllBytesAsync(parquet, bytes, Ct);
            var spec = CampaignSpecValidator.Load(WriteSpec("bad", """{"rules": [{"rule": "accuracy"}]}""", dataset: parquet)).Spec!;

            var created = await new CampaignCreator(new CampaignStore(db.DataSource)).CreateAsync(spec, "{}", _dir, new PolicyRegistry(db.DataSource), Ct);

            Assert.False(created.Succeeded);
            Assert.StartsWith($"dataset.path = {parquet}: bad.parquet", created.Error, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', created.Error!);
            if (damage == 3)
            {
                Assert.EndsWith("not a readable Parquet file (footer: list of 2147483647 elements at byte 7 runs past the footer's end)", created.Error, StringComparison.Ordinal);
            }
        }
    }

    private static async Task WriteParquetAsync(string path, params (string Name, object?[] Values)[] columns)
    {
        var fields = columns.Select(c => new Parquet.Schema.DataField<string>(c.Name)).ToArray();
        await using var file = File.Create(path);
        await using var writer = await Parquet.ParquetWriter.CreateAsync(new Parquet.Schema.ParquetSchema(fields), file, cancellationToken: Ct);
        using var group = writer.CreateRowGroup();
        for (var i = 0; i < columns.Length; i++)
        {
            await group.WriteAsync(fields[i], columns[i].Values.Cast<string?>().ToArray());
        }
    }

    [Fact]
    public async Task Run_BatchedRollouts_StoreTheSameCompletionsAndWeightsAsOneItemAtATime()
    {
        await using var a = await EngineDatabase.CreateAsync(Ct);
        await using var b = await EngineDatabase.CreateAsync(Ct);
        var spec = WriteSpec("batched", """{"rules": [{"rule": "cosine"}]}""", steps: 2);
        var idA = await CreateAsync(a.DataSource, spec);
        var idB = await CreateAsync(b.DataSource, spec);
        Assert.Equal(CampaignState.Completed, (await RunAsync(a.DataSource, idA, TimeSpan.FromMinutes(3))).State);
        Assert.Equal(CampaignState.Completed, (await RunAsync(b.DataSource, idB, TimeSpan.FromMinutes(3), rolloutBatch: 8)).State);

        // b claimed several rollout items at once (one claim time for all of them), a one by one.
        const string Claims = "SELECT count(DISTINCT claimed_at) FROM work_items WHERE campaign_id = $1 AND kind = 'rollout'";
        Assert.Equal(4L, await a.DataSource.ScalarAsync<long>(Claims, Ct, idA));
        Assert.True(await b.DataSource.ScalarAsync<long>(Claims, Ct, idB) < 4, "the batched silo claimed its rollout items one at a time");

        // Each item sampled from its own streams, so the texts, tokens and final weights are the same.
        const string Texts = """
            SELECT string_agg(c.step || '/' || (w.payload->>'slot') || '/' || c.sample_index || ':' || c.text || ':' || array_to_string(c.token_ids, ','), chr(30)
                              ORDER BY c.step, (w.payload->>'slot')::int, c.sample_index)
              FROM completions c JOIN work_items w ON w.id = c.item_id WHERE c.campaign_id = $1
            """;
        var textsA = await a.DataSource.ScalarAsync<string>(Texts, Ct, idA);
        Assert.Equal(2L * 2 * 4, await a.DataSource.ScalarAsync<long>("SELECT count(*) FROM completions WHERE campaign_id = $1", Ct, idA));
        Assert.Equal(textsA, await b.DataSource.ScalarAsync<string>(Texts, Ct, idB));
        const string Final = "SELECT sha256 FROM policy_versions WHERE campaign_id = $1 AND version = 2";
        Assert.Equal(await a.DataSource.ScalarAsync<string>(Final, Ct, idA), await b.DataSource.ScalarAsync<string>(Final, Ct, idB));
    }

    [Fact]
    public async Task Run_AllowedStaleness_RollsOutAheadWithOlderVersionsAndCompletes()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var spec = WriteSpec("async", """{"rules": [{"rule": "cosine"}]}""", steps: 4);
        File.WriteAllText(spec, File.ReadAllText(spec).Replace("\"steps\": 4}", "\"steps\": 4, \"allowed_staleness\": 1}", StringComparison.Ordinal));
        var id = await CreateAsync(db.DataSource, spec);
        var status = await RunAsync(db.DataSource, id, TimeSpan.FromMinutes(3));
        Assert.Equal(CampaignState.Completed, status.State);
        Assert.Equal(4, status.PolicyVersion);

        // Step s rolls out with version max(0, s - 1): the learner corrects with the sampling log-probs.
        Assert.Equal([0, 0, 1, 2], await ListAsync(db.DataSource,
            "SELECT min(policy_version) FROM completions WHERE campaign_id = $1 GROUP BY step ORDER BY step", id));
        var lag = await db.DataSource.ScalarAsync<string>("SELECT metrics->>'policy_lag_mean' FROM step_metrics WHERE campaign_id = $1 AND step = 3", Ct, id);
        Assert.Equal("1", lag);
        Assert.Equal("0", await db.DataSource.ScalarAsync<string>("SELECT metrics->>'stale_samples_dropped' FROM step_metrics WHERE campaign_id = $1 AND step = 3", Ct, id));
        Assert.NotNull(await db.DataSource.ScalarAsync<string>("SELECT metrics->>'off_policy_masked_fraction' FROM step_metrics WHERE campaign_id = $1 AND step = 3", Ct, id));
    }

    [Fact]
    public async Task Run_DynamicSamplingWithoutSignal_CutsExtraRoundsThenSkipsTheUpdate()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var spec = WriteSpec("dynamic", """{"rules": [{"rule": "accuracy"}]}""", steps: 1);
        File.WriteAllText(spec, File.ReadAllText(spec).Replace("\"steps\": 1}", "\"steps\": 1, \"dynamic_sampling\": true}", StringComparison.Ordinal));
        var id = await CreateAsync(db.DataSource, spec);
        var status = await RunAsync(db.DataSource, id, TimeSpan.FromMinutes(3));
        Assert.Equal(CampaignState.Completed, status.State);

        // An untrained model never answers correctly: every group has zero reward variance, so the step asks for
        // 2 more groups in each of 3 extra rounds, then goes ahead without an update (the weights stay version 0's).
        Assert.Equal([0, 1, 2, 3], await ListAsync(db.DataSource,
            "SELECT DISTINCT (payload->>'round')::int FROM work_items WHERE campaign_id = $1 AND kind = 'rollout' ORDER BY 1", id));
        Assert.Equal(8L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_items WHERE campaign_id = $1 AND kind = 'rollout'", Ct, id));
        using var m = JsonDocument.Parse(await db.DataSource.ScalarAsync<string>("SELECT metrics::text FROM step_metrics WHERE campaign_id = $1", Ct, id));
        Assert.Equal(0, m.RootElement.GetProperty("groups").GetInt32());
        Assert.Equal(8, m.RootElement.GetProperty("groups_sampled").GetInt32());
        Assert.Equal(1.0, m.RootElement.GetProperty("zero_std_group_fraction").GetDouble());
        Assert.True(m.RootElement.TryGetProperty("update_skipped", out _));
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>("SELECT count(DISTINCT sha256) FROM policy_versions WHERE campaign_id = $1", Ct, id));
    }

    [Fact]
    public async Task Create_MalformedRows_AreCountedAndNamedAndSkipped()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var data = Path.Combine(_dir, "data.jsonl");
        await File.WriteAllTextAsync(data, string.Join('\n',
            """{"prompt": "What is 1 + 1?", "answer": "2"}""",
            "not json at all",
            """{"prompt": 5, "answer": "2"}""",
            """["an", "array"]""",
            """{"answer": "3"}""",
            """{"prompt": "What is 2 + 2?", "answer": 4}""",
            """{"prompt": "What is 3 + 3?", "answer": {"x": 1}}""",
            """{"prompt": "What is 4 + 4?", "ans""",
            """{"prompt": "What is 5 + 5?", "answer": "10"}""") + "\n", Ct);
        var spec = WriteSpec("malformed", """{"rules": [{"rule": "accuracy"}]}""", dataset: data);
        var validation = CampaignSpecValidator.Load(spec);
        var created = await new CampaignCreator(new CampaignStore(db.DataSource)).CreateAsync(
            validation.Spec!, await File.ReadAllTextAsync(spec, Ct), _dir, new PolicyRegistry(db.DataSource), Ct);
        Assert.True(created.Succeeded, created.Error);
        Assert.Equal(6, created.Value.MalformedRows);
        Assert.Equal(3, created.Value.TrainRows + created.Value.EvalRows);
        Assert.Contains(created.Value.Warnings, w => w.StartsWith("data.jsonl line 2: invalid JSON", StringComparison.Ordinal));
        Assert.Contains("data.jsonl line 3: field \"prompt\" is number; expected a non-empty string; skipped", created.Value.Warnings);
        Assert.Contains("data.jsonl line 7: field \"answer\" is object; expected a string or number; skipped", created.Value.Warnings);
        var status = await new CampaignStore(db.DataSource).GetStatusAsync(created.Value.Id, Ct);
        Assert.Equal(6L, status!.Counters["dataset_malformed_rows"]);
    }

    [Fact]
    public async Task Run_RuleThatFails_IsCountedAndTheCampaignCompletes()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var spec = WriteSpec("failing-rule", $$$"""
            {"rules": [{"rule": "accuracy"}, {"rule": "remote_reward_model", "name": "rm", "options": {"url": "http://127.0.0.1:{{{port}}}/score", "timeout_ms": 1000, "max_retries": 0}}]}
            """, steps: 1);
        var id = await CreateAsync(db.DataSource, spec);
        var status = await RunAsync(db.DataSource, id, TimeSpan.FromMinutes(3));
        Assert.Equal(CampaignState.Completed, status.State);
        Assert.Equal(8L, status.Counters["reward_missing/rm"]);
        Assert.Equal(8L, await db.DataSource.ScalarAsync<long>(
            "SELECT count(*) FROM reward_scores s JOIN completions c ON c.id = s.completion_id WHERE c.campaign_id = $1 AND s.rule = 'rm' AND s.value IS NULL", Ct, id));
    }

    [Fact]
    public async Task Run_EndpointThatReturnsGarbage_IsCountedAndTheCampaignCompletes()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var requests = 0;
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var client = await listener.AcceptTcpClientAsync(stop.Token);
                var stream = client.GetStream();
                var buffer = new byte[65536];
                var read = 0;
                string request;
                do
                {
                    read += await stream.ReadAsync(buffer.AsMemory(read), stop.Token);
                    request = Encoding.UTF8.GetString(buffer, 0, read);
                }
                while (!HasFullBody(request));

                Interlocked.Increment(ref requests);
                var body = "{\"choices\": \"not an array\"}";
                var response = $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}";
                await stream.WriteAsync(Encoding.UTF8.GetBytes(response), stop.Token);
            }
        }, stop.Token);
        var spec = WriteSpec("garbage-endpoint", """{"rules": [{"rule": "accuracy"}]}""", steps: 1,
            extra: ", \"mode\": \"collect\"", policy: $$$"""{"endpoint": {"url": "http://127.0.0.1:{{{port}}}/v1", "model": "m"}}""");
        var id = await CreateAsync(db.DataSource, spec);
        var status = await RunAsync(db.DataSource, id, TimeSpan.FromMinutes(2));
        await stop.CancelAsync();
        Assert.Equal(CampaignState.Completed, status.State);
        Assert.Equal(8L, status.Counters["endpoint_errors"]);
        Assert.Equal(0L, status.Counters["samples_generated"]);
        Assert.True(Volatile.Read(ref requests) >= 2);
        Assert.Equal(1L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM step_metrics WHERE campaign_id = $1", Ct, id));
    }

    [Fact]
    public async Task Run_CompletionsThatCheckThemselves_ReflectionMetricsPerStepAndEvaluation()
    {
        // An endpoint answers each "What is A op B?" with four kinds of completion in turn: a check that passes; a
        // check that fails, "wait" and a repair; a check that fails and is not repaired; no check (right answer).
        await using var db = await EngineDatabase.CreateAsync(Ct);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var client = await listener.AcceptTcpClientAsync(stop.Token);
                var stream = client.GetStream();
                var buffer = new byte[65536];
                var read = 0;
                string request;
                do
                {
                    read += await stream.ReadAsync(buffer.AsMemory(read), stop.Token);
                    request = Encoding.UTF8.GetString(buffer, 0, read);
                }
                while (!HasFullBody(request));

                using var body = JsonDocument.Parse(request[(request.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]);
                var question = System.Text.RegularExpressions.Regex.Match(body.RootElement.GetProperty("prompt").GetString()!, @"What is (\d+) ([+-]) (\d+)\?");
                long a = long.Parse(question.Groups[1].Value, CultureInfo.InvariantCulture), b = long.Parse(question.Groups[3].Value, CultureInfo.InvariantCulture);
                var op = question.Groups[2].Value;
                var sum = op == "+" ? a + b : a - b;
                string Check(long s) => op == "+" ? $"check: {s}-{b}={s - b} {(s - b == a ? "yes" : "no")}" : $"check: {s}+{b}={s + b} {(s + b == a ? "yes" : "no")}";
                string[] kinds =
                [
                    $"<think>\n{a}{op}{b}={sum}\n{Check(sum)}\n</think>\n\\boxed{{{sum}}}",
                    $"<think>\n{a}{op}{b}={sum + 1}\n{Check(sum + 1)}\nwait\n{a}{op}{b}={sum}\n{Check(sum)}\n</think>\n\\boxed{{{sum}}}",
                    $"<think>\n{a}{op}{b}={sum + 1}\n{Check(sum + 1)}\n</think>\n\\boxed{{{sum + 1}}}",
                    $"<think>\n</think>\n\\boxed{{{sum}}}",
                ];
                var n = body.RootElement.GetProperty("n").GetInt32();
                var choices = new System.Text.Json.Nodes.JsonArray();
                for (var j = 0; j < n; j++)
                {
                    choices.Add(new System.Text.Json.Nodes.JsonObject { ["index"] = j, ["text"] = kinds[j % 4], ["finish_reason"] = "stop" });
                }

                var json = new System.Text.Json.Nodes.JsonObject { ["choices"] = choices }.ToJsonString();
                var response = $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\nConnection: close\r\n\r\n{json}";
                await stream.WriteAsync(Encoding.UTF8.GetBytes(response), stop.Token);
            }
        }, stop.Token);
        var spec = WriteSpec("reflection", """{"rules": [{"rule": "accuracy"}]}""", steps: 1,
            extra: ", \"mode\": \"collect\"", policy: $$$"""{"endpoint": {"url": "http://127.0.0.1:{{{port}}}/v1", "model": "m"}}""");
        var id = await CreateAsync(db.DataSource, spec);
        var status = await RunAsync(db.DataSource, id, TimeSpan.FromMinutes(2));
        await stop.CancelAsync();
        Assert.Equal(CampaignState.Completed, status.State);

        // Step 0: 2 prompts x 4 samples, one of each kind per prompt.
        using (var step = JsonDocument.Parse(await db.DataSource.ScalarAsync<string>("SELECT metrics::text FROM step_metrics WHERE campaign_id = $1 AND step = 0", Ct, id)))
        {
            var m = step.RootElement;
            Assert.Equal(0.75, m.GetProperty("verify_fraction").GetDouble(), 9);
            Assert.Equal(0.5, m.GetProperty("detect_fraction").GetDouble(), 9);
            Assert.Equal(0.25, m.GetProperty("repair_fraction").GetDouble(), 9);
            Assert.Equal(2 / 3.0, m.GetProperty("accuracy_when_verifying").GetDouble(), 9);
            Assert.Equal(1.0, m.GetProperty("accuracy_without_verifying").GetDouble(), 9);
            Assert.Equal(0.5, m.GetProperty("accuracy_first_attempt").GetDouble(), 9);
            Assert.Equal(0.75, m.GetProperty("accuracy_final").GetDouble(), 9);
        }

        // Each completion's bits, stored by the reward worker with its reward: pass 1, fail + repair 7, fail 3, no check 0.
        Assert.Equal(new short[] { 1, 7, 3, 0, 1, 7, 3, 0 }, await db.DataSource.ColumnAsync<short>(
            "SELECT reflection FROM completions WHERE campaign_id = $1 AND step = 0 ORDER BY item_id, sample_index", Ct, id));

        // Evaluations sample one greedy completion per prompt: the first kind, a check that passes.
        var evaluations = await db.DataSource.ColumnAsync<string>("SELECT metrics::text FROM evaluations WHERE campaign_id = $1", Ct, id);
        Assert.NotEmpty(evaluations);
        foreach (var text in evaluations)
        {
            using var e = JsonDocument.Parse(text);
            Assert.Equal(1.0, e.RootElement.GetProperty("verify_fraction").GetDouble(), 9);
            Assert.Equal(0.0, e.RootElement.GetProperty("detect_fraction").GetDouble(), 9);
            Assert.Equal(JsonValueKind.Null, e.RootElement.GetProperty("accuracy_without_verifying").ValueKind);
            Assert.Equal(1.0, e.RootElement.GetProperty("accuracy_first_attempt").GetDouble(), 9);
        }
    }

    [Fact]
    public async Task Lifecycle_PauseResumeCancel_FollowTheAllowedTransitions()
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        var id = await CreateAsync(db.DataSource, WriteSpec("lifecycle", """{"rules": [{"rule": "accuracy"}]}"""));
        await using var services = new SiloServices(db.DataSource, TestEngines.All);
        var definition = await services.Catalog.GetAsync(id, Ct);
        var campaign = new CampaignSteps(definition, services.Campaigns, services.Queue);
        Assert.Equal(CampaignState.Running, await campaign.StartAsync(Ct));
        Assert.Equal(CampaignState.Paused, await campaign.PauseAsync(Ct));
        Assert.Equal(CampaignState.Running, await campaign.ResumeAsync(Ct));
        Assert.Equal(CampaignState.Running, await campaign.ResumeAsync(Ct));
        var work = await campaign.CutStepAsync(0, 0, 2, 0, Ct);
        var again = await campaign.CutStepAsync(0, 0, 2, 0, Ct);
        Assert.Equal(work, again);
        Assert.Equal(2L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_items WHERE campaign_id = $1 AND state = 'pending'", Ct, id));
        Assert.Equal(CampaignState.Cancelled, await campaign.CancelAsync(Ct));
        Assert.Equal(2L, await db.DataSource.ScalarAsync<long>("SELECT count(*) FROM work_items WHERE campaign_id = $1 AND state = 'cancelled'", Ct, id));
        Assert.Equal(CampaignState.Cancelled, await campaign.ResumeAsync(Ct));
    }

    private static bool HasFullBody(string request)
    {
        var end = request.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0)
        {
            return false;
        }

        var header = request[..end];
        var line = header.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        var length = line is null ? 0 : int.Parse(line["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        return Encoding.UTF8.GetByteCount(request[(end + 4)..]) >= length;
    }

    private static async Task<List<int>> ListAsync(NpgsqlDataSource dataSource, string sql, long id)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = id });
        var list = new List<int>();
        await using var reader = await command.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            list.Add(reader.GetInt32(0));
        }

        return list;
    }
}
