using System.Globalization;
using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Storage.Stores;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
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
    public static async Task<WebApplication> StartAsync(NpgsqlDataSource dataSource, ApiServerOptions options, ApiToken token, CancellationToken cancellationToken)
    {
        var address = options.Address;
        var port = options.Port;
        var dataRoot = DataRoot.Open(options.DataRoot)
            ?? throw new CommandLine.CliException($"--data-root: '{options.DataRoot}' is not an existing directory");
        var builder = WebApplication.CreateSlimBuilder();

        // Warnings and errors (a request's failure with its error id; errors go to standard error), and the api's own
        // information lines (why a posted spec was refused).
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter(ApiLog.Category, LogLevel.Information);

        // The host's own start-up failures (a port in use) reach the caller as an exception and become the command's
        // one-line error; logging them too would print a second line.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.None);
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Error);
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
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(ApiLog.Category);
        app.UseSecurityHeaders();
        app.UseErrorBodies(logger);
        app.UseHostCheck(address, logger);
        app.UseQueryCheck();

        // The dashboard: static files built at set-up into the output directory (src/Silos/DeepSeekRL.Silo/Dashboard).
        var dashboard = Path.Combine(AppContext.BaseDirectory, "dashboard");
        if (Directory.Exists(dashboard))
        {
            var files = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(dashboard);
            var types = new Microsoft.AspNetCore.StaticFiles.FileExtensionContentTypeProvider();
            foreach (var (extension, type) in new[] { (".html", "text/html"), (".js", "text/javascript"), (".css", "text/css"), (".json", "application/json") })
            {
                types.Mappings[extension] = type + "; charset=utf-8";
            }

            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions { FileProvider = files, ContentTypeProvider = types });
        }

        // Routing after the static files, so that "/" reaches index.html instead of the API's fallback endpoint.
        app.UseRouting();
        app.UseQueryAllowList();
        var none = new QueryParameters();

        var repository = new CampaignStore(dataSource);
        var metrics = new MetricsStore(dataSource);
        app.MapGet("/api/health", () => Results.Json(new { status = "ok" })).WithMetadata(none);
        app.MapGet("/api/campaigns", async (CancellationToken ct) =>
            Results.Json((await repository.ListAsync(ct)).Select(ToJson))).WithMetadata(none);
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
            json["evaluations"] = Rows(await metrics.EvaluationsAsync(campaignId, -2, ct));
            return Results.Json(json);
        }).WithMetadata(none);
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

            return Results.Json(Rows(await metrics.StepsAsync(campaignId, -1, ct)));
        }).WithMetadata(none);
        app.MapGet("/api/campaigns/{id}/evaluations", async (string id, CancellationToken ct) =>
        {
            if (!TryId(id, out var campaignId, out var bad))
            {
                return bad;
            }

            return await repository.GetStatusAsync(campaignId, ct) is null
                ? Error(404, $"campaign {campaignId} does not exist")
                : Results.Json(Rows(await metrics.EvaluationsAsync(campaignId, -2, ct)));
        }).WithMetadata(none);
        app.MapGet("/api/campaigns/{id}/policies", async (string id, CancellationToken ct) =>
        {
            if (!TryId(id, out var campaignId, out var bad))
            {
                return bad;
            }

            return await repository.GetStatusAsync(campaignId, ct) is null
                ? Error(404, $"campaign {campaignId} does not exist")
                : Results.Json(Rows(await metrics.PolicyVersionsAsync(campaignId, ct)));
        }).WithMetadata(none);
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
        }).WithMetadata(SampleQuery.Parameters);
        app.MapGet("/api/campaigns/{id}/export", async (string id, HttpContext context, CancellationToken ct) =>
        {
            if (!TryId(id, out var campaignId, out var bad))
            {
                await bad.ExecuteAsync(context);
                return;
            }

            var format = context.Request.Query["format"];
            if (format.Count > 1 || format.Count == 1 && format[0] is not ("jsonl" or "parquet"))
            {
                await Error(400, $"format: '{string.Join(",", format.ToArray())}' is not a format (expected jsonl or parquet)").ExecuteAsync(context);
                return;
            }

            if (await repository.GetStatusAsync(campaignId, ct) is null)
            {
                await Error(404, $"campaign {campaignId} does not exist").ExecuteAsync(context);
                return;
            }

            if (format.Count == 1 && format[0] == "parquet")
            {
                // Written straight to the response: the Parquet writer never seeks (offsets are counted as it goes).
                context.Response.ContentType = "application/vnd.apache.parquet";
                context.Response.Headers.ContentDisposition = $"attachment; filename=\"campaign-{campaignId}.parquet\"";
                await Storage.Stores.SftExporter.ExportParquetAsync(dataSource, new Storage.Stores.SftExportFilter(campaignId), context.Response.Body, ct);
                return;
            }

            // The exporter's JSON writer flushes synchronously between its awaited pages.
            if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpBodyControlFeature>() is { } body)
            {
                body.AllowSynchronousIO = true;
            }

            context.Response.ContentType = "application/x-ndjson; charset=utf-8";
            context.Response.Headers.ContentDisposition = $"attachment; filename=\"campaign-{campaignId}.jsonl\"";
            await Storage.Stores.SftExporter.ExportAsync(dataSource, new Storage.Stores.SftExportFilter(campaignId), context.Response.Body, ct);
        }).WithMetadata(new QueryParameters("format"));
        app.MapGet("/api/nodes", async (CancellationToken ct) => Results.Json(await ClusterView.NodesAsync(dataSource, options.Grains, ct))).WithMetadata(none);
        foreach (var (action, to, from) in new (string, CampaignState, CampaignState[])[]
        {
            ("pause", CampaignState.Paused, [CampaignState.Created, CampaignState.Running]),
            ("resume", CampaignState.Running, [CampaignState.Paused]),
            ("cancel", CampaignState.Cancelled, [CampaignState.Created, CampaignState.Running, CampaignState.Paused]),
        })
        {
            app.MapPost($"/api/campaigns/{{id}}/{action}", async (string id, HttpContext context, CancellationToken ct) =>
            {
                if (await token.CheckAsync(context.Request, ct) is not ApiAuthorization.Granted and var refused)
                {
                    return ApiToken.Challenge(context, refused);
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
                    ? Results.Json(new { state = CampaignStore.StateName(state.Value) })
                    : Error(409, $"campaign {campaignId} is {CampaignStore.StateName(state.Value)}; {action} applies to {string.Join(" or ", from.Select(CampaignStore.StateName))} campaigns");
            }).WithMetadata(none);
        }

        app.MapPost("/api/campaigns", async (HttpContext context, CancellationToken ct) =>
        {
            var request = context.Request;
            if (await token.CheckAsync(request, ct) is not ApiAuthorization.Granted and var refused)
            {
                return ApiToken.Challenge(context, refused);
            }

            if (request.ContentLength is > CampaignSpecValidator.MaxFileBytes)
            {
                return Error(413, $"spec of {request.ContentLength} bytes; expected at most {CampaignSpecValidator.MaxFileBytes}");
            }

            string text;
            using (var reader = new StreamReader(request.Body))
            {
                var buffer = new char[CampaignSpecValidator.MaxFileBytes + 1];
                var read = await reader.ReadBlockAsync(buffer.AsMemory(), ct);
                if (read > CampaignSpecValidator.MaxFileBytes)
                {
                    return Error(413, $"spec over {CampaignSpecValidator.MaxFileBytes} bytes");
                }

                text = new string(buffer, 0, read);
            }

            JsonDocument document;
            try
            {
                document = CampaignSpecValidator.ParseJson(text);
            }
            catch (JsonException ex)
            {
                return Error(400, $"spec: invalid JSON: {ex.Message.Split('.')[0]}");
            }

            using (document)
            {
                return await CreateCampaignAsync(document.RootElement, text, dataRoot, dataSource, repository, logger, ct);
            }
        }).WithMetadata(none);
        app.MapGet("/openapi.json", () => Results.Text(OpenApi.Document, "application/json; charset=utf-8")).WithMetadata(none);
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

    /// <summary>
    /// Creates a campaign from a posted spec whose paths all lie inside the data root (relative ones resolve against
    /// it). A refused or unreadable file is named, never quoted: no line counts or bytes of it reach the client (the
    /// full reason is logged).
    /// </summary>
    private static async Task<IResult> CreateCampaignAsync(
        JsonElement root, string text, DataRoot dataRoot, NpgsqlDataSource dataSource, CampaignStore repository, ILogger logger, CancellationToken ct)
    {
        // PostgreSQL text cannot hold U+0000 (the spec, its name and its field names are stored): refuse it up front.
        if (FindNul(root, "spec") is { } nul)
        {
            return Error(400, $"{nul}: contains U+0000");
        }

        var outside = dataRoot.CheckSpec(root);
        if (outside.Count > 0)
        {
            return Results.Json(new { error = outside[0], errors = outside }, statusCode: 400);
        }

        var validation = CampaignSpecValidator.Validate(root, dataRoot.Path);
        if (validation.Spec is null)
        {
            return Results.Json(new { error = validation.Errors[0], errors = validation.Errors }, statusCode: 400);
        }

        outside = dataRoot.CheckResolved(validation.Spec);
        if (outside.Count > 0)
        {
            return Results.Json(new { error = outside[0], errors = outside }, statusCode: 400);
        }

        var created = await new CampaignCreator(repository).CreateAsync(validation.Spec, text, dataRoot.Path, new Storage.Policies.PolicyRegistry(dataSource), ct);
        if (!created.Succeeded)
        {
            logger.CampaignRefused(created.Error!);
            return Error(400, Redact(created.Error!, validation.Spec, dataRoot));
        }

        // A skipped row's warning quotes the file ("line 3: invalid JSON: '#' is ..."); the client gets the count only.
        var warnings = created.Value.Warnings.Count == 0
            ? []
            : new[] { $"dataset: some rows were malformed and skipped ({created.Value.Warnings.Count} reported in the server's log)" };
        foreach (var warning in created.Value.Warnings)
        {
            logger.CampaignWarning(warning);
        }

        return Results.Json(new { id = created.Value.Id, train_rows = created.Value.TrainRows, eval_rows = created.Value.EvalRows, warnings }, statusCode: 201);
    }

    /// <summary>
    /// The client's version of a campaign-creation failure: the field and its file, and what kind of file was expected,
    /// without anything read from the file. Failures about the spec's own JSON (the reward rules) are kept.
    /// </summary>
    internal static string Redact(string error, CampaignSpec spec, DataRoot dataRoot)
    {
        string Relative(string? path) => path is null ? "?" : Path.GetRelativePath(dataRoot.Path, path);
        var native = spec.Policy as NativePolicySpec;
        if (error.StartsWith("rewards:", StringComparison.Ordinal))
        {
            return error;
        }

        if (error.StartsWith("dataset", StringComparison.Ordinal))
        {
            return $"dataset.path = {Relative(spec.Dataset.Path)}: not a valid dataset (expected JSONL objects with \"{spec.Dataset.PromptField}\"; details in the server's log)";
        }

        if (error.StartsWith("evaluation", StringComparison.Ordinal))
        {
            return "evaluation: the evaluation set is not a valid dataset or is empty (details in the server's log)";
        }

        if (error.StartsWith("policy.native.tokenizer", StringComparison.Ordinal))
        {
            return $"policy.native.tokenizer = {Relative(native?.TokenizerPath)}: not a valid tokenizer for this model (details in the server's log)";
        }

        if (error.StartsWith("policy.native.model", StringComparison.Ordinal))
        {
            return $"policy.native.model = {Relative(native?.ModelDirectory)}: not a valid model directory (details in the server's log)";
        }

        if (error.StartsWith("policy.native", StringComparison.Ordinal))
        {
            return $"policy.native: {Relative(native?.ConfigPath ?? native?.ModelDirectory)}: not a valid model config (details in the server's log)";
        }

        return "the campaign could not be created (details in the server's log)";
    }

    /// <summary>The JSON path of the first name or string holding U+0000, or null.</summary>
    private static string? FindNul(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return element.GetString()!.Contains('\0', StringComparison.Ordinal) ? path : null;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (FindNul(item, $"{path}[{i++}]") is { } found)
                    {
                        return found;
                    }
                }

                return null;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    var child = path == "spec" ? property.Name : $"{path}.{property.Name}";
                    if (property.Name.Contains('\0', StringComparison.Ordinal))
                    {
                        return $"a key in {path}";
                    }

                    if (FindNul(property.Value, child) is { } found)
                    {
                        return found;
                    }
                }

                return null;
            default:
                return null;
        }
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

    private static List<JsonElement> Rows(IReadOnlyList<StoredMetrics> stored)
    {
        var rows = new List<JsonElement>(stored.Count);
        foreach (var row in stored)
        {
            using var document = JsonDocument.Parse(row.Json);
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
        ["state"] = CampaignStore.StateName(s.State),
        ["mode"] = s.Mode.ToString().ToLowerInvariant(),
        ["steps_completed"] = s.StepsCompleted,
        ["total_steps"] = s.TotalSteps,
        ["policy_version"] = s.PolicyVersion,
        ["error"] = s.Error,
        ["created_at"] = s.CreatedAt,
        ["counters"] = s.Counters,
    };
}
