using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Encodings.Web;
using System.Text.Json.Nodes;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Sampling;
using DeepSeekRL.Text;
using DeepSeekRL.Tokenizers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Silo.Serving;

/// <summary>
/// The request handlers of <see cref="ServeCommand"/>: one model, one tokenizer; generation through a
/// <see cref="GenerationScheduler"/> (bounded queue, requests take turns slice by slice).
/// </summary>
internal sealed class ServingEngine : IDisposable
{
    private const int MaxStops = 4;
    private const int MaxN = 64;
    private readonly string _id;
    private readonly IPolicySampler _model;
    private readonly BpeTokenizer _tokenizer;
    private readonly ServeLimits _limits;
    private readonly ILogger _logger;
    private readonly int[] _stopIds;
    private readonly bool[] _decodable;
    private readonly byte[][] _tokenBytes;
    private readonly TimeProvider _time;
    private readonly long _created;
    private readonly GenerationScheduler _scheduler;
    private static readonly JsonSerializerOptions Wire = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public ServingEngine(string id, IPolicySampler model, BpeTokenizer tokenizer, int? eosTokenId, ServeLimits limits, ILogger logger, TimeProvider time)
    {
        _id = id;
        _model = model;
        _tokenizer = tokenizer;
        _limits = limits;
        _logger = logger;
        _time = time;
        _created = time.GetUtcNow().ToUnixTimeSeconds();
        var eos = eosTokenId ?? tokenizer.TokenToId(ChatTemplate.Eos);
        _stopIds = eos is int e ? [e] : [];
        var vocab = model.Config.VocabSize;
        _decodable = new bool[vocab];
        _tokenBytes = new byte[vocab][];
        var maxTokenBytes = 1;
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

            _tokenBytes[i] = _decodable[i] && tokenizer.IdToToken(i) is { } token ? ByteLevel.DecodeToken(token) : [];
            maxTokenBytes = Math.Max(maxTokenBytes, _tokenBytes[i].Length);
        }

