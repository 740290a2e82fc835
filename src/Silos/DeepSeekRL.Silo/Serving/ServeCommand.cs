using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Encodings.Web;
using System.Text.Json.Nodes;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Sampling;
using DeepSeekRL.Model.Tokenization;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Silo.Serving;

/// <summary>
/// <c>deepseekrl serve --model DIR [--tokenizer FILE] [--port N] [--host ADDR] [--threads N]</c>: an OpenAI-compatible
/// HTTP server (<c>/v1/models</c>, <c>/v1/completions</c>, <c>/v1/chat/completions</c>, streaming and log-probs) for a
/// native checkpoint. Requests are served one at a time (a transformer is not thread-safe); <c>n</c> (1..64) samples of a
/// prompt are generated as one batch with per-sequence seeds (streaming takes n = 1 only).
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
        var threads = new Option<int>("--threads") { Description = "OpenBLAS threads (default 2).", DefaultValueFactory = _ => 2 };
        var name = new Option<string?>("--served-model-name") { Description = "The model id reported and accepted (default: the model directory's name)." };
        var command = new Command("serve", "Serve a native checkpoint over an OpenAI-compatible HTTP API (/v1/models, /v1/completions, /v1/chat/completions).");
        foreach (var option in new Option[] { model, tokenizer, port, host, threads, name })
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

            var transformer = new Transformer(weights, new TransformerOptions { Threads = threadCount, MaxPositions = weights.Config.MaxPositionEmbeddings });
            var id = parseResult.GetValue(name) ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(modelDir));
            using var engine = new ServingEngine(id, transformer, bpe, weights.Config.EosTokenId, TimeProvider.System);

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(options =>
            {
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

/// <summary>The request handlers of <see cref="ServeCommand"/>: one model, one tokenizer, one request at a time.</summary>
internal sealed class ServingEngine : IDisposable
{
    private const int MaxStops = 4;
    private const int MaxN = 64;
    private readonly string _id;
    private readonly Transformer _model;
    private readonly BpeTokenizer _tokenizer;
    private readonly int[] _stopIds;
    private readonly bool[] _decodable;
    private readonly TimeProvider _time;
    private readonly long _created;
    private static readonly JsonSerializerOptions Wire = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly SemaphoreSlim _gate = new(1, 1);

    public ServingEngine(string id, Transformer model, BpeTokenizer tokenizer, int? eosTokenId, TimeProvider time)
    {
        _id = id;
        _model = model;
        _tokenizer = tokenizer;
        _time = time;
        _created = time.GetUtcNow().ToUnixTimeSeconds();
        var eos = eosTokenId ?? tokenizer.TokenToId(ChatTemplate.Eos);
        _stopIds = eos is int e ? [e] : [];
        var vocab = model.Config.VocabSize;
        _decodable = new bool[vocab];
        for (var i = 0; i < vocab; i++)
        {
            try
            {
                _ = tokenizer.Decode([i]);
                _decodable[i] = true;
            }
            catch (ArgumentOutOfRangeException)
            {
                // An id of the model's vocabulary that the tokenizer lacks decodes to nothing.
            }
        }
    }

    public void Dispose() => _gate.Dispose();

    public void Map(WebApplication app)
    {
        app.MapGet("/v1/models", () => Json(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(new JsonObject { ["id"] = _id, ["object"] = "model", ["created"] = _created, ["owned_by"] = "deepseekrl" }),
        }));
        app.MapGet("/v1/models/{name}", (string name) => name == _id
            ? Json(new JsonObject { ["id"] = _id, ["object"] = "model", ["created"] = _created, ["owned_by"] = "deepseekrl" })
            : Error(404, $"The model '{name}' does not exist", "invalid_request_error", "model_not_found"));
        app.MapPost("/v1/completions", (HttpContext context) => HandleAsync(context, chat: false));
        app.MapPost("/v1/chat/completions", (HttpContext context) => HandleAsync(context, chat: true));
        app.MapFallback((HttpContext context) => Error(404, $"{context.Request.Method} {context.Request.Path} is not an endpoint of this server", "invalid_request_error", null));
    }

    private static IResult Json(JsonNode node, int status = 200) => Results.Text(node.ToJsonString(Wire), "application/json", Encoding.UTF8, status);

    private static IResult Error(int status, string message, string type, string? code, string? param = null) => Json(new JsonObject
    {
        ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code },
    }, status);

    private async Task HandleAsync(HttpContext context, bool chat)
    {
        var ct = context.RequestAborted;
        Request request;
        try
        {
            using var document = await JsonText.ParseAsync(context.Request.Body, default, ct);
            request = Parse(document.RootElement, chat);
        }
        catch (JsonException ex)
        {
            await Error(400, "The request body is not valid JSON: " + ex.Message, "invalid_request_error", null).ExecuteAsync(context);
            return;
        }
        catch (BadRequestException ex)
        {
            await Error(ex.Status, ex.Message, "invalid_request_error", ex.Code, ex.Param).ExecuteAsync(context);
            return;
        }

        GenerationResult result;
        await _gate.WaitAsync(ct);
        try
        {
            result = await Task.Run(() => new Generator(_model).Generate(request.Prompts, request.Options, KvCacheKind.Absorbed, ct), ct);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            await Error(500, "Generation failed: " + ex.Message, "server_error", null).ExecuteAsync(context);
            return;
        }
        finally
        {
            _gate.Release();
        }

        var choices = result.Sequences.Select(s => Complete(s, request)).ToList();
        var id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        var created = _time.GetUtcNow().ToUnixTimeSeconds();
        var promptTokens = request.Prompts.Sum(p => p.Length) / request.N; // each prompt counted once, as OpenAI does
        var usage = new JsonObject
        {
            ["prompt_tokens"] = promptTokens,
            ["completion_tokens"] = choices.Sum(c => c.Tokens.Count),
            ["total_tokens"] = promptTokens + choices.Sum(c => c.Tokens.Count),
        };
        if (request.Stream)
        {
            await StreamAsync(context, request, chat, id, created, choices, usage, ct);
            return;
        }

        var array = new JsonArray();
        for (var i = 0; i < choices.Count; i++)
        {
            var c = choices[i];
            var choice = new JsonObject { ["index"] = i };
            if (chat)
            {
                choice["message"] = new JsonObject { ["role"] = "assistant", ["content"] = c.Text };
                choice["logprobs"] = request.LogProbs ? new JsonObject { ["content"] = ChatLogProbs(c, 0, c.Tokens.Count) } : null;
            }
            else
            {
                choice["text"] = c.Text;
                choice["logprobs"] = request.LogProbs ? CompletionLogProbs(c, 0, c.Tokens.Count, 0) : null;
            }

            choice["finish_reason"] = c.FinishReason;
            array.Add(choice);
        }

        await Json(new JsonObject
        {
            ["id"] = id,
            ["object"] = chat ? "chat.completion" : "text_completion",
            ["created"] = created,
            ["model"] = _id,
            ["choices"] = array,
            ["usage"] = usage,
        }).ExecuteAsync(context);
    }

    private async Task StreamAsync(HttpContext context, Request request, bool chat, string id, long created, List<Choice> choices, JsonObject usage, CancellationToken ct)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        async Task SendAsync(JsonArray array, JsonNode? usageNode)
        {
            var chunk = new JsonObject
            {
                ["id"] = id,
                ["object"] = chat ? "chat.completion.chunk" : "text_completion",
                ["created"] = created,
                ["model"] = _id,
                ["choices"] = array,
            };
            if (request.IncludeUsage)
            {
                chunk["usage"] = usageNode;
            }

            await response.WriteAsync("data: " + chunk.ToJsonString(Wire) + "\n\n", ct);
            await response.Body.FlushAsync(ct);
        }

        for (var i = 0; i < choices.Count; i++)
        {
            var c = choices[i];
            if (chat)
            {
                await SendAsync(new JsonArray(new JsonObject
                {
                    ["index"] = i,
                    ["delta"] = new JsonObject { ["role"] = "assistant", ["content"] = string.Empty },
                    ["logprobs"] = null,
                    ["finish_reason"] = null,
                }), null);
            }

            // One chunk per token, holding back text while a multi-byte character is incomplete.
            var sent = 0;
            var from = 0;
            for (var k = 1; k <= c.Tokens.Count; k++)
            {
                var last = k == c.Tokens.Count;
                var prefix = k <= c.TextTokens ? Decode(c.Tokens.Take(k)) : c.Text;
                if (prefix.Length > c.Text.Length)
                {
                    prefix = c.Text;
                }

                if (!last && prefix.EndsWith('\uFFFD'))
                {
                    continue;
                }

                var piece = prefix.Length > sent ? prefix[sent..] : string.Empty;
                var choice = new JsonObject { ["index"] = i };
                if (chat)
                {
                    choice["delta"] = new JsonObject { ["content"] = piece };
                    choice["logprobs"] = request.LogProbs ? new JsonObject { ["content"] = ChatLogProbs(c, from, k) } : null;
                }
                else
                {
                    choice["text"] = piece;
                    choice["logprobs"] = request.LogProbs ? CompletionLogProbs(c, from, k, sent) : null;
                }

                choice["finish_reason"] = null;
                await SendAsync(new JsonArray(choice), null);
                sent = Math.Max(sent, prefix.Length);
                from = k;
            }

            var final = new JsonObject { ["index"] = i };
            if (chat)
            {
                final["delta"] = new JsonObject();
                final["logprobs"] = null;
            }
            else
            {
                final["text"] = string.Empty;
                final["logprobs"] = null;
            }

            final["finish_reason"] = c.FinishReason;
            await SendAsync(new JsonArray(final), null);
        }

        if (request.IncludeUsage)
        {
            await SendAsync([], usage);
        }

        await response.WriteAsync("data: [DONE]\n\n", ct);
        await response.Body.FlushAsync(ct);
    }

    private JsonArray ChatLogProbs(Choice c, int from, int to)
    {
        var array = new JsonArray();
        for (var k = from; k < to; k++)
        {
            var token = Decode([c.Tokens[k]]);
            var bytes = new JsonArray();
            foreach (var b in Encoding.UTF8.GetBytes(token))
            {
                bytes.Add((int)b);
            }

            array.Add(new JsonObject { ["token"] = token, ["logprob"] = c.LogProbs[k], ["bytes"] = bytes, ["top_logprobs"] = new JsonArray() });
        }

        return array;
    }

    private JsonObject CompletionLogProbs(Choice c, int from, int to, int offset)
    {
        var tokens = new JsonArray();
        var logprobs = new JsonArray();
        var offsets = new JsonArray();
        for (var k = from; k < to; k++)
        {
            var token = Decode([c.Tokens[k]]);
            tokens.Add(token);
            logprobs.Add(c.LogProbs[k]);
            offsets.Add(offset);
            offset += token.Length;
        }

        return new JsonObject { ["tokens"] = tokens, ["token_logprobs"] = logprobs, ["top_logprobs"] = null, ["text_offset"] = offsets };
    }

    private string Decode(IEnumerable<int> ids) =>
        _tokenizer.Decode(ids.Where(i => (uint)i < (uint)_decodable.Length && _decodable[i]).ToArray(), skipSpecialTokens: true);

    private Choice Complete(GeneratedSequence sequence, Request request)
    {
        // The text leaves out a final stop token and cuts at the first stop string, like OpenAI's API.
        var textTokens = sequence.Finish == FinishReason.StopToken && sequence.Tokens.Length > 0 ? sequence.Tokens.Length - 1 : sequence.Tokens.Length;
        var text = Decode(sequence.Tokens.Take(textTokens));
        var cut = -1;
        foreach (var stop in request.Options.StopStrings)
        {
            var at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut))
            {
                cut = at;
            }
        }

        if (cut >= 0)
        {
            text = text[..cut];
        }

        var reason = sequence.Finish == FinishReason.Length && cut < 0 ? "length" : "stop";
        return new Choice(sequence.Tokens, sequence.LogProbs, text, textTokens, reason);
    }

    private Request Parse(JsonElement root, bool chat)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new BadRequestException("The request body must be a JSON object");
        }

        if (root.TryGetProperty("model", out var modelName) && modelName.ValueKind != JsonValueKind.Null)
        {
            if (modelName.ValueKind != JsonValueKind.String)
            {
                throw new BadRequestException("'model' must be a string", "model");
            }

            if (modelName.GetString() != _id)
            {
                throw new BadRequestException($"The model '{modelName.GetString()}' does not exist (this server serves '{_id}')", "model", 404, "model_not_found");
            }
        }

        var prompts = new List<int[]>();
        if (chat)
        {
            if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            {
                throw new BadRequestException("'messages' is required and must be a non-empty array", "messages");
            }

            var list = new List<ChatMessage>();
            var index = 0;
            foreach (var message in messages.EnumerateArray())
            {
                if (message.ValueKind != JsonValueKind.Object)
                {
                    throw new BadRequestException($"messages[{index}] must be an object", "messages");
                }

                var role = message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : null;
                if (role is not ("system" or "user" or "assistant" or "developer"))
                {
                    throw new BadRequestException($"messages[{index}].role must be one of system, user, assistant", "messages");
                }

                list.Add(new ChatMessage(role == "developer" ? "system" : role, Content(message, index)));
                index++;
            }

            prompts.Add(ChatTemplate.EncodeR1(_tokenizer, list, addGenerationPrompt: true));
        }
        else
        {
            if (!root.TryGetProperty("prompt", out var prompt))
            {
                throw new BadRequestException("'prompt' is required", "prompt");
            }

            switch (prompt.ValueKind)
            {
                case JsonValueKind.String:
                    prompts.Add(_tokenizer.Encode(prompt.GetString()!));
                    break;
                case JsonValueKind.Array when prompt.GetArrayLength() > 0 && prompt.EnumerateArray().All(p => p.ValueKind == JsonValueKind.Number):
                    prompts.Add(TokenIds(prompt));
                    break;
                case JsonValueKind.Array when prompt.GetArrayLength() > 0:
                    foreach (var p in prompt.EnumerateArray())
                    {
                        prompts.Add(p.ValueKind switch
                        {
                            JsonValueKind.String => _tokenizer.Encode(p.GetString()!),
                            JsonValueKind.Array => TokenIds(p),
                            _ => throw new BadRequestException("'prompt' must be a string, an array of strings, or an array of token id arrays", "prompt"),
                        });
                    }

                    break;
                default:
                    throw new BadRequestException("'prompt' must be a string, an array of strings, or an array of token ids", "prompt");
            }
        }

        var limit = _model.Rope.MaxPositions;
        foreach (var p in prompts)
        {
            if (p.Length == 0)
            {
                throw new BadRequestException("The prompt is empty", chat ? "messages" : "prompt");
            }

            if (p.Length >= limit)
            {
                throw new BadRequestException($"The prompt has {p.Length} tokens; this model's context is {limit} tokens", chat ? "messages" : "prompt", code: "context_length_exceeded");
            }

            if (p.Any(t => t >= _model.Config.VocabSize))
            {
                throw new BadRequestException($"The prompt has a token id outside the model's vocabulary ({_model.Config.VocabSize})", chat ? "messages" : "prompt");
            }
        }

        var n = Int(root, "n") ?? 1;
        if (n is < 1 or > MaxN)
        {
            throw new BadRequestException($"n = {n}: expected 1..{MaxN}", "n");
        }

        if (n > 1 && (Bool(root, "stream") ?? false))
        {
            throw new BadRequestException($"n = {n} with stream = true: streaming supports only n = 1", "n");
        }

        if (n > 1)
        {
            // The n samples of a prompt are n rows of one batch; the generator seeds row i with (seed, i), so they
            // differ from each other and repeat with the same seed. Choices come prompt by prompt, n each.
            prompts = [.. prompts.SelectMany(p => Enumerable.Repeat(p, n))];
        }

        var maxTokens = Int(root, "max_completion_tokens") ?? Int(root, "max_tokens");
        if (maxTokens is < 1)
        {
            throw new BadRequestException($"max_tokens = {maxTokens}: expected >= 1", "max_tokens");
        }

        var room = limit - prompts.Max(p => p.Length);
        var stops = Stops(root);
        var options = new SamplingOptions
        {
            Temperature = (float)(Number(root, "temperature") ?? 1),
            TopP = (float)(Number(root, "top_p") ?? 1),
            TopK = Int(root, "top_k") is int k && k > 0 ? k : 0,
            Seed = unchecked((ulong)(Long(root, "seed") ?? 0)),
            MaxTokens = Math.Min(maxTokens ?? (chat ? room : 16), room),
            StopTokenIds = _stopIds,
            StopStrings = stops,
            Detokenize = stops.Count > 0 ? ids => Decode(ids) : null,
        };
        if (options.Validate() is { } invalid)
        {
            throw new BadRequestException(invalid, invalid.Split(' ')[0]);
        }

        bool logprobs;
        if (chat)
        {
            logprobs = Bool(root, "logprobs") ?? false;
            if (Int(root, "top_logprobs") is int top && (top < 0 || top > 20))
            {
                throw new BadRequestException($"top_logprobs = {top}: expected 0..20", "top_logprobs");
            }
        }
        else
        {
            var count = Int(root, "logprobs");
            if (count is < 0 or > 5)
            {
                throw new BadRequestException($"logprobs = {count}: expected 0..5", "logprobs");
            }

            logprobs = count is not null;
        }

        var stream = Bool(root, "stream") ?? false;
        var includeUsage = stream && root.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object
            && so.TryGetProperty("include_usage", out var iu) && iu.ValueKind == JsonValueKind.True;
        return new Request(prompts, options, stream, logprobs, includeUsage, n);
    }

    private static string Content(JsonElement message, int index)
    {
        if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
        {
            return string.Empty;
        }

        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }

        if (content.ValueKind == JsonValueKind.Array)
        {
            var text = new StringBuilder();
            foreach (var part in content.EnumerateArray())
            {
                if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String
                    || type.GetString() != "text" || !part.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                {
                    throw new BadRequestException($"messages[{index}].content: only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported", "messages");
                }

                text.Append(t.GetString());
            }

            return text.ToString();
        }

        throw new BadRequestException($"messages[{index}].content must be a string or an array of text parts", "messages");
    }

    private int[] TokenIds(JsonElement array)
    {
        var ids = new List<int>();
        foreach (var e in array.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out var id) || id < 0 || id >= _model.Config.VocabSize)
            {
                throw new BadRequestException($"'prompt': token ids must be integers in 0..{_model.Config.VocabSize - 1}", "prompt");
            }

            ids.Add(id);
        }

        return [.. ids];
    }

    private static List<string> Stops(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out var stop) || stop.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        if (stop.ValueKind == JsonValueKind.String)
        {
            return stop.GetString() is { Length: > 0 } s ? [s] : [];
        }

        if (stop.ValueKind == JsonValueKind.Array && stop.GetArrayLength() <= MaxStops && stop.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String))
        {
            return [.. stop.EnumerateArray().Select(s => s.GetString()!).Where(s => s.Length > 0)];
        }

        throw new BadRequestException($"'stop' must be a string or an array of at most {MaxStops} strings", "stop");
    }

    private static JsonElement? Field(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private static double? Number(JsonElement root, string name) => Field(root, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } v => v.GetDouble(),
        _ => throw new BadRequestException($"'{name}' must be a number", name),
    };

    private static long? Long(JsonElement root, string name) => Field(root, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } v when v.TryGetInt64(out var l) => l,
        _ => throw new BadRequestException($"'{name}' must be an integer", name),
    };

    private static int? Int(JsonElement root, string name) => Field(root, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } v when v.TryGetInt32(out var i) => i,
        _ => throw new BadRequestException($"'{name}' must be an integer", name),
    };

    private static bool? Bool(JsonElement root, string name) => Field(root, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        _ => throw new BadRequestException($"'{name}' must be a boolean", name),
    };

    private sealed record Request(List<int[]> Prompts, SamplingOptions Options, bool Stream, bool LogProbs, bool IncludeUsage, int N);

    private sealed record Choice(IReadOnlyList<int> Tokens, float[] LogProbs, string Text, int TextTokens, string FinishReason);

    private sealed class BadRequestException(string message, string? param = null, int status = 400, string? code = null) : Exception(message)
    {
        public string? Param => param;

        public int Status => status;

        public string? Code => code;
    }
}
