using System.Text.Json;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Campaigns;

/// <summary>The <c>campaign</c> commands as a user runs them: child processes on a real PostgreSQL database.</summary>
public sealed class CampaignCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("campaign-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RunQuickNative_TheReadmesFirstCampaign_ImprovesHeldOutAccuracy()
    {
        // Issue 19: the README's example must show a policy improving (it used a random model that earned 0 on every
        // completion, so every update was skipped). It starts from the quick demo's SFT model (examples/models/quick-sft).
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var spec = Path.Combine(RepositoryPaths.Root, "examples", "quick-native.json");
        var run = await CliProcess.RunAsync(["campaign", "run", spec, "--db", db.ConnectionString], null, Ct);
        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        Assert.DoesNotContain("update skipped", run.StandardOutput, StringComparison.Ordinal);

        var status = await CliProcess.RunAsync(["campaign", "status", "1", "--json", "--db", db.ConnectionString], null, Ct);
        using var json = JsonDocument.Parse(status.StandardOutput);
        var accuracy = json.RootElement.GetProperty("evaluations").EnumerateArray()
            .OrderBy(e => e.GetProperty("step").GetInt32())
            .Select(e => e.GetProperty("accuracy").GetDouble())
            .ToArray();
        Assert.True(accuracy.Length >= 2, status.StandardOutput);
        Assert.True(accuracy[^1] >= accuracy[0] + 0.3, $"held-out accuracy by evaluation: {string.Join(", ", accuracy)}");
    }

    [Fact]
    public async Task RunRandomNative_CompletesAndExportsItsSamples()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var spec = Path.Combine(RepositoryPaths.Root, "examples", "random-native.json");
        var run = await CliProcess.RunAsync(["campaign", "run", spec, "--db", db.ConnectionString], null, Ct);
        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        Assert.Contains("campaign 1 'random-native': 40 train and 10 eval prompts (0 malformed rows skipped), 4 steps", run.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("step 4/4", run.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("campaign 1 completed", run.StandardOutput, StringComparison.Ordinal);

        var output = Path.Combine(_dir, "samples.jsonl");
        var export = await CliProcess.RunAsync(["export", "--campaign", "1", "--out", output, "--db", db.ConnectionString], null, Ct);
        Assert.Equal(0, export.ExitCode);
        var lines = await File.ReadAllLinesAsync(output, Ct);
        Assert.Equal(32, lines.Length);
        Assert.All(lines, l => Assert.Contains("\"messages\"", l, StringComparison.Ordinal));

        var status = await CliProcess.RunAsync(["campaign", "status", "1", "--json", "--db", db.ConnectionString], null, Ct);
        Assert.Equal(0, status.ExitCode);
        Assert.Contains("\"state\":\"completed\"", status.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("\"samples_accepted\":32", status.StandardOutput, StringComparison.Ordinal);
        var list = await CliProcess.RunAsync(["campaign", "list", "--db", db.ConnectionString], null, Ct);
        Assert.Contains("random-native", list.StandardOutput, StringComparison.Ordinal);

        var pause = await CliProcess.RunAsync(["campaign", "pause", "1", "--db", db.ConnectionString], null, Ct);
        Assert.Equal(1, pause.ExitCode);
        Assert.Equal("deepseekrl: error: campaign 1 is completed; pause applies to created or running campaigns", pause.StandardError.Trim());
        var missing = await CliProcess.RunAsync(["campaign", "status", "99", "--db", db.ConnectionString], null, Ct);
        Assert.Equal("deepseekrl: error: campaign 99 does not exist (see ./deepseekrl campaign list)", missing.StandardError.Trim());
    }

    [Fact]
    public async Task Run_UpdateSkipped_PrintsSkippedAndWhyInsteadOfLossNaN()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        // A random model earns no accuracy reward: every group has the same reward (0), so no step has an update.
        var examples = Path.Combine(RepositoryPaths.Root, "examples");
        var spec = Path.Combine(_dir, "skipped.json");
        await File.WriteAllTextAsync(spec, $$"""
            {
              "name": "skipped",
              "policy": { "native": { "config": "{{examples}}/models/quick.json", "seed": 1, "tokenizer": "{{examples}}/models/tiny-tokenizer.json" } },
              "dataset": { "path": "{{examples}}/data/arithmetic.jsonl", "prompt_field": "prompt", "answer_field": "answer", "template": "r1_zero", "eval_fraction": 0.2 },
              "rewards": { "rules": [ { "rule": "accuracy", "weight": 1.0 } ] },
              "algorithm": { "variant": "grpo", "group_size": 2, "prompts_per_step": 2, "max_new_tokens": 8, "steps": 2 },
              "seed": 1
            }
            """, Ct);

        var run = await CliProcess.RunAsync(["campaign", "run", spec, "--db", db.ConnectionString], null, Ct);

        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        var steps = CliProcess.Lines(run.StandardOutput).Where(l => l.Contains(" step ", StringComparison.Ordinal) && l.Contains("reward", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, steps.Count);
        Assert.All(steps, l => Assert.Contains("update skipped (no group with a reward signal)", l, StringComparison.Ordinal));
        Assert.DoesNotContain("NaN", run.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_InvalidSpec_ReportsEveryErrorAndStoresNothing()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var spec = Path.Combine(_dir, "bad.json");
        await File.WriteAllTextAsync(spec, """
            {"name": "bad name", "policy": {"native": {"config": "nope.json", "tokenizer": "nope.json"}}, "dataset": {"path": "nope.jsonl"},
             "rewards": {"rules": [{"rule": "accuracy"}]}, "algorithm": {"group_size": 1}}
            """, Ct);
        var run = await CliProcess.RunAsync(["campaign", "run", spec, "--db", db.ConnectionString], null, Ct);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("bad.json: name = \"bad name\": expected a name of 1..64 letters", run.StandardError, StringComparison.Ordinal);
        Assert.Contains("algorithm.group_size = 1:", run.StandardError, StringComparison.Ordinal);
        Assert.Contains("dataset.path = \"nope.jsonl\": expected an existing file", run.StandardError, StringComparison.Ordinal);
        var list = await CliProcess.RunAsync(["campaign", "list", "--json", "--db", db.ConnectionString], null, Ct);
        Assert.Equal(string.Empty, list.StandardOutput.Trim());
    }

    [Fact]
    public async Task SiloApiRole_ServesCampaignsAndRejectsBadIds()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var spec = Path.Combine(RepositoryPaths.Root, "examples", "random-native.json");
        var created = await CliProcess.RunAsync(["campaign", "run", spec, "--detach", "--db", db.ConnectionString], null, Ct);
        Assert.Equal(0, created.ExitCode);
        var finished = await CliProcess.RunAsync(["campaign", "run", spec, "--db", db.ConnectionString], null, Ct);
        Assert.Equal(0, finished.ExitCode);
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        using var silo = CliChild.Start("api", ["silo", "--roles", "api", "--api-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--db", db.ConnectionString, "--api-token", Token]);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        HttpResponseMessage? list = null;
        for (var i = 0; i < 100 && list is null; i++)
        {
            try
            {
                list = await http.GetAsync("/api/campaigns", Ct);
            }
            catch (HttpRequestException)
            {
                Assert.False(silo.HasExited, silo.Output);
                await Task.Delay(200, Ct);
            }
        }

        Assert.NotNull(list);
        Assert.Equal(System.Net.HttpStatusCode.OK, list.StatusCode);
        Assert.Contains("\"name\":\"random-native\"", await list.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        var one = await http.GetAsync("/api/campaigns/1", Ct);
        Assert.Contains("\"name\":\"random-native\"", await one.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        var bad = await http.GetAsync("/api/campaigns/abc", Ct);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("{\"error\":\"campaign id 'abc': expected a positive integer\"}", await bad.Content.ReadAsStringAsync(Ct));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync("/api/campaigns/99/steps", Ct)).StatusCode);

        // Campaign 2 ran: steps, samples (paged, filtered), policies, export, nodes, OpenAPI.
        Assert.Equal(4, System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/campaigns/2/steps", Ct)).RootElement.GetArrayLength());
        var page = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/campaigns/2/samples?limit=10", Ct)).RootElement;
        Assert.Equal(10, page.GetProperty("items").GetArrayLength());
        var next = page.GetProperty("next_after_id").GetInt64();
        var page2 = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"/api/campaigns/2/samples?limit=30&after_id={next}", Ct)).RootElement;
        Assert.Equal(22, page2.GetProperty("items").GetArrayLength());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, page2.GetProperty("next_after_id").ValueKind);
        var first = page.GetProperty("items")[0];
        Assert.True(first.GetProperty("accepted").GetBoolean());
        Assert.Equal(0.0, first.GetProperty("scores").GetProperty("accuracy").GetDouble());
        // Scored by the reward worker: its self-verification bits are stored (0..7), never left null.
        Assert.All(page.GetProperty("items").EnumerateArray(), i => Assert.InRange(i.GetProperty("reflection").GetInt32(), 0, 7));
        var step3 = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/campaigns/2/samples?step=3&rule=accuracy&max=0&accepted=true", Ct)).RootElement;
        Assert.Equal(8, step3.GetProperty("items").GetArrayLength());
        Assert.All(step3.GetProperty("items").EnumerateArray(), i => Assert.Equal(3, i.GetProperty("step").GetInt32()));
        Assert.Empty(System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/campaigns/2/samples?rule=accuracy&min=1", Ct)).RootElement.GetProperty("items").EnumerateArray());
        Assert.Empty(System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/campaigns/2/samples?accepted=false", Ct)).RootElement.GetProperty("items").EnumerateArray());
        foreach (var (query, error) in new[]
        {
            ("limit=0", "limit = '0': expected an integer in 1..500"),
            ("step=-1", "step = '-1': expected a non-negative integer"),
            ("min=1", "min/max: need rule=NAME (or rule=reward for the total)"),
            ("accepted=maybe", "accepted = 'maybe': expected true or false"),
            ("rule=accuracy&min=NaN", "min = 'NaN': expected a finite number"),
            ("rule=accuracy&min=2&max=1", "min = 2 is greater than max = 1: expected min <= max"),
            ("sort=id", "unknown parameter 'sort'; expected limit, after_id, step, rule, min, max, accepted, q, reflection"),
            ("reflection=fixed", "reflection = 'fixed': expected verify, detect or repair"),
        })
        {
            var response = await http.GetAsync($"/api/campaigns/2/samples?{query}", Ct);
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal(error, System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("error").GetString());
        }

        Assert.Equal(5, System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/campaigns/2/policies", Ct)).RootElement.GetArrayLength());
        var export = await http.GetStringAsync("/api/campaigns/2/export", Ct);
        Assert.Equal(32, export.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("\"roles\":[\"api\"]", await http.GetStringAsync("/api/nodes", Ct), StringComparison.Ordinal);
        Assert.Contains("\"/api/campaigns/{id}/samples\"", await http.GetStringAsync("/openapi.json", Ct), StringComparison.Ordinal);

        // CORS closed: a cross-origin request (and its pre-flight) gets no Access-Control-* header, so no other origin can read or steer.
        using (var cross = new HttpRequestMessage(HttpMethod.Get, "/api/campaigns"))
        {
            cross.Headers.Add("Origin", "http://evil.example");
            var response = await http.SendAsync(cross, Ct);
            Assert.DoesNotContain(response.Headers, h => h.Key.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
        }

        using (var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/campaigns/1/pause"))
        {
            preflight.Headers.Add("Origin", "http://evil.example");
            preflight.Headers.Add("Access-Control-Request-Method", "POST");
            preflight.Headers.Add("Access-Control-Request-Headers", "authorization");
            var response = await http.SendAsync(preflight, Ct);
            Assert.DoesNotContain(response.Headers, h => h.Key.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
            Assert.NotEqual(System.Net.HttpStatusCode.OK, response.StatusCode);
        }

        // Controls: refused without the token (and with a wrong one), applied with it.
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await http.PostAsync("/api/campaigns/1/pause", null, Ct)).StatusCode);
        using (var wrong = new HttpRequestMessage(HttpMethod.Post, "/api/campaigns/1/pause"))
        {
            wrong.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "not-the-token-at-all");
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await http.SendAsync(wrong, Ct)).StatusCode);
        }

        Assert.Equal("created", await StateAsync(http, 1));
        using (var pause = new HttpRequestMessage(HttpMethod.Post, "/api/campaigns/1/pause"))
        {
            pause.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
            var response = await http.SendAsync(pause, Ct);
            Assert.Equal("{\"state\":\"paused\"}", await response.Content.ReadAsStringAsync(Ct));
        }

        using (var pauseDone = new HttpRequestMessage(HttpMethod.Post, "/api/campaigns/2/pause"))
        {
            pauseDone.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
            Assert.Equal(System.Net.HttpStatusCode.Conflict, (await http.SendAsync(pauseDone, Ct)).StatusCode);
        }

        Assert.Equal("paused", await StateAsync(http, 1));
    }

    private const string Token = "test-token-0123456789abcdef";

    private static async Task<string> StateAsync(HttpClient http, int id) =>
        System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"/api/campaigns/{id}", TestContext.Current.CancellationToken)).RootElement.GetProperty("state").GetString()!;

    [Fact]
    public async Task Silo_UnknownRole_IsAOneLineError()
    {
        var run = await CliProcess.RunAsync(["silo", "--roles", "rollout,gpu"], null, Ct);
        Assert.Equal(1, run.ExitCode);
        Assert.Equal("deepseekrl: error: --roles: unknown role 'gpu'; expected a comma-separated list of rollout, reward, learner, api", run.StandardError.Trim());
    }
}