        // A text of L characters has at least L UTF-8 bytes and a token covers at most maxTokenBytes of them, so a
        // prompt longer than context x maxTokenBytes characters cannot fit: it is refused without tokenizing it.
        MaxPromptChars = (long)model.MaxPositions * maxTokenBytes;
        _scheduler = new GenerationScheduler(model, limits.MaxQueue, limits.MaxBatch);
    }

    /// <summary>The longest prompt text, in UTF-16 characters, that could fit in the model's context.</summary>
    public long MaxPromptChars { get; }

    public void Dispose() => _scheduler.Dispose();

    public void Map(WebApplication app)
    {
        app.UseOpenAiErrors(_limits.MaxBodyBytes, _logger);
        app.MapGet("/health", () => Json(new JsonObject
        {
            ["status"] = "ok",
            ["running"] = _scheduler.Running,
            ["queued"] = _scheduler.Admitted - _scheduler.Running,
            ["max_queue"] = _limits.MaxQueue,
        }));
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
        app.MapFallback((HttpContext context) =>
        {
            // The fallback matches every method, so a known path with the wrong method lands here too: 405, not 404.
            string? allowed = context.Request.Path.Value switch
            {
                "/v1/completions" or "/v1/chat/completions" => "POST",
                "/v1/models" or "/health" => "GET",
                _ => null,
            };
            if (allowed is not null)
            {
                context.Response.Headers.Allow = allowed;
                return Error(405, $"{context.Request.Method} {context.Request.Path}: method not allowed (use {allowed})", "invalid_request_error", "method_not_allowed");
            }

            return Error(404, $"{context.Request.Method} {context.Request.Path} is not an endpoint of this server", "invalid_request_error", null);
        });
    }

    private static IResult Json(JsonNode node, int status = 200) => Results.Text(node.ToJsonString(Wire), "application/json", Encoding.UTF8, status);

    /// <summary>An OpenAI-style error: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
    public static IResult Error(int status, string message, string type, string? code, string? param = null) => Json(new JsonObject
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

        // No seed: a fresh one from the operating system's entropy source, so that unseeded requests differ.
        var seed = request.Seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(sizeof(ulong)));
        if (_scheduler.TryEnqueue(request.Prompts, seed, request.Options, ct) is not { } generation)
        {
            context.Response.Headers.RetryAfter = "1";
            await Error(429, $"The server is busy: {_limits.MaxQueue} requests are queued or running (serve --max-queue); retry later",
                "rate_limit_error", "queue_full").ExecuteAsync(context);
            return;
        }

        var result = new GenerationResult(await generation, 0, 0);
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

    private JsonArray Bytes(int id)
    {
        var array = new JsonArray();
        foreach (var b in (uint)id < (uint)_tokenBytes.Length ? _tokenBytes[id] : [])
        {
            array.Add((int)b);
        }

        return array;
    }

    private JsonArray ChatLogProbs(Choice c, int from, int to)
    {
        var array = new JsonArray();
        for (var k = from; k < to; k++)
        {
            var top = new JsonArray();
            if (c.Top is { } candidates)
            {
                foreach (var t in candidates[k])
                {
                    top.Add(new JsonObject { ["token"] = Decode([t.Id]), ["logprob"] = t.LogProb, ["bytes"] = Bytes(t.Id) });
                }
            }

            array.Add(new JsonObject { ["token"] = Decode([c.Tokens[k]]), ["logprob"] = c.LogProbs[k], ["bytes"] = Bytes(c.Tokens[k]), ["top_logprobs"] = top });
        }

        return array;
    }

    private JsonObject CompletionLogProbs(Choice c, int from, int to, int offset)
    {
        var tokens = new JsonArray();
        var logprobs = new JsonArray();
        var offsets = new JsonArray();
        var tops = new JsonArray();
        for (var k = from; k < to; k++)
        {
            var token = Decode([c.Tokens[k]]);
            tokens.Add(token);
            logprobs.Add(c.LogProbs[k]);
            offsets.Add(offset);
            offset += token.Length;

            // {token text: logprob}, most likely first; two ids that decode to the same text keep the likelier one.
            var top = new JsonObject();
            foreach (var t in c.Top?[k] ?? [])
            {
                var text = Decode([t.Id]);
                if (!top.ContainsKey(text))
                {
                    top[text] = t.LogProb;
                }
            }

            tops.Add(top);
        }

        return new JsonObject { ["tokens"] = tokens, ["token_logprobs"] = logprobs, ["top_logprobs"] = tops, ["text_offset"] = offsets };
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
        return new Choice(sequence.Tokens, sequence.LogProbs, sequence.TopLogProbs, text, textTokens, reason);
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

        // Everything that bounds the work is checked before any text is tokenized: n, prompts x n, and each prompt's
        // length in characters against what the context could hold at all.
        var n = Int(root, "n") ?? 1;
        if (n is < 1 or > MaxN)
        {
            throw new BadRequestException($"n = {n}: expected 1..{MaxN}", "n");
        }

        if (n > 1 && (Bool(root, "stream") ?? false))
        {
            throw new BadRequestException($"n = {n} with stream = true: streaming supports only n = 1", "n");
        }

        var prompts = new List<int[]>();
        if (chat)
        {
            if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            {
                throw new BadRequestException("'messages' is required and must be a non-empty array", "messages");
            }

            CheckSequences(1, n);
            var list = new List<ChatMessage>();
            var index = 0;
            long chars = 0;
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

                var content = Content(message, index);
                chars += content.Length;
                CheckChars(chars, "messages");
                list.Add(new ChatMessage(role == "developer" ? "system" : role, content));
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
                    CheckSequences(1, n);
                    prompts.Add(Encode(prompt));
                    break;
                case JsonValueKind.Array when prompt.GetArrayLength() > 0 && prompt.EnumerateArray().All(p => p.ValueKind == JsonValueKind.Number):
                    CheckSequences(1, n);
                    prompts.Add(TokenIds(prompt));
                    break;
                case JsonValueKind.Array when prompt.GetArrayLength() > 0:
                    CheckSequences(prompt.GetArrayLength(), n);
                    foreach (var p in prompt.EnumerateArray())
                    {
                        if (p.ValueKind == JsonValueKind.String)
                        {
                            CheckChars(p.GetString()!.Length, "prompt");
                        }
                    }

                    foreach (var p in prompt.EnumerateArray())
                    {
                        prompts.Add(p.ValueKind switch
                        {
                            JsonValueKind.String => Encode(p),
                            JsonValueKind.Array => TokenIds(p),
                            _ => throw new BadRequestException("'prompt' must be a string, an array of strings, or an array of token id arrays", "prompt"),
                        });
                    }

                    break;
                default:
                    throw new BadRequestException("'prompt' must be a string, an array of strings, or an array of token ids", "prompt");
            }
        }

        var limit = _model.MaxPositions;
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

        if (n > 1)
        {
            // The n samples of a prompt are n sequences of one request; sequence i draws from the stream (seed, i),
            // so they differ from each other and repeat with the same seed. Choices come prompt by prompt, n each.
            prompts = [.. prompts.SelectMany(p => Enumerable.Repeat(p, n))];
        }

        var maxTokens = Int(root, "max_completion_tokens") ?? Int(root, "max_tokens");
        if (maxTokens is < 1)
        {
            throw new BadRequestException($"max_tokens = {maxTokens}: expected >= 1", "max_tokens");
        }

        // Log-probs: chat takes logprobs (bool) and top_logprobs (0..20, needs logprobs); completions take logprobs (0..5),
        // the number of most likely tokens to list beside each chosen one (OpenAI's bounds).
        bool logprobs;
        int topLogProbs;
        if (chat)
        {
            logprobs = Bool(root, "logprobs") ?? false;
            var top = Int(root, "top_logprobs");
            if (top is < 0 or > SamplingOptions.MaxTopLogProbs)
            {
                throw new BadRequestException($"top_logprobs = {top}: expected 0..{SamplingOptions.MaxTopLogProbs}", "top_logprobs");
            }

            if (top is not null && !logprobs)
            {
                throw new BadRequestException("top_logprobs needs logprobs = true", "top_logprobs");
            }

            topLogProbs = top ?? 0;
        }
        else
        {
            var count = Int(root, "logprobs");
            if (count is < 0 or > 5)
            {
                throw new BadRequestException($"logprobs = {count}: expected 0..5", "logprobs");
            }

            logprobs = count is not null;
            topLogProbs = count ?? 0;
        }

        var room = limit - prompts.Max(p => p.Length);
        var stops = Stops(root);
        var options = new SamplingOptions
        {
            Temperature = (float)(Number(root, "temperature") ?? 1),
            TopP = (float)(Number(root, "top_p") ?? 1),
            TopK = Int(root, "top_k") is int k && k > 0 ? k : 0,
            TopLogProbs = topLogProbs,
            MaxTokens = Math.Min(maxTokens ?? (chat ? room : 16), room),
            StopTokenIds = _stopIds,
            StopStrings = stops,
            Detokenize = stops.Count > 0 ? ids => Decode(ids) : null,
        };
        if (options.Validate() is { } invalid)
        {
            throw new BadRequestException(invalid, invalid.Split(' ')[0]);
        }

        var stream = Bool(root, "stream") ?? false;
        var includeUsage = stream && root.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object
            && so.TryGetProperty("include_usage", out var iu) && iu.ValueKind == JsonValueKind.True;
        var seed = Long(root, "seed") is long l ? unchecked((ulong)l) : (ulong?)null;
        return new Request(prompts, options, seed, stream, logprobs, includeUsage, n);
    }

    private void CheckSequences(int prompts, int n)
    {
        if ((long)prompts * n > _limits.MaxSequences)
        {
            throw new BadRequestException(
                $"{prompts} prompts x n = {n} is {(long)prompts * n} sequences; this server takes at most {_limits.MaxSequences} per request (serve --max-sequences)",
                prompts > 1 ? "prompt" : "n");
        }
    }

    private void CheckChars(long chars, string param)
    {
        if (chars > MaxPromptChars)
        {
            throw new BadRequestException(
                $"The prompt has {chars} characters; this model's context of {_model.MaxPositions} tokens holds at most {MaxPromptChars} characters",
                param, code: "context_length_exceeded");
        }
    }

    private int[] Encode(JsonElement text)
    {
        var s = text.GetString()!;
        CheckChars(s.Length, "prompt");
        return _tokenizer.Encode(s);
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

    private sealed record Request(List<int[]> Prompts, SamplingOptions Options, ulong? Seed, bool Stream, bool LogProbs, bool IncludeUsage, int N);

    private sealed record Choice(IReadOnlyList<int> Tokens, float[] LogProbs, TokenLogProb[][]? Top, string Text, int TextTokens, string FinishReason);

    private sealed class BadRequestException(string message, string? param = null, int status = 400, string? code = null) : Exception(message)
    {
        public string? Param => param;

        public int Status => status;

        public string? Code => code;
    }
}
