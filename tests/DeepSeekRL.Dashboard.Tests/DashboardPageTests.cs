using System.Text.Json;
using DeepSeekRL.Grains;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Testing;
using Microsoft.Playwright;

namespace DeepSeekRL.Dashboard.Tests;

/// <summary>
/// The dashboard in a real browser (Debian's chromium, headless) against the <c>api</c> role serving a real campaign
/// stored in PostgreSQL. Screenshots go to <c>artifacts/screenshots/</c>.
/// </summary>
public sealed class DashboardPageTests(DashboardFixture fixture) : IClassFixture<DashboardFixture>
{
    private static string Screenshots => DashboardFixture.Screenshots;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

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
    public async Task SelfVerification_ChartsItsSharesWithGapsAndTheBrowserFiltersOnTheFlags()
    {
        // A campaign of its own (created, never run) with five steps of self-verification metrics: step 1 had no sample
        // that verified (accuracy_when_verifying null), step 3 predates the metrics (no keys); two evaluations; and five
        // completions stored as the reward worker stores them: check passes (1), failed check repaired (7), failed
        // check left (3), no check (0), not scored yet (null).
        var created = await CliProcess.RunAsync(["campaign", "run", fixture.Spec, "--detach", "--db", fixture.Database.ConnectionString], null, CancellationToken.None);
        Assert.True(created.ExitCode == 0, created.StandardOutput + created.StandardError);
        var id = long.Parse(created.StandardOutput.Trim().Split('\n')[^1].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        double?[][] steps =
        [
            [0.25, 0.0, 0.0, 1.0, 0.5],
            [0.0, 0.0, 0.0, null, 0.4],
            [0.5, 0.25, 0.125, 0.75, 0.5],
            [null, null, null, null, null],
            [0.75, 0.5, 0.25, 2 / 3.0, 1.0],
        ];
        string[] fields = ["verify_fraction", "detect_fraction", "repair_fraction", "accuracy_when_verifying", "accuracy_without_verifying"];
        for (var step = 0; step < steps.Length; step++)
        {
            var metrics = new Dictionary<string, object?> { ["step"] = step, ["reward_mean"] = 0.1 * step };
            if (step != 3)
            {
                for (var f = 0; f < fields.Length; f++)
                {
                    metrics[fields[f]] = steps[step][f];
                }
            }

            await fixture.Database.DataSource.ExecuteAsync(
                "INSERT INTO step_metrics (campaign_id, step, epoch, metrics) VALUES ($1, $2, 1, $3::jsonb)", Ct, id, step, JsonSerializer.Serialize(metrics));
        }

        await fixture.Database.DataSource.ExecuteAsync("""
            INSERT INTO evaluations (campaign_id, step, policy_version, metrics) VALUES
              ($1, -1, 0, '{"step": -1, "accuracy": 0.25, "accuracy_first_attempt": 0.25, "accuracy_final": 0.25, "verify_fraction": 0.0, "repair_fraction": 0.0}'),
              ($1, 4, 0, '{"step": 4, "accuracy": 0.5, "accuracy_first_attempt": 0.375, "accuracy_final": 0.5, "verify_fraction": 0.75, "repair_fraction": 0.125}')
            """, Ct, id);
        ReflectionFlags[] flags = [ReflectionFlags.Verifies, ReflectionFlags.Verifies | ReflectionFlags.Detects | ReflectionFlags.Repairs, ReflectionFlags.Verifies | ReflectionFlags.Detects, ReflectionFlags.None];
        long[] ids;
        await using (var connection = await fixture.Database.DataSource.OpenConnectionAsync(Ct))
        await using (var transaction = await connection.BeginTransactionAsync(Ct))
        {
            var records = Enumerable.Range(0, 5).Select(i => new CompletionRecord(
                id, 4, 1_000_000 + id, i, 0, "What is 9 + 37?", [1], $"<think>\n9+37=46\ncheck: 46-37=9 yes\n</think>\n\\boxed{{46}} ({i})", [-0.5f], "stop")).ToList();
            ids = await SampleStore.WriteCompletionsAsync(connection, transaction, records, Ct);
            await SampleStore.WriteRewardsAsync(connection, transaction, ids[..4], [1.0, 1.0, 0.0, 1.0], flags, Ct);
            await transaction.CommitAsync(Ct);
        }

        var errors = new List<string>();
        var page = await fixture.NewPageAsync(errors);
        await page.GotoAsync($"{fixture.BaseUrl}/#/campaigns/{id}");
        await page.WaitForFunctionAsync("() => window.__charts.self_verification && window.__charts.self_verification.x.length === 5", null, new() { Timeout = 15_000 });

        // Per step: the stored shares, a null kept null (drawn as a gap, not as zero), the step without keys all null.
        for (var f = 0; f < fields.Length; f++)
        {
            await AssertSeriesAsync(page, "self_verification", fields[f], f == 0 ? [0, 1, 2, 3, 4] : null, steps.Select(s => s[f]));
        }

        await AssertSeriesAsync(page, "self_verification_eval", "accuracy_first_attempt", [-1, 4], [0.25, 0.375]);
        await AssertSeriesAsync(page, "self_verification_eval", "accuracy_final", null, [0.25, 0.5]);
        await AssertSeriesAsync(page, "self_verification_eval", "repair_fraction", null, [0.0, 0.125]);
        Assert.Equal(1, await page.Locator("#chart-self_verification .uplot").CountAsync());
        Assert.Equal(1, await page.Locator("#chart-self_verification_eval .uplot").CountAsync());
        Assert.Equal("Self-verification per step", await page.Locator("#chart-self_verification h3").InnerTextAsync());
        // Each series' legend entry names the metric.
        var legend = await page.Locator("#chart-self_verification .u-legend").TextContentAsync();
        foreach (var field in fields)
        {
            Assert.Contains(field, legend, StringComparison.Ordinal);
        }

        // The sample browser: every completion with its flags, then each reflection filter narrows the list to exactly
        // the completions with that bit, as the API returns them.
        await WaitForCountAsync(page, 5);
        Assert.Equal(ids, await ShownIdsAsync(page));
        string[] tags = ["verifies", "verifies · detects · repairs", "verifies · detects", "no check"];
        for (var i = 0; i < tags.Length; i++)
        {
            Assert.Equal(tags[i], await page.Locator($"#sample-list .sample[data-completion-id='{ids[i]}'] .meta .reflection").InnerTextAsync());
        }

        Assert.Equal(0, await page.Locator($"#sample-list .sample[data-completion-id='{ids[4]}'] .meta .reflection").CountAsync());
        foreach (var (kind, expected) in new (string, long[])[] { ("repair", [ids[1]]), ("detect", [ids[1], ids[2]]), ("verify", [ids[0], ids[1], ids[2]]) })
        {
            using var api = await fixture.GetJsonAsync($"/api/campaigns/{id}/samples?reflection={kind}");
            Assert.Equal(expected, api.RootElement.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("completion_id").GetInt64()));
            await page.SelectOptionAsync("#sample-filters select[name=reflection]", kind);
            await page.ClickAsync("#sample-filters button[type=submit]");
            await page.WaitForFunctionAsync(
                "n => document.querySelectorAll('#sample-list .sample').length === n && document.querySelector('#sample-message').textContent.endsWith('(end)')",
                expected.Length, new() { Timeout = 15_000 });
            Assert.Equal(expected, await ShownIdsAsync(page));
            if (kind == "repair")
            {
                await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "self-verification.png"), FullPage = true });
            }
        }

        await page.SelectOptionAsync("#sample-filters select[name=reflection]", "");
        await page.ClickAsync("#sample-filters button[type=submit]");
        await WaitForCountAsync(page, 5);
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
