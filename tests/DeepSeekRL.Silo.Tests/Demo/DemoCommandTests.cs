using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Plugins;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Demo;

/// <summary>
/// <c>demo --quick</c> as a user runs it: a child process on a real PostgreSQL database, the dashboard answering
/// while it runs, stopped with SIGINT during the cold-start SFT, continued with <c>--resume</c> to the end.
/// </summary>
public sealed class DemoCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("demo-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task QuickDemo_StoppedWithCtrlC_ResumesToACompleteReport()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var work = Path.Combine(_dir, "run");
        var reportPath = Path.Combine(_dir, "report.json");
        var port = FreePort();
        string[] arguments = ["demo", "--quick", "--dir", work, "--report", reportPath, "--api-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--db", db.ConnectionString];

        // 1. Run until the SFT stage has made progress, check the dashboard answers, then Ctrl-C.
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "DeepSeekRL.Silo.dll"));
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DEEPSEEKRL_HOME"] = RepositoryPaths.Root;
        info.Environment.Remove("DEEPSEEKRL_DB");
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        var output = new StringBuilder();
        var sawDashboard = false;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            timeout.CancelAfter(TimeSpan.FromMinutes(5));
            var inSft = false;
            try
            {
                while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
                {
                    output.AppendLine(line);
                    sawDashboard |= line.StartsWith($"dashboard: http://127.0.0.1:{port}/", StringComparison.Ordinal);
                    inSft |= line.StartsWith("[4/10] sft:", StringComparison.Ordinal);
                    if (inSft && line.Contains("] ", StringComparison.Ordinal) && line.Contains("tok/s", StringComparison.Ordinal) && !line.Contains(" 1/", StringComparison.Ordinal))
                    {
                        break;
                    }
                }
            }
            catch
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
        }

        Assert.True(sawDashboard, output.ToString());
        using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") })
        {
            using var campaigns = await http.GetAsync(new Uri("api/campaigns", UriKind.Relative), Ct);
            Assert.Equal(HttpStatusCode.OK, campaigns.StatusCode);
            using var page = await http.GetAsync(new Uri("/", UriKind.Relative), Ct);
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        }

        using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(Ct);
        }

        var rest = await process.StandardOutput.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        var error = await stderr;
        Assert.True(process.ExitCode == 130, $"exit {process.ExitCode}\n{output}{rest}\n{error}");
        Assert.Contains("demo stopped during 'sft'", error, StringComparison.Ordinal);
        Assert.Contains("./deepseekrl demo --quick --resume", error, StringComparison.Ordinal);
        using (var state = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(work, "state.json"), Ct)))
        {
            var stages = state.RootElement.GetProperty("stages");
            foreach (var done in new[] { "data", "tokenizer", "pretrain" })
            {
                Assert.True(stages.GetProperty(done).GetProperty("done").GetBoolean(), done);
            }

            Assert.False(stages.GetProperty("sft").GetProperty("done").GetBoolean());
        }

        Assert.True(File.Exists(Path.Combine(work, "sft", "optimizer.safetensors")), "the stopped SFT saved its optimizer state");

        // 2. A new run refuses a mismatched resume; the right one continues the SFT where it stopped and finishes.
        var wrong = await CliProcess.RunAsync(["demo", "--resume", "--dir", work, "--api-port", "0", "--db", db.ConnectionString], null, Ct);
        Assert.NotEqual(0, wrong.ExitCode);
        Assert.Contains("is preset 'quick' seed 1, not 'full' seed 1", wrong.StandardError, StringComparison.Ordinal);

        var resumed = await CliProcess.RunAsync([.. arguments.Where(a => a != port.ToString(System.Globalization.CultureInfo.InvariantCulture) && a != "--api-port"), "--api-port", "0", "--resume"], null, Ct);
        Assert.True(resumed.ExitCode == 0, resumed.StandardOutput + resumed.StandardError);
        Assert.Contains("[3/10] pretrain: done earlier", resumed.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("resuming sft at step ", resumed.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("held-out greedy accuracy", resumed.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("what RL changed, additions:", resumed.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("held-out greedy accuracy, Countdown puzzles", resumed.StandardOutput, StringComparison.Ordinal);

        // 3. The report: every key, fractions in [0, 1], the RL evaluations every 5 steps, the samples.
        using var report = JsonDocument.Parse(await File.ReadAllTextAsync(reportPath, Ct));
        var r = report.RootElement;
        foreach (var key in new[] { "accuracy_base", "accuracy_sft", "accuracy_rl_final", "reasoning_fraction_sft", "reasoning_fraction_rl" })
        {
            var value = r.GetProperty(key).GetDouble();
            Assert.InRange(value, 0, 1);
        }

        // Countdown: its own held-out set, judged by the countdown rule (the rows have no gold answer for accuracy).
        var countdown = r.GetProperty("countdown");
        foreach (var key in new[] { "accuracy_base", "accuracy_sft", "accuracy_rl_final", "reasoning_fraction_sft", "reasoning_fraction_rl" })
        {
            Assert.InRange(countdown.GetProperty(key).GetDouble(), 0, 1);
        }

        var countdownRows = File.ReadLines(Path.Combine(work, "eval-countdown.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(100, countdownRows.Count);
        Assert.All(countdownRows, row =>
        {
            Assert.Equal("countdown", row.GetProperty("kind").GetString());
            Assert.False(row.TryGetProperty("answer", out _));
            Assert.Equal(3, row.GetProperty("numbers").GetArrayLength());
        });
        var heldOut = countdownRows.Select(row => row.GetProperty("prompt").GetString()).ToHashSet();
        var rlRows = File.ReadLines(Path.Combine(work, "rl.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("prompt").GetString()).ToList();
        Assert.Contains(rlRows, p => p!.StartsWith("Using the numbers ", StringComparison.Ordinal));
        Assert.DoesNotContain(rlRows, heldOut.Contains);

        Assert.Equal([0, 5, 10, 15, 20], r.GetProperty("rl_evals").EnumerateArray().Select(e => e.GetProperty("step").GetInt32()));
        Assert.Equal(r.GetProperty("rl_evals")[4].GetProperty("accuracy").GetDouble(), r.GetProperty("accuracy_rl_final").GetDouble());
        var generated = r.GetProperty("samples_generated").GetInt64();
        var accepted = r.GetProperty("samples_accepted").GetInt64();
        Assert.Equal(8 * 32 * 4, generated);
        Assert.InRange(accepted, 0, generated);
        Assert.Equal(accepted, File.ReadLines(Path.Combine(work, "accepted.jsonl")).Count());

        // Rejection sampling keeps only samples whose checks state their comparisons truthfully: each accepted sample,
        // scored again by the rule itself, is consistent, as its stored score says.
        using (var plugins = new PluginLoader())
        using (var rules = JsonDocument.Parse("""{"rules": [{"rule": "check_consistency", "options": {"quote_attempt": false}}]}"""))
        {
            var (pipeline, rulesError) = RulesFile.Build(rules.RootElement, work, plugins);
            Assert.Null(rulesError);
            var samples = File.ReadLines(Path.Combine(work, "accepted.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            var scored = await pipeline!.ScoreAsync(
                [.. samples.Select(e => new RewardInput(e.GetProperty("messages")[0].GetProperty("content").GetString()!, e.GetProperty("messages")[1].GetProperty("content").GetString()!, null))], Ct);
            Assert.All(scored, result => Assert.Equal(1.0, result["check_consistency"]));
            Assert.All(samples, e => Assert.Equal(1.0, e.GetProperty("metadata").GetProperty("scores").GetProperty("check_consistency").GetDouble()));
        }
        if (accepted > 0)
        {
            // The distilled model was trained on the export and evaluated on the same prompts.
            Assert.InRange(r.GetProperty("accuracy_distilled").GetDouble(), 0, 1);
            Assert.True(File.Exists(Path.Combine(work, "distilled", "model.safetensors")));
        }
        else
        {
            // Nothing to distil: the stage says so and the figure is null, not a made-up 0.
            Assert.Equal(JsonValueKind.Null, r.GetProperty("accuracy_distilled").ValueKind);
            Assert.Contains("distillation is skipped", resumed.StandardError, StringComparison.Ordinal);
        }
        var stagesSeconds = r.GetProperty("seconds_per_stage");
        Assert.Equal(10, stagesSeconds.EnumerateObject().Count());
        Assert.All(stagesSeconds.EnumerateObject(), s => Assert.True(s.Value.GetDouble() >= 0, s.Name));
        Assert.True(r.GetProperty("seconds_total").GetDouble() >= stagesSeconds.GetProperty("sft").GetDouble());

        // Issue 19 (a potato's memory): the run's peak resident memory is reported, and the quick demo stays within the
        // full demo's 2 GB (it reached 10.6 GB before the training buffers were pooled; 1.3 GB measured since).
        var peak = r.GetProperty("peak_rss_mb").GetDouble();
        Assert.InRange(peak, 100, 2048);
        Assert.Equal(peak, r.GetProperty("peak_rss_mb_through_stage").EnumerateObject().Max(s => s.Value.GetDouble()));

        // The numbers are the database's: the SFT evaluation campaign holds the same accuracy.
        using var state2 = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(work, "state.json"), Ct));
        var sftCampaign = state2.RootElement.GetProperty("campaigns").GetProperty("eval_sft").GetInt64();
        var status = await CliProcess.RunAsync(["campaign", "status", sftCampaign.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json", "--db", db.ConnectionString], null, Ct);
        using var statusJson = JsonDocument.Parse(status.StandardOutput);
        Assert.Equal(r.GetProperty("accuracy_sft").GetDouble(), statusJson.RootElement.GetProperty("evaluations")[0].GetProperty("accuracy").GetDouble());

        // Self-verification (issue 22): the guess-and-check additions' figures are shares, and the gain's split adds up.
        foreach (var key in new[] { "verify_fraction_sft", "verify_fraction_rl", "repair_fraction_sft", "repair_fraction_rl", "accuracy_first_attempt_rl" })
        {
            Assert.InRange(r.GetProperty(key).GetDouble(), 0, 1);
        }

        var split = r.GetProperty("gain_split");
        Assert.Equal(
            r.GetProperty("accuracy_rl_final").GetDouble() - r.GetProperty("accuracy_sft").GetDouble(),
            split.GetProperty("first_attempts_better").GetDouble() + split.GetProperty("verifies_and_repairs").GetDouble(),
            9);
        Assert.Contains("self-verification, additions (held out, SFT -> RL): checks ", resumed.StandardOutput, StringComparison.Ordinal);

        // The picture: four panels, one point per RL step in the reward panel and in the checking panel.
        var svg = XDocument.Parse(await File.ReadAllTextAsync(Path.Combine(work, "rl.svg"), Ct));
        Assert.Equal("svg", svg.Root!.Name.LocalName);
        var panels = svg.Descendants().Where(e => e.Name.LocalName == "g" && e.Attribute("data-panel") is not null).ToList();
        Assert.Equal(4, panels.Count);
        var rewardPoints = panels[0].Descendants().Where(e => e.Name.LocalName == "polyline")
            .Sum(p => p.Attribute("points")!.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(20, rewardPoints);
        var checkPoints = panels[3].Descendants().Where(e => e.Name.LocalName == "polyline")
            .Sum(p => p.Attribute("points")!.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(40, checkPoints); // verify and repair shares, 20 steps each
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
