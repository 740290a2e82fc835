using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using DeepSeekRL.Testing;
using Microsoft.Playwright;

namespace DeepSeekRL.Dashboard.Tests;

/// <summary>
/// The dashboard's sample browser, nodes table, expert-load heat map and controls against the API contract of issue 9,
/// answered by the browser's request interception (the static files come from a real <c>api</c> role).
/// </summary>
public sealed class DashboardMockedApiTests
{
    private const string Chromium = "/usr/bin/chromium";

    private const string Status = """
        {"id":1,"name":"mocked","state":"running","mode":"train","steps_completed":2,"total_steps":10,"policy_version":2,"error":null,
         "created_at":"2026-01-01T00:00:00Z","counters":{"samples_generated":16},"evaluations":[{"step":1,"accuracy":0.25}]}
        """;

    private const string Steps = """
        [{"step":0,"reward_mean":0.5,"reward_std":0.1,"rewards":{"accuracy":0.5},"expert_load":[[],[3,1,0,4]]},
         {"step":1,"reward_mean":0.75,"reward_std":0.2,"rewards":{"accuracy":0.75},"expert_load":[[],[2,2,2,2]]}]
        """;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Screenshots { get; } = Directory.CreateDirectory(Path.Combine(RepositoryPaths.Root, "artifacts", "screenshots")).FullName;

