using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Grains.Hosting;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Stores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace DeepSeekRL.Silo.Campaigns;

/// <summary><c>campaign run|list|status|pause|resume|cancel</c> and <c>silo --roles</c>.</summary>
public static class CampaignCommands
{
    /// <summary>Creates the <c>campaign</c> command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var command = new Command("campaign", "Run and manage RL campaigns (rollout, reward, learner and dataset grains on PostgreSQL).");
        command.Subcommands.Add(Run());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Status());
        command.Subcommands.Add(Transition("pause", "Stop cutting new steps (work handed out finishes).", CampaignState.Paused,
            [CampaignState.Created, CampaignState.Running]));
        command.Subcommands.Add(Transition("resume", "Continue a paused campaign.", CampaignState.Running, [CampaignState.Paused]));
        command.Subcommands.Add(Transition("cancel", "Stop a campaign for good and cancel its pending work.", CampaignState.Cancelled,
            [CampaignState.Created, CampaignState.Running, CampaignState.Paused]));
        return command;
    }

    /// <summary>Creates the <c>silo</c> command.</summary>
    /// <returns>The command.</returns>
    public static Command CreateSilo()
    {
        var roles = new Option<string>("--roles") { Description = "Comma-separated roles: rollout, reward, learner, api (default: rollout,reward,learner).", DefaultValueFactory = _ => "rollout,reward,learner" };
        var apiPort = new Option<int>("--api-port") { Description = "The api role's port (default 5080).", DefaultValueFactory = _ => 5080 };
        var apiHost = new Option<string?>("--api-host") { Description = "The api role's address (default loopback only); requests must name it, or localhost, 127.0.0.1 or [::1], as their Host." };
        var dataRoot = new Option<string?>("--data-root")
        {
            Description = "The directory every path in a spec posted to the api role must lie in, symlinks resolved; relative paths resolve against it (default: the checkout's examples directory).",
        };
        var apiToken = new Option<string?>("--api-token") { Description = "The bearer token of state-changing API calls (default: $DEEPSEEKRL_API_TOKEN, else generated at the cluster's first api start and printed once)." };
        var nodeId = new Option<string?>("--node-id") { Description = "This silo's name (default host-pid); a restarted silo with the same name is a new generation of it." };
        var clusterHost = new Option<string?>("--cluster-host") { Description = "The IP address this silo listens on and advertises to the other silos (default 127.0.0.1: one machine; a LAN address for several)." };
        var siloPort = new Option<int>("--silo-port") { Description = "The silo-to-silo port (default: a free port).", DefaultValueFactory = _ => 0 };
        var gatewayPort = new Option<int>("--gateway-port") { Description = "The Orleans gateway (client) port (default: a free port).", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "Model kernel threads (default 2).", DefaultValueFactory = _ => 2 };
        var campaign = new Option<long?>("--campaign") { Description = "Only work on this campaign." };
        var quiet = new Option<bool>("--quiet") { Description = "No log lines." };
        var command = new Command("silo", "A long-running Orleans silo that joins the database's cluster (silos find each other through PostgreSQL) with the given roles; stop it with Ctrl-C or SIGTERM.");
        var rolloutBatch = new Option<int>("--rollout-batch")
        {
            Description = "Rollout items claimed and generated together in one batch (default 1; a silo alone on its machine is faster with a whole step's items).",
            DefaultValueFactory = _ => 1,
        };
        foreach (var option in new Option[] { roles, nodeId, threads, campaign, quiet, apiPort, apiHost, apiToken, dataRoot, rolloutBatch, clusterHost, siloPort, gatewayPort })
        {
            command.Options.Add(option);
        }

        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            var list = ParseRoles(parseResult.GetValue(roles)!);
            var batch = parseResult.GetValue(rolloutBatch);
            if (batch is < 1 or > 4096)
            {
                throw new CliException($"--rollout-batch: {batch} is not an integer in 1..4096");
            }

            var clusterAddress = System.Net.IPAddress.Loopback;
            if (parseResult.GetValue(clusterHost) is { } clusterText && !System.Net.IPAddress.TryParse(clusterText, out clusterAddress))
            {
                throw new CliException($"--cluster-host: '{clusterText}' is not an IP address (e.g. 127.0.0.1 or 10.0.0.5)");
            }

            foreach (var (name, port) in new[] { ("--silo-port", parseResult.GetValue(siloPort)), ("--gateway-port", parseResult.GetValue(gatewayPort)) })
            {
                if (port is < 0 or > 65535)
                {
                    throw new CliException($"{name}: {port} is not a port (0 picks a free one; 1..65535)");
                }
            }

            System.Net.IPAddress? address = null;
            if (parseResult.GetValue(apiHost) is { } host && !System.Net.IPAddress.TryParse(host, out address))
            {
                throw new CliException($"--api-host: '{host}' is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)");
            }

            await using var db = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
            var settings = new SiloSettings
            {
                Engines = HostEngines.All,
                Roles = list,
                Name = parseResult.GetValue(nodeId) ?? $"{Environment.MachineName}-{Environment.ProcessId}",
                CampaignId = parseResult.GetValue(campaign),
                RolloutBatch = batch,
                Address = clusterAddress,
                SiloPort = parseResult.GetValue(siloPort),
                GatewayPort = parseResult.GetValue(gatewayPort),
            };
            var quietly = parseResult.GetValue(quiet);
            using var silo = await SiloHost.StartAsync(db.DataSource, settings, parseResult.GetValue(threads),
                quietly ? null : logging => logging.AddProvider(new ConsoleLines(TimeProvider.System)), cancellationToken);
            WebApplicationHolder? holder = null;
            if (list.Contains(SiloRoles.Api))
            {
                var (token, generated) = await Api.ApiToken.InitializeAsync(
                    db.DataSource, parseResult.GetValue(apiToken) ?? Environment.GetEnvironmentVariable(Api.ApiToken.EnvironmentVariable), cancellationToken);
                if (generated is not null)
                {
                    Console.WriteLine($"api token (printed once; state-changing calls need 'Authorization: Bearer TOKEN'): {generated}");
                }

                holder = new WebApplicationHolder(await Api.ApiServer.StartAsync(
                    db.DataSource,
                    new Api.ApiServerOptions
                    {
                        Address = address,
                        Port = parseResult.GetValue(apiPort),
                        DataRoot = parseResult.GetValue(dataRoot) ?? Api.ApiServerOptions.DefaultDataRoot(),
                        Grains = silo.Services.GetRequiredService<Orleans.IGrainFactory>(),
                    },
                    token,
                    cancellationToken));
            }

            await using var api = holder;
            if (api is not null)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"api on http://{(address is null ? "127.0.0.1" : address.ToString())}:{parseResult.GetValue(apiPort)}/api/campaigns"));
            }

            var local = silo.Services.GetRequiredService<Orleans.Runtime.ILocalSiloDetails>();
            Console.WriteLine($"silo {local.Name} ({local.SiloAddress.Endpoint}, generation {local.SiloAddress.Generation}) running roles {string.Join(",", list)} in cluster {local.ClusterId} on {db.Target.Endpoint}; Ctrl-C stops it");
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }

            using (var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(25)))
            {
                await silo.StopAsync(stopping.Token);
            }

            Console.WriteLine("silo stopped");
            return 0;
        });
        return command;
    }

    private sealed class WebApplicationHolder(Microsoft.AspNetCore.Builder.WebApplication app) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => app.DisposeAsync();
    }

    private static IReadOnlyList<string> ParseRoles(string text)
    {
        var list = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToList();
        foreach (var role in list)
        {
            if (role is not (SiloRoles.Rollout or SiloRoles.Reward or SiloRoles.Learner or SiloRoles.Api))
            {
                throw new CliException($"--roles: unknown role '{role}'; expected a comma-separated list of rollout, reward, learner, api");
            }
        }

        return list.Count == 0 ? throw new CliException("--roles: empty; expected a comma-separated list of rollout, reward, learner, api") : list;
    }

    private static Command Run()
    {
        var spec = new Argument<FileInfo>("SPEC") { Description = "The campaign spec (JSON; see docs/campaign-spec.md)." };
        var detach = new Option<bool>("--detach") { Description = "Only create the campaign and print its id; silos of the cluster run it." };
        var threads = new Option<int>("--threads") { Description = "Model kernel threads (default 2).", DefaultValueFactory = _ => 2 };
        var command = new Command("run", "Validate a spec, create the campaign and run it here with every role (rollout, reward, learner) until it ends.");
        command.Arguments.Add(spec);
        command.Options.Add(detach);
        command.Options.Add(threads);
        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            var file = parseResult.GetValue(spec)!;
            var validation = CampaignSpecValidator.Load(file.FullName);
            if (validation.Spec is null)
            {
                foreach (var error in validation.Errors.Skip(1))
                {
                    await Console.Error.WriteLineAsync($"deepseekrl: error: {file.Name}: {error}");
                }

                throw new CliException($"{file.Name}: {validation.Errors[0]}" + (validation.Errors.Count > 1 ? $" (and {validation.Errors.Count - 1} more above)" : string.Empty));
            }

            await using var db = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
            var created = (await new CampaignCreator(new CampaignStore(db.DataSource)).CreateAsync(validation.Spec, await File.ReadAllTextAsync(file.FullName, cancellationToken),
                file.DirectoryName!, new PolicyRegistry(db.DataSource), cancellationToken)).OrExit();
            foreach (var warning in created.Warnings)
            {
                await Console.Error.WriteLineAsync($"deepseekrl: warning: {warning}");
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"campaign {created.Id} '{validation.Spec.Name}': {created.TrainRows} train and {created.EvalRows} eval prompts ({created.MalformedRows} malformed rows skipped), {validation.Spec.Algorithm.Steps} steps"));
            if (parseResult.GetValue(detach))
            {
                Console.WriteLine(created.Id.ToString(CultureInfo.InvariantCulture));
                return 0;
            }

            return await RunHereAsync(db.DataSource, created.Id, parseResult.GetValue(threads), parseResult.GetValue(SiloCommandLine.VerboseOption), cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunHereAsync(NpgsqlDataSource dataSource, long campaignId, int threads, bool verbose, CancellationToken cancellationToken)
    {
        var repository = new CampaignStore(dataSource);
        var stopwatch = Stopwatch.StartNew();
        var lastStep = -1;
        var lastEval = -2;
        CampaignStatus? status;
        var settings = new SiloSettings { Engines = HostEngines.All, CampaignId = campaignId, Name = $"{Environment.MachineName}-run-{Environment.ProcessId}", Private = true };
        using (var silo = await SiloHost.StartAsync(dataSource, settings, threads,
            verbose ? logging => logging.AddProvider(new ConsoleLines(TimeProvider.System)) : null, cancellationToken))
        {
            try
            {
                while (true)
                {
                    await Task.Delay(250, cancellationToken);
                    status = await repository.GetStatusAsync(campaignId, cancellationToken);
                    (lastStep, lastEval) = await PrintProgressAsync(dataSource, campaignId, status!, lastStep, lastEval, stopwatch, cancellationToken);
                    if (status!.State is CampaignState.Completed or CampaignState.Cancelled or CampaignState.Failed)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await StopQuietlyAsync(silo);
                Console.Error.WriteLine($"deepseekrl: stopped; campaign {campaignId} is kept and continues on any silo (./deepseekrl silo --campaign {campaignId})");
                return 130;
            }

            await StopQuietlyAsync(silo);
        }

        var counters = string.Join(", ", status.Counters.Where(c => c.Value != 0).Select(c => $"{c.Key} {c.Value}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"campaign {campaignId} {CampaignStore.StateName(status.State)} after {stopwatch.Elapsed.TotalSeconds:0.0} s: {status.StepsCompleted}/{status.TotalSteps} steps, policy version {status.PolicyVersion}; {counters}"));
        if (status.State == CampaignState.Failed)
        {
            throw new CliException($"campaign {campaignId} failed: {status.Error}");
        }

        Console.WriteLine($"export its accepted samples: ./deepseekrl export --campaign {campaignId} --out samples.jsonl");
        return status.State == CampaignState.Completed ? 0 : 1;
    }

    private static async Task StopQuietlyAsync(Microsoft.Extensions.Hosting.IHost silo)
    {
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(25));
        try
        {
            await silo.StopAsync(stopping.Token);
        }
        catch (OperationCanceledException)
        {
            // Whatever did not stop in time is released when its leases expire.
        }
    }

    private static async Task<(int Step, int Eval)> PrintProgressAsync(
        NpgsqlDataSource dataSource, long campaignId, CampaignStatus status, int lastStep, int lastEval, Stopwatch stopwatch, CancellationToken cancellationToken)
    {
        var store = new MetricsStore(dataSource);
        {
            foreach (var row in await store.StepsAsync(campaignId, lastStep, cancellationToken))
            {
                lastStep = row.Step;
                using var metrics = JsonDocument.Parse(row.Json);
                var m = metrics.RootElement;
                double Get(string name) => m.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : double.NaN;
                var tokensPerSecond = Get("completion_tokens") / Math.Max(1e-9, Get("sampling_seconds"));

                // A step without an update has no loss: say why instead of printing NaN.
                var update = m.TryGetProperty("update_skipped", out var skipped) && skipped.ValueKind == JsonValueKind.String
                    ? $"update skipped ({skipped.GetString()})"
                    : double.IsNaN(Get("loss")) ? "no update" : string.Create(CultureInfo.InvariantCulture, $"loss {Get("loss"),8:0.0000}");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{Bar(lastStep + 1, status.TotalSteps)} step {lastStep + 1}/{status.TotalSteps}  reward {Get("reward_mean"),6:0.000} ± {Get("reward_std"):0.000}  len {Get("response_length_mean"),5:0.0}  {update}  {tokensPerSecond,7:0} tok/s  [{stopwatch.Elapsed.TotalSeconds:0.0} s]"));
            }
        }

        {
            foreach (var row in await store.EvaluationsAsync(campaignId, lastEval, cancellationToken))
            {
                lastEval = row.Step;
                using var metrics = JsonDocument.Parse(row.Json);
                var m = metrics.RootElement;
                var accuracy = m.TryGetProperty("accuracy", out var a) && a.ValueKind == JsonValueKind.Number ? a.GetDouble() : double.NaN;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  eval after step {lastEval + 1}: accuracy {accuracy:0.000} on {m.GetProperty("prompts").GetDouble():0} prompts"));
            }
        }

        return (lastStep, lastEval);
    }

    private static string Bar(int done, int total)
    {
        const int Width = 20;
        var filled = total <= 0 ? Width : (int)Math.Round(Width * (double)done / total);
        return "[" + new string('#', filled) + new string('.', Width - filled) + "]";
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "One JSON object per campaign." };
        var command = new Command("list", "List campaigns, newest first.");
        command.Options.Add(json);
        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            await using var db = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
            var list = await new CampaignStore(db.DataSource).ListAsync(cancellationToken);
            if (parseResult.GetValue(json))
            {
                foreach (var status in list)
                {
                    Console.WriteLine(JsonSerializer.Serialize(Api.ApiServer.ToJson(status)));
                }

                return 0;
            }

            Console.WriteLine($"{"ID",6}  {"NAME",-24} {"STATE",-10} {"MODE",-8} {"STEPS",9}  {"VERSION",7}  CREATED");
            foreach (var s in list)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{s.Id,6}  {s.Name,-24} {CampaignStore.StateName(s.State),-10} {s.Mode.ToString().ToLowerInvariant(),-8} {s.StepsCompleted,4}/{s.TotalSteps,-4}  {s.PolicyVersion,7}  {s.CreatedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z"));
            }

            return 0;
        });
        return command;
    }

    private static Command Status()
    {
        var id = new Argument<long>("ID") { Description = "The campaign id." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("status", "A campaign's state, progress, counters, last step metrics and evaluations.");
        command.Arguments.Add(id);
        command.Options.Add(json);
        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            await using var db = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
            var campaignId = parseResult.GetValue(id);
            var status = await new CampaignStore(db.DataSource).GetStatusAsync(campaignId, cancellationToken)
                ?? throw new CliException($"campaign {campaignId} does not exist (see ./deepseekrl campaign list)");
            var store = new MetricsStore(db.DataSource);
            var evaluations = (await store.EvaluationsAsync(campaignId, -2, cancellationToken)).Select(e => JsonDocument.Parse(e.Json).RootElement.Clone()).ToList();
            JsonElement? last = await store.LastStepAsync(campaignId, cancellationToken) is { } newest ? JsonDocument.Parse(newest.Json).RootElement.Clone() : null;

            if (parseResult.GetValue(json))
            {
                var o = Api.ApiServer.ToJson(status);
                o["evaluations"] = evaluations;
                o["last_step"] = last;
                Console.WriteLine(JsonSerializer.Serialize(o));
                return 0;
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"campaign {status.Id} '{status.Name}': {CampaignStore.StateName(status.State)}, {status.Mode.ToString().ToLowerInvariant()}, step {status.StepsCompleted}/{status.TotalSteps}, policy version {status.PolicyVersion}"));
            if (status.Error is not null)
            {
                Console.WriteLine($"  error: {status.Error}");
            }

            foreach (var (name, value) in status.Counters)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-32} {value}"));
            }

            foreach (var e in evaluations)
            {
                Console.WriteLine($"  eval step {e.GetProperty("step")}: {e}");
            }

            if (last is { } l)
            {
                Console.WriteLine($"  last step: {l}");
            }

            return 0;
        });
        return command;
    }

    private static Command Transition(string name, string description, CampaignState to, CampaignState[] from)
    {
        var id = new Argument<long>("ID") { Description = "The campaign id." };
        var command = new Command(name, description);
        command.Arguments.Add(id);
        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            await using var db = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
            var campaignId = parseResult.GetValue(id);
            var state = await new CampaignStore(db.DataSource).TransitionAsync(campaignId, to, from, null, cancellationToken)
                ?? throw new CliException($"campaign {campaignId} does not exist (see ./deepseekrl campaign list)");
            if (state != to)
            {
                throw new CliException($"campaign {campaignId} is {CampaignStore.StateName(state)}; {name} applies to {string.Join(" or ", from.Select(CampaignStore.StateName))} campaigns");
            }

            Console.WriteLine($"campaign {campaignId}: {CampaignStore.StateName(state)}");
            return 0;
        });
        return command;
    }
}
