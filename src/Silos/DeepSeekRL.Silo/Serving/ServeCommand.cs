using System.CommandLine;
using System.Globalization;
using System.Net;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Silo.Model;
using DeepSeekRL.Tokenizers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace DeepSeekRL.Silo.Serving;

/// <summary>
/// <c>deepseekrl serve --model DIR [--tokenizer FILE] [--port N] [--host ADDR] [--threads N] [--backend native|torch]
/// [--device D]</c>: an OpenAI-compatible HTTP server (<c>/v1/models</c>, <c>/v1/completions</c>, <c>/v1/chat/completions</c>,
/// streaming and log-probs) for a checkpoint, on either engine (<see cref="IPolicySampler"/>). One thread runs the model (a transformer is not thread-safe); admitted requests (at most
/// <c>--max-queue</c>) take turns in slices of <c>--max-batch</c> sequences; <c>n</c> (1..64) samples of a prompt draw
/// from independent per-sequence streams of the request's seed (random when none is given; streaming takes n = 1 only).
/// </summary>
public static class ServeCommand
{
    /// <summary>Creates the command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "The model directory (config.json + model.safetensors).", Required = true };
        var tokenizer = new Option<FileInfo?>("--tokenizer") { Description = "tokenizer.json (default: the one in the model directory)." };
        var port = new Option<int>("--port") { Description = "The TCP port (default 8000; 0 = any free port, printed).", DefaultValueFactory = _ => 8000 };
        var host = new Option<string>("--host") { Description = "The address to listen on (default 127.0.0.1, loopback only).", DefaultValueFactory = _ => "127.0.0.1" };
        var threads = new Option<int>("--threads") { Description = "The engine's threads (OpenBLAS, or libtorch's intra-op; default 2).", DefaultValueFactory = _ => 2 };
        var backend = BackendOptions.Backend();
        var device = BackendOptions.Device();
        var name = new Option<string?>("--served-model-name") { Description = "The model id reported and accepted (default: the model directory's name)." };
        var defaults = new ServeLimits();
        var maxBody = new Option<long>("--max-body-bytes") { Description = $"The largest request body in bytes; larger ones get 413 (default {defaults.MaxBodyBytes}).", DefaultValueFactory = _ => defaults.MaxBodyBytes };
        var maxQueue = new Option<int>("--max-queue") { Description = $"Requests admitted at once, generating or waiting; more get 429 with Retry-After (default {defaults.MaxQueue}).", DefaultValueFactory = _ => defaults.MaxQueue };
        var maxSequences = new Option<int>("--max-sequences") { Description = $"Prompts x n of one request, at most (default {defaults.MaxSequences}).", DefaultValueFactory = _ => defaults.MaxSequences };
        var maxBatch = new Option<int>("--max-batch") { Description = $"Sequences generated together; requests take turns batch by batch (default {defaults.MaxBatch}).", DefaultValueFactory = _ => defaults.MaxBatch };
        var command = new Command("serve", "Serve a checkpoint over an OpenAI-compatible HTTP API (/v1/models, /v1/completions, /v1/chat/completions).");
        foreach (var option in new Option[] { model, tokenizer, port, host, threads, name, maxBody, maxQueue, maxSequences, maxBatch, backend, device })
        {
            command.Options.Add(option);
        }

        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            var portValue = parseResult.GetValue(port);
            if (portValue is < 0 or > 65535)
            {
                throw new CliException($"--port: {portValue} is not in 0..65535");
            }

            var threadCount = parseResult.GetValue(threads);
            if (threadCount < 1)
            {
                throw new CliException($"--threads: {threadCount} is not a positive number");
            }

            var (backendName, deviceName) = BackendOptions.Read(parseResult, backend, device);

            var limits = new ServeLimits
            {
                MaxBodyBytes = parseResult.GetValue(maxBody),
                MaxQueue = parseResult.GetValue(maxQueue),
                MaxSequences = parseResult.GetValue(maxSequences),
                MaxBatch = parseResult.GetValue(maxBatch),
            };
            if (limits.Validate() is { } invalid)
            {
                throw new CliException(invalid);
            }

            var hostValue = parseResult.GetValue(host)!;
            IPAddress? address = null;
            if (hostValue != "localhost" && !IPAddress.TryParse(hostValue, out address))
            {
                throw new CliException($"--host: '{hostValue}' is not an IP address or localhost");
            }

            var modelDir = parseResult.GetValue(model)!.FullName;
            var tokenizerPath = parseResult.GetValue(tokenizer)?.FullName ?? Path.Combine(modelDir, "tokenizer.json");
            if (!File.Exists(tokenizerPath))
            {
                throw new CliException($"--tokenizer: {tokenizerPath} does not exist (pass --tokenizer or put tokenizer.json in the model directory)");
            }

            BpeTokenizer bpe;
            try
            {
                bpe = TokenizerJson.Load(tokenizerPath);
            }
            catch (TokenizerFormatException ex)
            {
                throw new CliException($"--tokenizer: {ex.Message}");
            }

            var (weights, error) = ModelWeights.LoadDirectory(modelDir);
            if (weights is null)
            {
                throw new CliException("--model: " + error);
            }

            var (engineChoice, engineOptions) = BackendOptions.Engine(backendName, deviceName, threadCount);
            using var sampler = engineChoice.CreateSampler(weights, engineOptions with { MaxPositions = weights.Config.MaxPositionEmbeddings });
            weights = null; // the sampler holds its own copy
            var id = parseResult.GetValue(name) ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(modelDir));
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
            builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            builder.WebHost.UseKestrel(options =>
            {
                options.Limits.MaxRequestBodySize = limits.MaxBodyBytes;
                if (address is null)
                {
                    options.ListenLocalhost(portValue);
                }
                else
                {
                    options.Listen(address, portValue);
                }
            });
            await using var app = builder.Build();
            var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("DeepSeekRL.Serve");
            using var engine = new ServingEngine(id, sampler, bpe, sampler.Config.EosTokenId, limits, logger, TimeProvider.System);
            engine.Map(app);
            try
            {
                await app.StartAsync(cancellationToken);
            }
            catch (IOException ex)
            {
                throw new CliException($"--port: cannot listen on {hostValue}:{portValue}: {ex.Message}");
            }

            var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
                ?? string.Create(CultureInfo.InvariantCulture, $"http://{hostValue}:{portValue}");
            Console.WriteLine($"serving {id} on {url}");
            await Console.Out.FlushAsync(cancellationToken);
            await app.WaitForShutdownAsync(cancellationToken);
            return 0;
        });
        return command;
    }
}
