using System.Text.Json;
using Microsoft.Playwright;

namespace DeepSeekRL.Dashboard.Tests;

/// <summary>
/// The dashboard in a real browser (Debian's chromium, headless) against the <c>api</c> role serving a real campaign
/// stored in PostgreSQL. Screenshots go to <c>artifacts/screenshots/</c>.
/// </summary>
public sealed class DashboardPageTests(DashboardFixture fixture) : IClassFixture<DashboardFixture>
{
    private static string Screenshots => DashboardFixture.Screenshots;

    [Fact]
    public async Task ListAndCampaignPage_ShowTheCampaignAndChartItsStepMetrics()
    {
        var baseUrl = fixture.BaseUrl;
        using var steps = await fixture.GetJsonAsync("/api/campaigns/1/steps");
        using var status = await fixture.GetJsonAsync("/api/campaigns/1");
        Assert.Equal(4, steps.RootElement.GetArrayLength());

        var pageErrors = new List<string>();
        var page = await fixture.NewPageAsync(pageErrors);

        // The list page.
        await page.GotoAsync(baseUrl + "/");
        var row = page.Locator("#campaigns tr[data-campaign-id='1']");
        await row.WaitForAsync(new() { Timeout = 15_000 });
        Assert.Contains("random-native", await row.InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal("completed", await row.Locator("[data-state]").GetAttributeAsync("data-state"));
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "campaign-list.png"), FullPage = true });

        // The campaign page: state, counters, and charts that plot this campaign's numbers.
        await row.Locator("a").ClickAsync();
        await page.WaitForURLAsync("**/#/campaigns/1");
        await page.Locator("#status h1 [data-state='completed']").WaitForAsync(new() { Timeout = 15_000 });
        Assert.Equal("random-native", await page.Locator("#campaign-name").InnerTextAsync());
        await page.WaitForFunctionAsync("() => window.__charts.reward && window.__charts.reward.x.length === 4", null, new() { Timeout = 15_000 });

        Assert.Empty(pageErrors);
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
        // Nodes: every Orleans silo with its status and leases, as the API lists them from the membership table; the
        // api silo itself is among them, active, with its role.
        using var nodes = await fixture.GetJsonAsync("/api/nodes");
        Assert.Contains(nodes.RootElement.EnumerateArray(), n => n.GetProperty("state").GetString() == "active"
            && n.GetProperty("roles").EnumerateArray().Select(r => r.GetString()).SequenceEqual(["api"]));
        foreach (var node in nodes.RootElement.EnumerateArray())
        {
            var nodeRow = page.Locator($"#nodes tr[data-node-id='{node.GetProperty("node_id").GetString()}']");
            await nodeRow.WaitForAsync(new() { Timeout = 15_000 });
            Assert.Equal(node.GetProperty("state").GetString(), await nodeRow.Locator("[data-state]").GetAttributeAsync("data-state"));
            Assert.Equal(node.GetProperty("leases").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture), await nodeRow.Locator("td.leases").InnerTextAsync());
        }

        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "campaign-page.png"), FullPage = true });
        Assert.Empty(pageErrors);
        Assert.False(fixture.Silo.HasExited, fixture.Silo.Output);
    }

    [Fact]
    public async Task SampleBrowser_PagesAndFiltersLikeTheApi()
    {
        var errors = new List<string>();
        var page = await fixture.NewPageAsync(errors);
        await page.GotoAsync(fixture.BaseUrl + "/#/campaigns/1");
        var message = page.Locator("#sample-message");
        await page.WaitForFunctionAsync("() => document.querySelector('#sample-message').textContent.length > 0", null, new() { Timeout = 15_000 });
        using var all = await fixture.GetJsonAsync("/api/campaigns/1/samples?limit=100");
        var allIds = all.RootElement.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("completion_id").GetInt64()).ToArray();
        Assert.True(allIds.Length > 20, $"the campaign stored {allIds.Length} completions; the paging test needs more than 20");

        // Pages of 10: each "Next page" appends the next 10 in id order, the last page ends the list.
        await page.SelectOptionAsync("#sample-filters select[name=limit]", "10");
        await page.ClickAsync("#sample-filters button[type=submit]");
        await WaitForCountAsync(page, 10);
        var pages = 1;
        while (await page.Locator("#sample-next").IsVisibleAsync())
        {
            var before = await page.Locator("#sample-list .sample").CountAsync();
            await page.ClickAsync("#sample-next");
            await WaitForCountAsync(page, Math.Min(before + 10, allIds.Length));
            pages++;
            Assert.True(pages <= 20, "paging did not end");
        }

        Assert.Equal(allIds, await ShownIdsAsync(page));
        Assert.Equal((allIds.Length + 9) / 10, pages);
        Assert.EndsWith("(end)", await message.InnerTextAsync(), StringComparison.Ordinal);

        // Each filter shows exactly what the API returns for it.
        string[][] filters =
        [
            ["step", "2"],
            ["accepted", "false"],
            ["accepted", "true"],
            ["rule", "accuracy", "min", "1"],
            ["rule", "format_r1_zero", "max", "0"],
            ["q", "+"],
        ];
        foreach (var filter in filters)
        {
            await page.GotoAsync(fixture.BaseUrl + "/#/");
            await page.GotoAsync(fixture.BaseUrl + "/#/campaigns/1");
            await page.WaitForFunctionAsync("() => document.querySelector('#sample-message').textContent.length > 0", null, new() { Timeout = 15_000 });
            var query = new List<string> { "limit=100" };
            await page.SelectOptionAsync("#sample-filters select[name=limit]", "100");
            for (var i = 0; i < filter.Length; i += 2)
            {
                var field = $"#sample-filters [name={filter[i]}]";
                if (filter[i] == "accepted")
                {
                    await page.SelectOptionAsync(field, filter[i + 1]);
                }
                else
                {
                    await page.FillAsync(field, filter[i + 1]);
                }

                query.Add(filter[i] + "=" + Uri.EscapeDataString(filter[i + 1]));
            }

            using var expected = await fixture.GetJsonAsync("/api/campaigns/1/samples?" + string.Join('&', query));
            var ids = expected.RootElement.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("completion_id").GetInt64()).ToArray();
            await page.ClickAsync("#sample-filters button[type=submit]");
            await page.WaitForFunctionAsync(
                "n => { const m = document.querySelector('#sample-message').textContent; return n === 0 ? m === 'No samples match.' : document.querySelectorAll('#sample-list .sample').length === n && m.endsWith('(end)'); }",
                ids.Length, new() { Timeout = 15_000 });
            Assert.Equal(ids, await ShownIdsAsync(page));
            if (filter[0] == "accepted")
            {
                var verdict = filter[1] == "true" ? "accepted" : "rejected";
                Assert.Equal(ids.Length, await page.Locator($"#sample-list .sample .meta .{verdict}").CountAsync());
            }
        }

        // The reasoning is shown apart from the answer, and per-rule scores with it.
        var first = all.RootElement.GetProperty("items")[0];
        await page.SelectOptionAsync("#sample-filters select[name=accepted]", "");
        await page.FillAsync("#sample-filters [name=q]", "");
        await page.FillAsync("#sample-filters [name=rule]", "");
        await page.FillAsync("#sample-filters [name=min]", "");
        await page.FillAsync("#sample-filters [name=max]", "");
        await page.FillAsync("#sample-filters [name=step]", "");
        await page.ClickAsync("#sample-filters button[type=submit]");
        var card = page.Locator($"#sample-list .sample[data-completion-id='{first.GetProperty("completion_id").GetInt64()}']");
        await card.WaitForAsync(new() { Timeout = 15_000 });
        var text = first.GetProperty("text").GetString()!;
        var close = text.IndexOf("</think>", StringComparison.Ordinal);
        if (first.GetProperty("reasoning").ValueKind == JsonValueKind.String)
        {
            var reasoning = first.GetProperty("reasoning").GetString()!.Trim();
            Assert.Equal(reasoning, reasoning.Length == 0 ? "" : (await card.Locator("pre.reasoning").InnerTextAsync()).Trim());
            Assert.Equal(first.GetProperty("answer").GetString()!.Trim(), (await card.Locator("pre.answer").InnerTextAsync()).Trim());
        }
        else if (close >= 0)
        {
            Assert.Equal(text[(close + 8)..].Trim(), (await card.Locator("pre.answer").InnerTextAsync()).Trim());
        }

        foreach (var score in first.GetProperty("scores").EnumerateObject())
        {
            Assert.Contains(score.Name + ":", await card.Locator(".scores").First.InnerTextAsync(), StringComparison.Ordinal);
        }

        // A bad filter: the API's 400 message is shown.
        await page.FillAsync("#sample-filters [name=max]", "1");
        await page.FillAsync("#sample-filters [name=min]", "2");
        await page.FillAsync("#sample-filters [name=rule]", "accuracy");
        await page.ClickAsync("#sample-filters button[type=submit]");
        await page.Locator("#sample-message.error").WaitForAsync(new() { Timeout = 15_000 });
        Assert.Contains("min", await message.InnerTextAsync(), StringComparison.Ordinal);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "sample-browser.png"), FullPage = true });
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Controls_AreRefusedWithoutTheTokenAndWorkWithIt()
    {
        var errors = new List<string>();
        var page = await fixture.NewPageAsync(errors);
        using (var before = await fixture.GetJsonAsync("/api/campaigns/2"))
        {
            Assert.Equal("created", before.RootElement.GetProperty("state").GetString());
        }

        await page.GotoAsync(fixture.BaseUrl + "/#/campaigns/2");
        await page.Locator("#status h1 [data-state='created']").WaitForAsync(new() { Timeout = 15_000 });
        var message = page.Locator("#control-message");

        // No token: the page asks for one; dismissing the prompt sends nothing.
        var prompts = 0;
        void Dismiss(object? sender, IDialog dialog)
        {
            prompts++;
            _ = dialog.DismissAsync();
        }

        page.Dialog += Dismiss;
        await page.ClickAsync("#controls button[data-action=pause]");
        await page.Locator("#control-message.error").WaitForAsync(new() { Timeout = 15_000 });
        Assert.Equal("pause: a token is required", await message.InnerTextAsync());
        Assert.Equal(1, prompts);
        page.Dialog -= Dismiss;

        // A wrong token: the server refuses (401) and the state is unchanged.
        await page.FillAsync("#token", "not-the-token-0123456789");
        await page.ClickAsync("#controls button[data-action=pause]");
        await page.WaitForFunctionAsync("() => document.querySelector('#control-message').textContent.startsWith('pause refused')", null, new() { Timeout = 15_000 });
        Assert.Contains("Bearer", await message.InnerTextAsync(), StringComparison.Ordinal);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "controls-refused.png"), FullPage = true });
        Assert.Equal("created", await StateAsync(2));

        // The right token: pause, resume and cancel take effect, and the page shows the new state.
        await page.FillAsync("#token", DashboardFixture.Token);
        foreach (var (action, state) in new[] { ("pause", "paused"), ("resume", "running"), ("cancel", "cancelled") })
        {
            await page.ClickAsync($"#controls button[data-action={action}]");
            await page.WaitForFunctionAsync("t => document.querySelector('#control-message').textContent === t", $"{action}: campaign is now {state}", new() { Timeout = 15_000 });
            Assert.Equal(state, await StateAsync(2));
            await page.Locator($"#status h1 [data-state='{state}']").WaitForAsync(new() { Timeout = 15_000 });
        }

        // A refused transition shows the server's reason.
        await page.ClickAsync("#controls button[data-action=resume]");
        await page.WaitForFunctionAsync("() => document.querySelector('#control-message').className === 'error'", null, new() { Timeout = 15_000 });
        Assert.StartsWith("resume: ", await message.InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal("cancelled", await StateAsync(2));
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "controls-applied.png"), FullPage = true });
        Assert.Empty(errors);
    }

    [Fact]
    public async Task StartFromSpec_NeedsTheTokenAndOpensTheNewCampaign()
    {
        var errors = new List<string>();
        var page = await fixture.NewPageAsync(errors);
        await page.GotoAsync(fixture.BaseUrl + "/");
        await page.Locator("#campaigns tr[data-campaign-id='1']").WaitForAsync(new() { Timeout = 15_000 });
        using var before = await fixture.GetJsonAsync("/api/campaigns");
        var count = before.RootElement.GetArrayLength();

        // Paths in a posted spec resolve against the server's data root (by default the checkout's examples directory).
        var spec = (await File.ReadAllTextAsync(fixture.Spec, TestContext.Current.CancellationToken))
            .Replace("\"random-native\"", "\"started-from-the-dashboard\"", StringComparison.Ordinal);
        await page.ClickAsync("#start-panel summary");
        await page.FillAsync("#spec", spec);
        await page.FillAsync("#start-token", "not-the-token-0123456789");
        await page.ClickAsync("#start");
        await page.WaitForFunctionAsync("() => document.querySelector('#start-message').textContent.startsWith('start refused')", null, new() { Timeout = 15_000 });
        using (var refused = await fixture.GetJsonAsync("/api/campaigns"))
        {
            Assert.Equal(count, refused.RootElement.GetArrayLength());
        }

        // An invalid spec: the validator's message, nothing stored.
        await page.FillAsync("#start-token", DashboardFixture.Token);
        await page.FillAsync("#spec", spec.Replace("\"group_size\": 4", "\"group_size\": 0", StringComparison.Ordinal));
        await page.ClickAsync("#start");
        await page.WaitForFunctionAsync("() => document.querySelector('#start-message').className === 'error'", null, new() { Timeout = 15_000 });
        Assert.Contains("group_size", await page.Locator("#start-message").InnerTextAsync(), StringComparison.Ordinal);

        await page.FillAsync("#spec", spec);
        await page.ClickAsync("#start");
        await page.WaitForURLAsync("**/#/campaigns/*", new() { Timeout = 15_000 });
        await page.Locator("#campaign-name").WaitForAsync(new() { Timeout = 15_000 });
        Assert.Equal("started-from-the-dashboard", await page.Locator("#campaign-name").InnerTextAsync());
        using var after = await fixture.GetJsonAsync("/api/campaigns");
        Assert.Equal(count + 1, after.RootElement.GetArrayLength());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "started-campaign.png"), FullPage = true });
        Assert.Empty(errors);
    }

    private async Task<string?> StateAsync(int id)
    {
        using var status = await fixture.GetJsonAsync($"/api/campaigns/{id}");
        return status.RootElement.GetProperty("state").GetString();
    }

    private static async Task WaitForCountAsync(IPage page, int count)
    {
        await page.WaitForFunctionAsync("n => document.querySelectorAll('#sample-list .sample').length === n", count, new() { Timeout = 15_000 });
    }

    private static async Task<long[]> ShownIdsAsync(IPage page)
    {
        var ids = await page.EvaluateAsync<long[]>("() => [...document.querySelectorAll('#sample-list .sample')].map(e => Number(e.dataset.completionId))");
        return ids;
    }

    private static double? Number(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetDouble() : null;

    private static async Task AssertSeriesAsync(IPage page, string chart, string label, IEnumerable<double>? x, IEnumerable<double?> expected)
    {
        var plotted = await page.EvaluateAsync<JsonElement>($"() => window.__charts[{JsonSerializer.Serialize(chart)}]");
        Assert.True(plotted.ValueKind == JsonValueKind.Object, $"chart {chart}: nothing plotted; charts: {await page.EvaluateAsync<string>("() => location.href + ' ' + Object.keys(window.__charts).join(',')")}");
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
}
