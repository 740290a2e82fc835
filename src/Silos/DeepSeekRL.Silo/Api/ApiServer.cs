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
    public static async Task<WebApplication> StartAsync(NpgsqlDataSource dataSource, IPAddress? address, int port, ApiToken token, CancellationToken cancellationToken)
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
        app.MapGet("/api/campaigns/{id}/evaluations", async (string id, CancellationToken ct) =>
        {
            if (!TryId(id, out var campaignId, out var bad))
            {
                return bad;
            }

            return await repository.GetStatusAsync(campaignId, ct) is null
                ? Error(404, $"campaign {campaignId} does not exist")
                : Results.Json(await RowsAsync(dataSource, "SELECT metrics::text FROM evaluations WHERE campaign_id = $1 ORDER BY step", campaignId, ct));
        });
        app.MapGet("/api/campaigns/{id}/policies", async (string id, CancellationToken ct) =>
        {
            if (!TryId(id, out var campaignId, out var bad))
            {
                return bad;
            }

            return await repository.GetStatusAsync(campaignId, ct) is null
                ? Error(404, $"campaign {campaignId} does not exist")
                : Results.Json(await RowsAsync(dataSource, """
                    SELECT json_build_object('version', version, 'sha256', sha256, 'size_bytes', size_bytes, 'created_at', created_at)::text
                      FROM policy_versions WHERE campaign_id = $1 ORDER BY version
                    """, campaignId, ct));
        });
        app.MapGet("/api/campaigns/{id}/samples", async (string id, HttpRequest request, CancellationToken ct) =>
        {
            if (!TryId(id, out var campaignId, out var bad))
            {
                return bad;
            }

            var query = SampleQuery.Parse(request.Query);
            if (query.Error is not null)
            {
                return Error(400, query.Error);
            }

            if (await repository.GetStatusAsync(campaignId, ct) is null)
            {
                return Error(404, $"campaign {campaignId} does not exist");
            }

            return Results.Json(await query.RunAsync(dataSource, campaignId, ct));
        });
        app.MapGet("/api/campaigns/{id}/export", async (string id, HttpContext context, CancellationToken ct) =>
        {
            if (!TryId(id, out var campaignId, out var bad))
            {
                await bad.ExecuteAsync(context);
                return;
            }

            if (await repository.GetStatusAsync(campaignId, ct) is null)
            {
                await Error(404, $"campaign {campaignId} does not exist").ExecuteAsync(context);
                return;
            }

            // The exporter's JSON writer flushes synchronously between its awaited pages.
            if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpBodyControlFeature>() is { } body)
            {
                body.AllowSynchronousIO = true;
            }

            context.Response.ContentType = "application/x-ndjson";
            context.Response.Headers.ContentDisposition = $"attachment; filename=\"campaign-{campaignId}.jsonl\"";
            await Grains.Stores.SftExporter.ExportAsync(dataSource, new Grains.Stores.SftExportFilter(campaignId), context.Response.Body, ct);
        });
        app.MapGet("/api/nodes", async (CancellationToken ct) => Results.Json(await RowsAsync(dataSource, """
            SELECT json_build_object('node_id', node_id, 'generation', generation, 'roles', roles, 'state', state,
                   'heartbeat_at', heartbeat_at, 'started_at', started_at, 'host', host, 'pid', pid,
                   'leases', (SELECT count(*) FROM work_items w WHERE w.state = 'running' AND w.lease_node = n.node_id AND w.lease_generation = n.generation),
                   'singletons', (SELECT coalesce(json_agg(name), '[]'::json) FROM singleton_leases s WHERE s.owner_node = n.node_id AND s.owner_generation = n.generation AND s.expires_at > now()))::text
              FROM nodes n ORDER BY node_id
            """, null, ct)));
        foreach (var (action, to, from) in new (string, CampaignState, CampaignState[])[]
        {
            ("pause", CampaignState.Paused, [CampaignState.Created, CampaignState.Running]),
            ("resume", CampaignState.Running, [CampaignState.Paused]),
            ("cancel", CampaignState.Cancelled, [CampaignState.Created, CampaignState.Running, CampaignState.Paused]),
        })
        {
            app.MapPost($"/api/campaigns/{{id}}/{action}", async (string id, HttpRequest request, CancellationToken ct) =>
            {
                if (!await token.AuthorizedAsync(request, ct))
                {
                    return Error(401, "this call changes state: send Authorization: Bearer <token> (printed when the api role first started)");
                }

                if (!TryId(id, out var campaignId, out var bad))
                {
                    return bad;
                }

                var state = await repository.TransitionAsync(campaignId, to, from, null, ct);
                if (state is null)
                {
                    return Error(404, $"campaign {campaignId} does not exist");
                }

                return state == to
                    ? Results.Json(new { state = CampaignRepository.StateName(state.Value) })
                    : Error(409, $"campaign {campaignId} is {CampaignRepository.StateName(state.Value)}; {action} applies to {string.Join(" or ", from.Select(CampaignRepository.StateName))} campaigns");
            });
        }

        app.MapPost("/api/campaigns", async (HttpRequest request, CancellationToken ct) =>
        {
            if (!await token.AuthorizedAsync(request, ct))
            {
                return Error(401, "this call changes state: send Authorization: Bearer <token> (printed when the api role first started)");
            }

            if (request.ContentLength is > Grains.Campaigns.CampaignSpecValidator.MaxFileBytes)
            {
                return Error(413, $"spec of {request.ContentLength} bytes; expected at most {Grains.Campaigns.CampaignSpecValidator.MaxFileBytes}");
            }

            string text;
            using (var reader = new StreamReader(request.Body))
            {
                var buffer = new char[Grains.Campaigns.CampaignSpecValidator.MaxFileBytes + 1];
                var read = await reader.ReadBlockAsync(buffer.AsMemory(), ct);
                if (read > Grains.Campaigns.CampaignSpecValidator.MaxFileBytes)
                {
                    return Error(413, $"spec over {Grains.Campaigns.CampaignSpecValidator.MaxFileBytes} bytes");
                }

                text = new string(buffer, 0, read);
            }

            JsonDocument document;
            try
            {
                document = Grains.Campaigns.CampaignSpecValidator.ParseJson(text);
            }
            catch (JsonException ex)
            {
                return Error(400, $"spec: invalid JSON: {ex.Message.Split('.')[0]}");
            }

            using (document)
            {
                // Relative paths in a posted spec resolve against the server's home (the checkout).
                var home = CommandLine.SiloEnvironment.Home();
                var validation = Grains.Campaigns.CampaignSpecValidator.Validate(document.RootElement, home);
                if (validation.Spec is null)
                {
                    return Results.Json(new { error = validation.Errors[0], errors = validation.Errors }, statusCode: 400);
                }

                var created = await repository.CreateAsync(validation.Spec, text, home, new Grains.Policies.PolicyRegistry(dataSource), ct);
                return created.Succeeded
                    ? Results.Json(new { id = created.Value.Id, train_rows = created.Value.TrainRows, eval_rows = created.Value.EvalRows, warnings = created.Value.Warnings }, statusCode: 201)
                    : Error(400, created.Error!);
            }
        });
        app.MapGet("/openapi.json", () => Results.Text(OpenApi.Document, "application/json"));
        app.MapFallback(() => Error(404, "no such endpoint; see /openapi.json"));
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

    private static async Task<List<JsonElement>> RowsAsync(NpgsqlDataSource dataSource, string sql, long? id, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(sql);
        if (id is { } value)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        var rows = new List<JsonElement>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            using var document = JsonDocument.Parse(reader.GetString(0));
            rows.Add(document.RootElement.Clone());
        }

        return rows;
    }

    /// <summary>A campaign's status as the API and <c>campaign list|status --json</c> print it.</summary>
    /// <param name="s">The status.</param>
    /// <returns>A JSON-serializable object.</returns>
    internal static Dictionary<string, object?> ToJson(CampaignStatus s) => new()
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
