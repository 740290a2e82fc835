using System.Globalization;
using System.Net;
using System.Text.Json;
using DeepSeekRL.Grains;
using DeepSeekRL.Grains.Campaigns;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace DeepSeekRL.Silo.Api;

/// <summary>
/// The <c>api</c> role's HTTP API (read side): campaigns, their steps' metrics and evaluations, as JSON, on loopback
/// by default. Every id is validated (a bad one is a 400 with a message; an unknown one a 404).
/// </summary>
internal static class ApiServer
{
    /// <summary>Starts the API; returns the running app (dispose to stop).</summary>
    public static async Task<WebApplication> StartAsync(NpgsqlDataSource dataSource, IPAddress? address, int port, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(options =>
        {
            if (address is null)
            {
                options.ListenLocalhost(port);
            }
            else
            {
                options.Listen(address, port);
            }
        });
        var app = builder.Build();

        // The dashboard: static files built at set-up into the output directory (src/Silos/DeepSeekRL.Silo/Dashboard).
        var dashboard = Path.Combine(AppContext.BaseDirectory, "dashboard");
        if (Directory.Exists(dashboard))
        {
            var files = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(dashboard);
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
        }

        // Routing after the static files, so that "/" reaches index.html instead of the API's fallback endpoint.
        app.UseRouting();

        var repository = new CampaignRepository(dataSource);
        app.MapGet("/api/health", () => Results.Json(new { status = "ok" }));
        app.MapGet("/api/campaigns", async (CancellationToken ct) =>
            Results.Json((await repository.ListAsync(ct)).Select(ToJson)));
        app.MapGet("/api/campaigns/{id}", async (string id, CancellationToken ct) =>
        {
            if (!TryId(id, out var campaignId, out var bad))
            {
                return bad;
            }

            var status = await repository.GetStatusAsync(campaignId, ct);
            if (status is null)
            {
                return Error(404, $"campaign {campaignId} does not exist");
            }

            var json = ToJson(status);
            json["evaluations"] = await RowsAsync(dataSource, "SELECT metrics::text FROM evaluations WHERE campaign_id = $1 ORDER BY step", campaignId, ct);
            return Results.Json(json);
        });
        app.MapGet("/api/campaigns/{id}/steps", async (string id, CancellationToken ct) =>
        {
            if (!TryId(id, out var campaignId, out var bad))
            {
                return bad;
            }

            if (await repository.GetStatusAsync(campaignId, ct) is null)
            {
                return Error(404, $"campaign {campaignId} does not exist");
            }

            return Results.Json(await RowsAsync(dataSource, "SELECT metrics::text FROM step_metrics WHERE campaign_id = $1 ORDER BY step", campaignId, ct));
        });
        app.MapFallback(() => Error(404, "no such endpoint; see /api/campaigns"));
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException ex)
        {
            await app.DisposeAsync();
            throw new CommandLine.CliException($"--api-port: cannot listen on port {port}: {ex.Message}");
        }

        return app;
    }

    private static bool TryId(string text, out long id, out IResult bad)
    {
        bad = Results.Empty;
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out id) && id > 0)
        {
            return true;
        }

        bad = Error(400, $"campaign id '{(text.Length > 40 ? text[..40] + "..." : text)}': expected a positive integer");
        return false;
    }

    private static IResult Error(int status, string message) => Results.Json(new { error = message }, statusCode: status);

    private static async Task<List<JsonElement>> RowsAsync(NpgsqlDataSource dataSource, string sql, long id, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = id });
        var rows = new List<JsonElement>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            using var document = JsonDocument.Parse(reader.GetString(0));
            rows.Add(document.RootElement.Clone());
        }

        return rows;
    }

    private static Dictionary<string, object?> ToJson(CampaignStatus s) => new()
    {
        ["id"] = s.Id,
        ["name"] = s.Name,
        ["state"] = CampaignRepository.StateName(s.State),
        ["mode"] = s.Mode.ToString().ToLowerInvariant(),
        ["steps_completed"] = s.StepsCompleted,
        ["total_steps"] = s.TotalSteps,
        ["policy_version"] = s.PolicyVersion,
        ["error"] = s.Error,
        ["created_at"] = s.CreatedAt,
        ["counters"] = s.Counters,
    };
}
