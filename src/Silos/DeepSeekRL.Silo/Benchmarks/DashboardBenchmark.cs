using System.Diagnostics;
using DeepSeekRL.Silo.Api;
using Microsoft.Playwright;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// <c>bench dashboard</c>: the dashboard in Debian's chromium (headless, driven by Playwright) against the api role
/// serving the <c>bench api</c> campaign (10,000 steps of metrics, 1,000,000 completions). Times, from navigation, until
/// the campaign page is interactive (status, all thirteen charts drawn, eleven of them with 10,000 points, the expert-load heat maps, the
/// first sample page, and the page's main thread answering), and how long a further sample page, a filtered sample
/// page and a page of the campaign list take to show.
/// </summary>
internal static class DashboardBenchmark
{
    /// <summary>The environment variable naming another chromium executable (infra/prerequisites.sh checks the same one).</summary>
    public const string ChromiumVariable = "DEEPSEEKRL_CHROMIUM";

    public static async Task RunAsync(BenchDatabase db, int runs, BenchReport report, CancellationToken cancellationToken)
    {
        var chromium = Environment.GetEnvironmentVariable(ChromiumVariable) is { Length: > 0 } chosen ? chosen : "/usr/bin/chromium";
        if (!File.Exists(chromium))
        {
            throw new CommandLine.CliException($"missing chromium ({chromium}); run: sudo apt-get install -y --no-install-recommends chromium (or bash infra/setup.sh)");
        }

        var id = await ApiBenchmark.FillAsync(db, cancellationToken);
        var port = ApiBenchmark.FreePort();
        var (token, _) = await ApiToken.InitializeAsync(db.DataSource, "bench-token-0123456789", cancellationToken);
        await using var app = await ApiServer.StartAsync(db.DataSource, new ApiServerOptions { Port = port }, token, cancellationToken);
        var baseUrl = $"http://127.0.0.1:{port}";

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = chromium, Args = ["--no-sandbox"], Headless = true });
        var interactive = new List<double>();
        var nextPage = new List<double>();
        var filtered = new List<double>();
        var list = new List<double>();
        var longTasks = new List<double>();
        for (var run = 0; run <= runs; run++)
        {
            // A fresh context per run: nothing cached from the previous run.
            await using var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
            var page = await context.NewPageAsync();
            var errors = new List<string>();
            page.PageError += (_, error) => errors.Add(error);

            var started = Stopwatch.GetTimestamp();
            await page.GotoAsync($"{baseUrl}/#/", new() { WaitUntil = WaitUntilState.Commit });
            await WaitAsync(page, "() => document.querySelectorAll('#campaigns tr[data-campaign-id]').length > 0");
            var listMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;

            await page.EvaluateAsync("""
                () => { window.__longTasks = 0; new PerformanceObserver(l => { for (const e of l.getEntries()) window.__longTasks += e.duration; }).observe({ type: "longtask" }); }
                """);
            started = Stopwatch.GetTimestamp();
            await page.EvaluateAsync($"() => {{ location.hash = '#/campaigns/{id}'; }}");
            await WaitAsync(page,
                """
                () => document.querySelector('#status h1') !== null
                  && document.querySelectorAll('#charts .uplot').length === 13
                  && document.querySelectorAll('#charts .chart-body[data-points="10000"]').length === 11
                  && window.__charts.reward && window.__charts.reward.x.length === 10000
                  && document.querySelectorAll('#expert-load canvas').length > 0
                  && document.querySelectorAll('#sample-list .sample').length === 50
                """);
            await page.EvaluateAsync("() => new Promise(r => setTimeout(r, 0))"); // the main thread answers
            var interactiveMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var longTaskMs = await page.EvaluateAsync<double>("() => window.__longTasks");

            started = Stopwatch.GetTimestamp();
            await page.ClickAsync("#sample-next");
            await WaitAsync(page, "() => document.querySelectorAll('#sample-list .sample').length === 100");
            var nextMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;

            await page.FillAsync("#sample-filters [name=step]", (5000 + run).ToString(System.Globalization.CultureInfo.InvariantCulture));
            await page.SelectOptionAsync("#sample-filters select[name=accepted]", "true");
            started = Stopwatch.GetTimestamp();
            await page.ClickAsync("#sample-filters button[type=submit]");
            await WaitAsync(page, "() => document.querySelector('#sample-message').textContent.endsWith('(end)') && document.querySelectorAll('#sample-list .sample').length > 0");
            var filteredMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (errors.Count > 0)
            {
                throw new InvalidOperationException("the dashboard raised a script error: " + errors[0]);
            }

            Console.WriteLine(System.FormattableString.Invariant($"  run {run}{(run == 0 ? " (warm-up, not counted)" : "")}: list {listMs:0} ms, campaign page interactive {interactiveMs:0} ms (long tasks {longTaskMs:0} ms), next sample page {nextMs:0} ms, filtered page {filteredMs:0} ms"));
            if (run > 0)
            {
                list.Add(listMs);
                interactive.Add(interactiveMs);
                longTasks.Add(longTaskMs);
                nextPage.Add(nextMs);
                filtered.Add(filteredMs);
            }
        }

        report.Add("dashboard_list_ms", BenchReport.Median(list), "campaign list shown (fresh browser context)");
        report.Add("dashboard_campaign_page_interactive_ms", BenchReport.Median(interactive), "campaign page interactive: status, 13 charts (11 × 10,000 steps), heat maps, first 50 samples");
        report.Add("dashboard_campaign_page_long_tasks_ms", BenchReport.Median(longTasks), "main-thread long tasks (> 50 ms) while the campaign page loads");
        report.Add("dashboard_sample_next_page_ms", BenchReport.Median(nextPage), "'Next page' click until 50 more samples are shown (1,000,000 completions)");
        report.Add("dashboard_sample_filtered_page_ms", BenchReport.Median(filtered), "filter (step + accepted) submitted until the page is shown");
    }

    private static async Task WaitAsync(IPage page, string condition)
    {
        try
        {
            await page.WaitForFunctionAsync(condition, null, new() { Timeout = 60_000, PollingInterval = 5 });
        }
        catch (TimeoutException)
        {
            var state = await page.EvaluateAsync<string>("""
                () => JSON.stringify({ header: (document.querySelector('#status') || {}).textContent, uplots: document.querySelectorAll('#charts .uplot').length,
                  points: [...document.querySelectorAll('#charts .chart-body')].map(b => b.dataset.points), heat: document.querySelectorAll('#expert-load canvas').length,
                  samples: document.querySelectorAll('#sample-list .sample').length, message: (document.querySelector('#sample-message') || {}).textContent })
                """);
            throw new TimeoutException("the dashboard did not get there within 60 s: " + state);
        }
    }
}