    [Fact]
    public async Task SampleBrowserNodesHeatMapAndControls_FollowTheApiContract()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        using var silo = CliChild.Start("api", ["silo", "--roles", "api", "--api-port", port.ToString(CultureInfo.InvariantCulture), "--db", db.ConnectionString]);
        var baseUrl = $"http://127.0.0.1:{port}";
        using (var http = new HttpClient { BaseAddress = new Uri(baseUrl) })
        {
            for (var i = 0; ; i++)
            {
                try
                {
                    using var index = await http.GetAsync(new Uri("/index.html", UriKind.Relative), Ct);
                    Assert.Equal(HttpStatusCode.OK, index.StatusCode);
                    break;
                }
                catch (HttpRequestException) when (i < 150)
                {
                    Assert.False(silo.HasExited, silo.Output);
                    await Task.Delay(200, Ct);
                }
            }
        }

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Args = ["--no-sandbox"], Headless = true });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        var pageErrors = new List<string>();
        page.PageError += (_, error) => pageErrors.Add(error);
        var sampleQueries = new ConcurrentQueue<string>();
        var authorizations = new ConcurrentQueue<string>();
        await page.RouteAsync("**/api/**", route =>
        {
            var url = new Uri(route.Request.Url);
            var path = url.AbsolutePath;
            (int Status, string Body) answer = path switch
            {
                "/api/campaigns" => (200, "[" + Status + "]"),
                "/api/campaigns/1" => (200, Status),
                "/api/campaigns/1/steps" => (200, Steps),
                "/api/nodes" => (200, """[{"node_id":"node-a","generation":3,"roles":["rollout","learner"],"state":"active","heartbeat_at":"2026-01-01T00:00:00Z","host":"box1","pid":4242}]"""),
                "/api/campaigns/1/samples" => Samples(url.Query, sampleQueries),
                "/api/campaigns/1/pause" => Control(route.Request.Headers.TryGetValue("authorization", out var a) ? a : "", authorizations),
                _ => (404, """{"error":"no such endpoint"}"""),
            };
            return route.FulfillAsync(new() { Status = answer.Status, ContentType = "application/json", Body = answer.Body });
        });
        string? promptAnswer = null;
        page.Dialog += (_, dialog) => _ = promptAnswer is null ? dialog.DismissAsync() : dialog.AcceptAsync(promptAnswer);

        await page.GotoAsync(baseUrl + "/#/campaigns/1");

        // Samples: reasoning apart from the answer, scores and verdict, paging with next_after_id.
        var first = page.Locator(".sample[data-completion-id='10']");
        await first.WaitForAsync(new() { Timeout = 15_000 });
        Assert.Equal("check 2+2", await first.Locator("pre.reasoning").InnerTextAsync());
        Assert.Equal("<answer>4</answer>", await first.Locator("pre.answer").InnerTextAsync());
        Assert.Contains("accuracy: 1", await first.InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("accepted", await first.InnerTextAsync(), StringComparison.Ordinal);
        await page.ClickAsync("#sample-next");
        await page.Locator(".sample[data-completion-id='11']").WaitForAsync(new() { Timeout = 5_000 });
        Assert.Contains("no_code_in_reasoning false", await page.Locator(".sample[data-completion-id='11']").InnerTextAsync(), StringComparison.Ordinal);
        Assert.True(await page.Locator("#sample-next").IsHiddenAsync());
        Assert.Equal(2, await page.Locator(".sample").CountAsync());

        // Filters go to the server; a bad one shows the server's message.
        await page.FillAsync("#sample-filters input[name=step]", "1");
        await page.FillAsync("#sample-filters input[name=rule]", "accuracy");
        await page.FillAsync("#sample-filters input[name=min]", "0.5");
        await page.SelectOptionAsync("#sample-filters select[name=accepted]", "true");
        await page.FillAsync("#sample-filters input[name=q]", "2+2");
        await page.ClickAsync("#sample-filters button[type=submit]");
        await page.WaitForFunctionAsync("() => document.querySelectorAll('.sample').length === 1", null, new() { Timeout = 5_000 });
        Assert.Contains(sampleQueries, q => q.Contains("step=1", StringComparison.Ordinal) && q.Contains("rule=accuracy", StringComparison.Ordinal)
            && q.Contains("min=0.5", StringComparison.Ordinal) && q.Contains("accepted=true", StringComparison.Ordinal) && q.Contains("q=2%2B2", StringComparison.Ordinal));
        await page.FillAsync("#sample-filters input[name=rule]", "bogus");
        await page.ClickAsync("#sample-filters button[type=submit]");
        await page.Locator("#sample-message.error").WaitForAsync(new() { Timeout = 5_000 });
        Assert.Equal("rule 'bogus' is not a rule of campaign 1", await page.Locator("#sample-message").InnerTextAsync());

        // Nodes and the expert-load heat map of the one MoE layer (layer 0 is dense).
        Assert.Contains("box1", await page.Locator("#nodes tr[data-node-id='node-a']").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal(1, await page.Locator("#expert-load canvas[data-layer='1']").CountAsync());
        Assert.Equal(0, await page.Locator("#expert-load canvas[data-layer='0']").CountAsync());
        Assert.Equal(4, await page.EvaluateAsync<int>("() => window.__charts.expert_load_layer_1.matrix[0][3]"));

        // Controls: no token (prompt dismissed) does nothing; a wrong one is refused; the right one works.
        await page.ClickAsync("button[data-action=pause]");
        Assert.Equal("pause: a token is required", await page.Locator("#control-message").InnerTextAsync());
        Assert.Empty(authorizations);
        await page.FillAsync("#token", "wrong");
        await page.ClickAsync("button[data-action=pause]");
        await page.Locator("#control-message.error").WaitForAsync(new() { Timeout = 5_000 });
        await page.WaitForFunctionAsync("() => document.querySelector('#control-message').textContent.includes('refused')", null, new() { Timeout = 5_000 });
        promptAnswer = "secret";
        await page.ClickAsync("button[data-action=pause]");
        await page.WaitForFunctionAsync("() => document.querySelector('#control-message').textContent === 'pause: campaign is now paused'", null, new() { Timeout = 5_000 });
        Assert.Equal(["Bearer wrong", "Bearer secret"], authorizations.ToArray());
        Assert.Equal("secret", await page.EvaluateAsync<string>("() => sessionStorage.getItem('deepseekrl.token')"));

        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "campaign-page-mocked-api.png"), FullPage = true });
        Assert.Empty(pageErrors);
    }

    private static (int, string) Samples(string query, ConcurrentQueue<string> queries)
    {
        queries.Enqueue(query);
        if (query.Contains("rule=bogus", StringComparison.Ordinal))
        {
            return (400, """{"error":"rule 'bogus' is not a rule of campaign 1"}""");
        }

        const string first = """
            {"completion_id":10,"step":1,"policy_version":1,"prompt":"What is 2+2?","text":"<think>check 2+2</think> <answer>4</answer>",
             "reasoning":"check 2+2","answer":"<answer>4</answer>","reward":1.5,"scores":{"accuracy":1,"format_r1_zero":1},"accepted":true,"verdicts":{"no_code_in_reasoning":true}}
            """;
        const string second = """
            {"completion_id":11,"step":1,"policy_version":1,"prompt":"What is 2+2?","text":"<think>```x```</think> 5",
             "reasoning":"```x```","answer":"5","reward":0,"scores":{"accuracy":0,"format_r1_zero":null},"accepted":false,"verdicts":{"no_code_in_reasoning":false}}
            """;
        if (query.Contains("accepted=true", StringComparison.Ordinal))
        {
            return (200, "{\"items\":[" + first + "],\"next_after_id\":null}");
        }

        return query.Contains("after_id=10", StringComparison.Ordinal)
            ? (200, "{\"items\":[" + second + "],\"next_after_id\":null}")
            : (200, "{\"items\":[" + first + "],\"next_after_id\":10}");
    }

    private static (int, string) Control(string authorization, ConcurrentQueue<string> authorizations)
    {
        authorizations.Enqueue(authorization);
        return authorization == "Bearer secret" ? (200, """{"state":"paused"}""") : (401, """{"error":"missing or wrong bearer token"}""");
    }
}
