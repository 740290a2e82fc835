using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Npgsql;

namespace DeepSeekRL.Silo.Demo;

/// <summary>The dashboard (the api role's HTTP server) served on loopback while the demo runs.</summary>
internal sealed class DemoDashboard : IAsyncDisposable
{
    private readonly WebApplication? _app;

    private DemoDashboard(WebApplication? app, string? url)
    {
        _app = app;
        Url = url;
    }

    /// <summary>The dashboard's address, or null when it is not served.</summary>
    public string? Url { get; }

    /// <summary>Starts the dashboard on 127.0.0.1:<paramref name="port"/>; a busy port is a warning, not an error.</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="port">The port (0 = none).</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The dashboard.</returns>
    public static async Task<DemoDashboard> StartAsync(NpgsqlDataSource dataSource, int port, CancellationToken cancellationToken)
    {
        if (port == 0)
        {
            return new DemoDashboard(null, null);
        }

        var (token, generated) = await Api.ApiToken.InitializeAsync(
            dataSource, Environment.GetEnvironmentVariable(Api.ApiToken.EnvironmentVariable), cancellationToken);
        if (generated is not null)
        {
            Console.WriteLine($"api token (printed once; the dashboard's controls need it): {generated}");
        }

        try
        {
            var app = await Api.ApiServer.StartAsync(dataSource, new Api.ApiServerOptions { Address = IPAddress.Loopback, Port = port }, token, cancellationToken);
            var url = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}/");
            Console.WriteLine($"dashboard: {url} (live while the demo runs)");
            return new DemoDashboard(app, url);
        }
        catch (IOException ex)
        {
            await Console.Error.WriteLineAsync($"deepseekrl: warning: the dashboard could not listen on 127.0.0.1:{port} ({ex.Message}); pass --api-port to pick another port. Continuing without it.");
            return new DemoDashboard(null, null);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }
}
