using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.BadInput;

/// <summary>
/// Issue 19, D1 and D2, through the real CLI: a lone surrogate in any JSON string decodes to U+FFFD (one rule for every
/// command), and a dataset row holding U+0000, which PostgreSQL text cannot store, is a malformed row.
/// </summary>
public sealed class UntrustedJsonTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepseekrl-badjson-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Models => Path.Combine(RepositoryPaths.Root, "examples", "models");

    private string P(string name) => Path.Combine(_dir, name);

    private static void AssertNoStackTrace(CliResult run)
    {
        Assert.DoesNotContain("   at ", run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", run.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenizerEncode_D1LoneSurrogates_EncodeAsTheReplacementCharacter()
    {
        // Escaped lone high, lone low, reversed pair, high before a non-low, at the end; then the same texts with U+FFFD.
        await File.WriteAllLinesAsync(P("in.jsonl"),
        [
            """{"text":"lone \ud800"}""", """{"text":"\udc00 low"}""", """{"text":"\udc00\ud800"}""", """{"text":"\ud800\u0041"}""", """{"text":"ok \ud83d\ude00"}""",
            """{"text":"lone \ufffd"}""", """{"text":"\ufffd low"}""", """{"text":"\ufffd\ufffd"}""", """{"text":"\ufffdA"}""", """{"text":"ok 😀"}""",
        ], Ct);

        var run = await CliProcess.RunAsync(["tokenizer", "encode", "--tokenizer", Path.Combine(Models, "tiny-tokenizer.json"), "--input", P("in.jsonl"), "--out", P("out.jsonl")], null, Ct);

        Assert.True(run.ExitCode == 0, run.StandardError);
        var ids = (await File.ReadAllLinesAsync(P("out.jsonl"), Ct)).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("ids").ToString()).ToList();
        Assert.Equal(10, ids.Count);
        Assert.Equal(ids[5..], ids[..5]);
    }

    [Fact]
    public async Task RewardsScore_D1LoneSurrogate_ScoresTheRowWithU_FFFD()
    {
        await File.WriteAllTextAsync(P("rules.json"), """{"rules": [{"rule": "accuracy", "weight": 1.0}]}""", Ct);
        await File.WriteAllLinesAsync(P("in.jsonl"),
        [
            """{"prompt": "What is 2+3? \ud800", "completion": "\\boxed{5} \udc00", "answer": "5", "tag\ud800": "x"}""",
        ], Ct);

        var run = await CliProcess.RunAsync(["rewards", "score", "--rules", P("rules.json"), "--input", P("in.jsonl"), "--out", P("out.jsonl")], null, Ct);

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.Contains("scored 1 completions", run.StandardError, StringComparison.Ordinal);
        var row = JsonDocument.Parse(await File.ReadAllTextAsync(P("out.jsonl"), Ct)).RootElement;
        Assert.Equal(1.0, row.GetProperty("scores").GetProperty("accuracy").GetDouble());
        Assert.Equal("\\boxed{5} \uFFFD", row.GetProperty("completion").GetString());
        Assert.Equal("x", row.GetProperty("tag\uFFFD").GetString());
    }

    [Fact]
    public async Task TrainSft_D1LoneSurrogate_TrainsOnTheRow()
    {
        var rows = Enumerable.Range(1, 3).Select(i => $$"""{"messages": [{"role": "user", "content": "What is {{i}} + {{i}}?"}, {"role": "assistant", "content": "It is {{i + i}}."}]}""").ToList();
        rows.Add("""{"messages": [{"role": "user", "content": "lone \ud800"}, {"role": "assistant", "content": "reply \udc00"}]}""");
        await File.WriteAllLinesAsync(P("data.jsonl"), rows, Ct);
        var init = await CliProcess.RunAsync(["model", "init", "--config", Path.Combine(Models, "quick.json"), "--seed", "1", "--out", P("base")], null, Ct);
        Assert.True(init.ExitCode == 0, init.StandardError);

        var train = await CliProcess.RunAsync(["model", "train-sft", "--model", P("base"), "--tokenizer", Path.Combine(Models, "tiny-tokenizer.json"),
            "--data", P("data.jsonl"), "--out", P("sft"), "--epochs", "1", "--batch-size", "4", "--max-steps", "1"], null, Ct);

        Assert.True(train.ExitCode == 0, train.StandardError);
        AssertNoStackTrace(train);
        Assert.DoesNotContain("skipped", train.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CampaignRun_D1LoneSurrogateInDatasetRow_StoresU_FFFDAndCompletes()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var spec = await WriteCampaignAsync("lone", ["""{"prompt": "What is 1 + 1? \ud800", "answer": "2", "note\udc00": "\udc00"}"""]);

        var run = await CliProcess.RunAsync(["campaign", "run", spec, "--db", db.ConnectionString], null, Ct);

        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        Assert.Contains("(0 malformed rows skipped)", run.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("campaign 1 completed", run.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM campaign_prompts WHERE prompt = 'What is 1 + 1? ' || chr(65533) AND fields ->> ('note' || chr(65533)) = chr(65533)"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM campaigns WHERE spec ->> 'name' = 'lone'"));
    }

    [Fact]
    public async Task CampaignRun_D1LoneSurrogateInSpecStrings_FailsWithOneLineErrors()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var spec = await WriteCampaignAsync("lone\\ud800", [], template: "r1_zero\\udc00");

        var run = await CliProcess.RunAsync(["campaign", "run", spec, "--db", db.ConnectionString], null, Ct);

        Assert.Equal(1, run.ExitCode);
        AssertNoStackTrace(run);
        Assert.Contains("deepseekrl: error: spec.json: name = \"lone\\ufffd\": expected a name of 1..64 letters", run.StandardError, StringComparison.Ordinal);
        Assert.Contains("dataset.template = \"r1_zero\\ufffd\"", run.StandardError, StringComparison.Ordinal);
        var list = await CliProcess.RunAsync(["campaign", "list", "--json", "--db", db.ConnectionString], null, Ct);
        Assert.Equal(string.Empty, list.StandardOutput.Trim());
    }

    [Fact]
    public async Task CampaignRun_D2NulInDatasetRow_IsAMalformedRowAndTheCampaignCompletes()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var spec = await WriteCampaignAsync("nul", ["""{"prompt":"nul \u0000 inside","answer":"1"}""", """{"prompt":"fine","answer":"1","meta":{"deep":["a\u0000"]}}"""]);

        var run = await CliProcess.RunAsync(["campaign", "run", spec, "--db", db.ConnectionString], null, Ct);

        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        AssertNoStackTrace(run);
        Assert.Contains("(2 malformed rows skipped)", run.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("deepseekrl: warning: data.jsonl line 7: field \"prompt\": contains U+0000, which PostgreSQL text cannot store; skipped", run.StandardError, StringComparison.Ordinal);
        Assert.Contains("deepseekrl: warning: data.jsonl line 8: field \"meta\": contains U+0000, which PostgreSQL text cannot store; skipped", run.StandardError, StringComparison.Ordinal);
        Assert.Contains("campaign 1 completed", run.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(6L, await db.ScalarAsync<long>("SELECT count(*) FROM campaign_prompts"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM campaign_prompts WHERE prompt IN ('nul ' || chr(65533) || ' inside', 'fine')"));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT value FROM campaign_counters WHERE name = 'dataset_malformed_rows'"));
    }

    [Fact]
    public async Task CampaignRun_D2NulInSpecString_FailsNamingTheField()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var spec = await WriteCampaignAsync("nul", [], ruleName: "acc\\u0000uracy");

        var run = await CliProcess.RunAsync(["campaign", "run", spec, "--db", db.ConnectionString], null, Ct);

        Assert.Equal(1, run.ExitCode);
        AssertNoStackTrace(run);
        Assert.Contains("deepseekrl: error: spec.json: rewards.rules[0].name: contains U+0000, which PostgreSQL text cannot store", run.StandardError, StringComparison.Ordinal);
        var list = await CliProcess.RunAsync(["campaign", "list", "--json", "--db", db.ConnectionString], null, Ct);
        Assert.Equal(string.Empty, list.StandardOutput.Trim());
    }

    [Fact]
    public async Task Serve_D1LoneSurrogateInChatMessage_Answers200WithJson()
    {
        var init = await CliProcess.RunAsync(["model", "init", "--config", Path.Combine(Models, "quick.json"), "--seed", "1", "--out", P("tiny")], null, Ct);
        Assert.True(init.ExitCode == 0, init.StandardError);
        File.Copy(Path.Combine(Models, "tiny-tokenizer.json"), Path.Combine(P("tiny"), "tokenizer.json"));
        var (server, url) = await StartServeAsync(["serve", "--model", P("tiny"), "--port", "0"]);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(2) };
            var escaped = Encoding.UTF8.GetBytes("""{"model": "tiny", "messages": [{"role": "user", "content": "lone \ud800 and \udc00"}], "temperature": 0, "max_tokens": 2}""");
            // The same request with the surrogate as raw (invalid) UTF-8: ED A0 80.
            var raw = Encoding.UTF8.GetBytes("""{"model": "tiny", "messages": [{"role": "user", "content": "lone X"}], "temperature": 0, "max_tokens": 2}""");
            var x = Array.IndexOf(raw, (byte)'X');
            raw = [.. raw[..x], 0xED, 0xA0, 0x80, .. raw[(x + 1)..]];
            foreach (var body in new[] { escaped, raw })
            {
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                using var response = await http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), content, Ct);
                var text = await response.Content.ReadAsStringAsync(Ct);
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
                Assert.Equal("chat.completion", JsonDocument.Parse(text).RootElement.GetProperty("object").GetString());
            }
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync(Ct);
            server.Dispose();
        }
    }

    // A one-step native campaign on examples/models: six good rows, then the given ones (lines 7, 8, ...).
    private async Task<string> WriteCampaignAsync(string name, string[] extraRows, string template = "r1_zero", string ruleName = "accuracy")
    {
        var rows = Enumerable.Range(1, 6).Select(i => $$"""{"prompt": "What is {{i}} + {{i}}?", "answer": "{{i + i}}"}""").Concat(extraRows);
        await File.WriteAllLinesAsync(P("data.jsonl"), rows, Ct);
        var spec = $$"""
            {
              "name": "{{name}}",
              "policy": { "native": { "config": {{JsonSerializer.Serialize(Path.Combine(Models, "quick.json"))}}, "seed": 1, "tokenizer": {{JsonSerializer.Serialize(Path.Combine(Models, "tiny-tokenizer.json"))}} } },
              "dataset": { "path": "data.jsonl", "template": "{{template}}" },
              "rewards": { "rules": [ { "rule": "accuracy", "name": "{{ruleName}}", "weight": 1.0 } ] },
              "algorithm": { "group_size": 2, "prompts_per_step": 2, "max_new_tokens": 4, "steps": 1 },
              "evaluation": { "every_steps": 0 },
              "seed": 1
            }
            """;
        await File.WriteAllTextAsync(P("spec.json"), spec, Ct);
        return P("spec.json");
    }

    private static async Task<(Process Process, string Url)> StartServeAsync(string[] arguments)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "DeepSeekRL.Silo.dll"));
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DEEPSEEKRL_HOME"] = RepositoryPaths.Root;
        info.Environment.Remove("DEEPSEEKRL_DB");
        var process = Process.Start(info)!;
        _ = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("serving ", StringComparison.Ordinal))
            {
                return (process, line[(line.LastIndexOf(' ') + 1)..]);
            }
        }

        process.Kill(entireProcessTree: true);
        process.Dispose();
        throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"serve exited before listening"));
    }
}
