using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DeepSeekRL.Testing;
using Microsoft.Playwright;

namespace DeepSeekRL.Dashboard.Tests;

/// <summary>
/// One real PostgreSQL database holding campaign 1 (examples/random-native.json, run to completion) and campaign 2 (the
/// same spec, created with <c>--detach</c> and never run, so it can be paused, resumed and cancelled), one real
/// <c>silo --roles api</c> child process with a configured token, and Debian's chromium driven by Playwright.
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    public const string Chromium = "/usr/bin/chromium";
    public const string Token = "dashboard-test-token-0123456789";

    private TestDatabase? _database;
    private CliChild? _silo;
    private IPlaywright? _playwright;

    public string BaseUrl { get; private set; } = "";

    public HttpClient Http { get; private set; } = new();

    public IBrowser Browser { get; private set; } = null!;

    public CliChild Silo => _silo!;

    /// <summary>The database the api role serves (a test may add campaigns and rows of its own).</summary>
    public TestDatabase Database => _database!;

    public string Spec { get; } = Path.Combine(RepositoryPaths.Root, "examples", "random-native.json");

    public static string Screenshots { get; } = Directory.CreateDirectory(Path.Combine(RepositoryPaths.Root, "artifacts", "screenshots")).FullName;

    public async ValueTask InitializeAsync()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing; infra/setup.sh installs the Debian package chromium");
        var server = await PostgresServer.SharedAsync();
        _database = await server.CreateDatabaseAsync();
        var run = await CliProcess.RunAsync(["campaign", "run", Spec, "--db", _database.ConnectionString], null, CancellationToken.None);
        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        var detached = await CliProcess.RunAsync(["campaign", "run", Spec, "--detach", "--db", _database.ConnectionString], null, CancellationToken.None);
        Assert.True(detached.ExitCode == 0, detached.StandardOutput + detached.StandardError);
        Assert.Equal("2", detached.StandardOutput.Trim().Split('\n')[^1].Trim());

        var port = FreePort();
        _silo = CliChild.Start("api", ["silo", "--roles", "api", "--api-port", port.ToString(CultureInfo.InvariantCulture), "--api-token", Token, "--db", _database.ConnectionString]);
        BaseUrl = $"http://127.0.0.1:{port}";
        Http = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        await WaitForApiAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Args = ["--no-sandbox"], Headless = true });
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        _silo?.Dispose();
        Http.Dispose();
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }

    /// <summary>
    /// A new page (1400 × 1000) whose script errors, and anything the Content-Security-Policy refused, are collected
    /// into <paramref name="errors"/>.
    /// </summary>
    public async Task<IPage> NewPageAsync(List<string> errors)
    {
        var page = await Browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        page.PageError += (_, error) => errors.Add(error);
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && message.Text.Contains("Content Security Policy", StringComparison.Ordinal))
            {
                lock (errors)
                {
                    errors.Add(message.Text);
                }
            }
        };
        return page;
    }

    public async Task<JsonDocument> GetJsonAsync(string path)
    {
        return JsonDocument.Parse(await Http.GetStringAsync(new Uri(path, UriKind.Relative)));
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private async Task WaitForApiAsync()
    {
        for (var i = 0; i < 150; i++)
        {
            try
            {
                using var response = await Http.GetAsync(new Uri("/api/health", UriKind.Relative));
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.False(_silo!.HasExited, _silo.Output);
            await Task.Delay(200);
        }

        Assert.Fail("the api role did not answer within 30 s: " + _silo!.Output);
    }
}
