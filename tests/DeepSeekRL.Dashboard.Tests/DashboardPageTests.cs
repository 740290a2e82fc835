using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DeepSeekRL.Testing;
using Microsoft.Playwright;

namespace DeepSeekRL.Dashboard.Tests;

/// <summary>
/// The dashboard in a real browser (Debian's chromium, headless) against the <c>api</c> role serving a real campaign
/// stored in PostgreSQL. Screenshots go to <c>artifacts/screenshots/</c>.
/// </summary>
public sealed class DashboardPageTests
{
    private const string Chromium = "/usr/bin/chromium";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Screenshots { get; } = Directory.CreateDirectory(Path.Combine(RepositoryPaths.Root, "artifacts", "screenshots")).FullName;

    [Fact]
    public async Task ListAndCampaignPage_ShowTheCampaignAndChartItsStepMetrics()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing; infra/setup.sh installs the Debian package chromium");
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var spec = Path.Combine(RepositoryPaths.Root, "examples", "quick-native.json");
        var run = await CliProcess.RunAsync(["campaign", "run", spec, "--db", db.ConnectionString], null, Ct);
        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);

        var port = FreePort();
        using var silo = CliChild.Start("api", ["silo", "--roles", "api", "--api-port", port.ToString(CultureInfo.InvariantCulture), "--db", db.ConnectionString]);
        var baseUrl = $"http://127.0.0.1:{port}";
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };
        await WaitForApiAsync(http, silo);
        using var steps = JsonDocument.Parse(await http.GetStringAsync(new Uri("/api/campaigns/1/steps", UriKind.Relative), Ct));
        using var status = JsonDocument.Parse(await http.GetStringAsync(new Uri("/api/campaigns/1", UriKind.Relative), Ct));
        Assert.Equal(4, steps.RootElement.GetArrayLength());

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Args = ["--no-sandbox"], Headless = true });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        var pageErrors = new List<string>();
        page.PageError += (_, error) => pageErrors.Add(error);

        // The list page.
        await page.GotoAsync(baseUrl + "/");
        var row = page.Locator("#campaigns tr[data-campaign-id='1']");
        await row.WaitForAsync(new() { Timeout = 15_000 });
        Assert.Contains("quick-native", await row.InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal("completed", await row.Locator("[data-state]").GetAttributeAsync("data-state"));
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "campaign-list.png"), FullPage = true });

        // The campaign page: state, counters, and charts that plot this campaign's numbers.
        await row.Locator("a").ClickAsync();
        await page.WaitForURLAsync("**/#/campaigns/1");
        await page.Locator("#status h1 [data-state='completed']").WaitForAsync(new() { Timeout = 15_000 });
        Assert.Equal("quick-native", await page.Locator("#campaign-name").InnerTextAsync());
        await page.WaitForFunctionAsync("() => window.__charts.reward && window.__charts.reward.x.length === 4", null, new() { Timeout = 15_000 });

        var rows = steps.RootElement.EnumerateArray().ToArray();
        await AssertSeriesAsync(page, "reward", "reward_mean", rows.Select(r => r.GetProperty("step").GetDouble()), rows.Select(r => Number(r, "reward_mean")));
        await AssertSeriesAsync(page, "reward", "reward_std", null, rows.Select(r => Number(r, "reward_std")));
        await AssertSeriesAsync(page, "response_length", "response_length_max", null, rows.Select(r => Number(r, "response_length_max")));
        await AssertSeriesAsync(page, "kl", "kl", null, rows.Select(r => Number(r, "kl")));
        await AssertSeriesAsync(page, "step_time", "sampling_seconds", null, rows.Select(r => Number(r, "sampling_seconds")));
        await AssertSeriesAsync(page, "rewards_per_rule", "accuracy", null, rows.Select(r => r.TryGetProperty("rewards", out var m) ? Number(m, "accuracy") : null));
        await AssertSeriesAsync(page, "tokens_per_second", "tokens/s", null, rows.Select(r => Number(r, "completion_tokens") / Number(r, "sampling_seconds")));
        var evaluations = status.RootElement.GetProperty("evaluations").EnumerateArray().ToArray();
        Assert.NotEmpty(evaluations);
        await AssertSeriesAsync(page, "eval_accuracy", "accuracy", evaluations.Select(e => e.GetProperty("step").GetDouble()), evaluations.Select(e => Number(e, "accuracy")));

        // uPlot drew every chart that has data; the heat map and the other panels rendered without a script error.
        Assert.True(await page.Locator("#chart-reward canvas").CountAsync() > 0, "the reward chart has no canvas");
        Assert.True(await page.Locator("#charts .uplot").CountAsync() >= 8, "fewer than 8 uPlot charts rendered");
        await page.WaitForFunctionAsync("() => document.querySelector('#sample-message').textContent.length > 0", null, new() { Timeout = 15_000 });
        Assert.NotEmpty(await page.Locator("#expert-load").InnerTextAsync());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "campaign-page.png"), FullPage = true });
        Assert.Empty(pageErrors);
        Assert.False(silo.HasExited, silo.Output);
    }

    private static double? Number(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetDouble() : null;

    private static async Task AssertSeriesAsync(IPage page, string chart, string label, IEnumerable<double>? x, IEnumerable<double?> expected)
    {
        var plotted = await page.EvaluateAsync<JsonElement>($"() => window.__charts[{JsonSerializer.Serialize(chart)}]");
        if (x is not null)
        {
            Assert.Equal(x, plotted.GetProperty("x").EnumerateArray().Select(v => v.GetDouble()));
        }

        var values = plotted.GetProperty("series").GetProperty(label).EnumerateArray()
            .Select(v => v.ValueKind == JsonValueKind.Number ? v.GetDouble() : (double?)null).ToArray();
        var want = expected.ToArray();
        Assert.Equal(want.Length, values.Length);
        for (var i = 0; i < want.Length; i++)
        {
            Assert.True(want[i] is null ? values[i] is null : values[i] is { } v && Math.Abs(v - want[i]!.Value) <= 1e-9 * Math.Max(1, Math.Abs(v)),
                $"{chart}.{label}[{i}]: plotted {values[i]}, the API says {want[i]}");
        }
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private static async Task WaitForApiAsync(HttpClient http, CliChild silo)
    {
        for (var i = 0; i < 150; i++)
        {
            try
            {
                using var response = await http.GetAsync(new Uri("/api/health", UriKind.Relative), Ct);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.False(silo.HasExited, silo.Output);
            await Task.Delay(200, Ct);
        }

        Assert.Fail("the api role did not answer within 30 s: " + silo.Output);
    }
}
