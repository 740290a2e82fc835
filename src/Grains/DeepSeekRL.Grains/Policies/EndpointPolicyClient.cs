using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace DeepSeekRL.Grains.Policies;

/// <summary>Options of <see cref="EndpointPolicyClient"/>.</summary>
public sealed class EndpointPolicyOptions
{
    /// <summary>The server's base URL, with or without the trailing <c>/v1</c>.</summary>
    public required Uri BaseUrl { get; init; }

    /// <summary>The model name sent with each request.</summary>
    public required string Model { get; init; }

    /// <summary>Sent as <c>Authorization: Bearer</c> when set.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Time limit of one attempt. Default 120 s.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Retries after the first attempt. Default 3.</summary>
    public int MaxRetries { get; init; } = 3;

    /// <summary>The first retry's delay (exponential with jitter after). Default 0.5 s.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Requests in flight at most. Default 8.</summary>
    public int MaxConcurrency { get; init; } = 8;

    /// <summary>The failure ratio that opens the circuit. Default 0.5.</summary>
    public double BreakerFailureRatio { get; init; } = 0.5;

    /// <summary>Calls in the sampling window before the breaker may open. Default 10.</summary>
    public int BreakerMinimumThroughput { get; init; } = 10;

    /// <summary>How long the circuit stays open. Default 15 s.</summary>
    public TimeSpan BreakDuration { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>Sampling parameters of one request.</summary>
public sealed class EndpointSamplingParameters
{
    /// <summary>Temperature (0 = greedy).</summary>
    public double Temperature { get; init; } = 1;

    /// <summary>Nucleus mass.</summary>
    public double TopP { get; init; } = 1;

    /// <summary>Tokens at most.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>The seed (servers that honour it are reproducible).</summary>
    public long? Seed { get; init; }
}

/// <summary>One sample returned by an endpoint.</summary>
/// <param name="Text">The text.</param>
/// <param name="Tokens">The token strings when the server returned log-probs, else empty.</param>
/// <param name="LogProbs">Per-token log-probs when returned, else empty.</param>
/// <param name="FinishReason">The server's finish reason (<c>stop</c>, <c>length</c>, ...).</param>
public sealed record EndpointSample(string Text, string[] Tokens, float[] LogProbs, string FinishReason);

/// <summary>The endpoint answered with something that is not an OpenAI completions response.</summary>
/// <param name="message">One line naming the URL, the field and what was expected.</param>
public sealed class EndpointResponseException(string message) : Exception(message);

/// <summary>
/// Samples completions from an OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp, <c>deepseekrl serve</c>)
/// through <c>/v1/completions</c>, behind a Polly pipeline: concurrency limit, circuit breaker, retry with
/// exponential backoff and jitter (on transport errors, timeouts, 408, 429 and 5xx, honouring Retry-After), and a
/// per-attempt timeout. Other 4xx answers and malformed responses are one-line errors.
/// </summary>
public sealed class EndpointPolicyClient : IDisposable
{
    private const int MaxBodyBytes = 64 << 20;
    private readonly EndpointPolicyOptions _options;
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _concurrency;
    private readonly ResiliencePipeline _pipeline;
    private readonly Uri _completions;
    private readonly Uri _models;
    private bool _singleSampleOnly;

    /// <summary>Creates a client.</summary>
    /// <param name="options">The options.</param>
    /// <param name="handler">The HTTP handler (default: a pooled SocketsHttpHandler).</param>
    public EndpointPolicyClient(EndpointPolicyOptions options, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _http = new HttpClient(handler ?? new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan };
        if (options.ApiKey is { Length: > 0 } key)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        var root = options.BaseUrl.ToString().TrimEnd('/');
        if (root.EndsWith("/v1", StringComparison.Ordinal))
        {
            root = root[..^3];
        }

        _completions = new Uri(root + "/v1/completions");
        _models = new Uri(root + "/v1/models");
        _concurrency = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
        var transient = new PredicateBuilder()
            .Handle<HttpRequestException>()
            .Handle<TimeoutRejectedException>()
            .Handle<TransientEndpointException>();
        _pipeline = new ResiliencePipelineBuilder()
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = options.BreakerFailureRatio,
                MinimumThroughput = options.BreakerMinimumThroughput,
                SamplingDuration = TimeSpan.FromSeconds(30),
                BreakDuration = options.BreakDuration,
                ShouldHandle = transient,
            })
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = Math.Max(1, options.MaxRetries),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                ShouldHandle = options.MaxRetries == 0 ? new PredicateBuilder().Handle<NeverException>() : transient,
                DelayGenerator = static args => ValueTask.FromResult(
                    args.Outcome.Exception is TransientEndpointException { RetryAfter: { } after } ? (TimeSpan?)after : null),
            })
            .AddTimeout(options.RequestTimeout)
            .Build();
    }

    /// <summary>Samples <paramref name="n"/> completions of <paramref name="prompt"/>; falls back to n requests when the server refuses n &gt; 1.</summary>
    /// <param name="prompt">The prompt text (template applied).</param>
    /// <param name="n">Samples wanted.</param>
    /// <param name="parameters">Sampling parameters.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The samples.</returns>
    public async Task<IReadOnlyList<EndpointSample>> SampleAsync(string prompt, int n, EndpointSamplingParameters parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        if (n > 1 && !_singleSampleOnly)
        {
            try
            {
                return await RequestAsync(prompt, n, parameters, parameters.Seed, cancellationToken);
            }
            catch (EndpointRequestRejectedException ex) when (ex.Message.Contains("\"n\"", StringComparison.Ordinal) || ex.Message.Contains(" n ", StringComparison.Ordinal) || ex.Message.Contains("n =", StringComparison.Ordinal))
            {
                _singleSampleOnly = true;
            }
        }

        var samples = new List<EndpointSample>(n);
        for (var i = 0; i < n; i++)
        {
            samples.AddRange(await RequestAsync(prompt, 1, parameters, parameters.Seed + i, cancellationToken));
        }

        return samples;
    }

    /// <summary>Lists the server's models.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The model ids.</returns>
    public async Task<IReadOnlyList<string>> ListModelsAsync(CancellationToken cancellationToken)
    {
        var body = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, _models), cancellationToken);
        var data = Parse(body, _models)["data"] as JsonArray ?? throw Garbage(_models, "data", "an array of models");
        return data.Select(m => (m as JsonObject)?["id"] is JsonValue id && id.TryGetValue<string>(out var s) ? s : throw Garbage(_models, "data[].id", "a string")).ToList();
    }

    private async Task<IReadOnlyList<EndpointSample>> RequestAsync(string prompt, int n, EndpointSamplingParameters parameters, long? seed, CancellationToken cancellationToken)
    {
        var request = new JsonObject
        {
            ["model"] = _options.Model,
            ["prompt"] = prompt,
            ["max_tokens"] = parameters.MaxTokens,
            ["temperature"] = parameters.Temperature,
            ["top_p"] = parameters.TopP,
            ["n"] = n,
            ["logprobs"] = 1,
        };
        if (seed is { } s)
        {
            request["seed"] = s;
        }

        var json = request.ToJsonString();
        var body = await SendAsync(() => new HttpRequestMessage(HttpMethod.Post, _completions) { Content = new StringContent(json, Encoding.UTF8, "application/json") }, cancellationToken);
        var root = Parse(body, _completions);
        if (root["choices"] is not JsonArray choices)
        {
            throw Garbage(_completions, "choices", "an array");
        }

        var samples = new List<EndpointSample>(choices.Count);
        for (var i = 0; i < choices.Count; i++)
        {
            if (choices[i] is not JsonObject choice)
            {
                throw Garbage(_completions, $"choices[{i}]", "an object");
            }

            if (choice["text"] is not JsonValue textValue || !textValue.TryGetValue<string>(out var text))
            {
                throw Garbage(_completions, $"choices[{i}].text", "a string");
            }

            var finish = choice["finish_reason"] is JsonValue f && f.TryGetValue<string>(out var reason) ? reason : "stop";
            string[] tokens = [];
            float[] logprobs = [];
            if (choice["logprobs"] is JsonObject lp && lp["token_logprobs"] is JsonArray values)
            {
                logprobs = new float[values.Count];
                for (var t = 0; t < values.Count; t++)
                {
                    logprobs[t] = values[t] is JsonValue v && v.TryGetValue<double>(out var d) ? (float)d
                        : throw Garbage(_completions, $"choices[{i}].logprobs.token_logprobs[{t}]", "a number");
                }

                tokens = lp["tokens"] is JsonArray names && names.Count == values.Count
                    ? names.Select(x => x is JsonValue v && v.TryGetValue<string>(out var name) ? name : string.Empty).ToArray()
                    : [];
            }

            samples.Add(new EndpointSample(text, tokens, logprobs, finish == "length" ? "length" : "stop"));
        }

        return samples;
    }

    private async Task<string> SendAsync(Func<HttpRequestMessage> create, CancellationToken cancellationToken)
    {
        await _concurrency.WaitAsync(cancellationToken);
        try
        {
            var garbageRetried = false;
            while (true)
            {
                try
                {
                    return await _pipeline.ExecuteAsync(async ct =>
                    {
                        using var request = create();
                        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
                        var body = await ReadBodyAsync(response, request.RequestUri!, ct);
                        if (response.IsSuccessStatusCode)
                        {
                            return body;
                        }

                        var code = (int)response.StatusCode;
                        var message = $"{request.RequestUri} answered {code} {response.ReasonPhrase}: {ErrorMessage(body)}";
                        if (code is 408 or 429 || code >= 500)
                        {
                            var after = response.Headers.RetryAfter?.Delta;
                            throw new TransientEndpointException(message, after is { } a ? TimeSpan.FromSeconds(Math.Min(a.TotalSeconds, 30)) : null);
                        }

                        throw new EndpointRequestRejectedException(message);
                    }, cancellationToken);
                }
                catch (EndpointResponseException) when (!garbageRetried)
                {
                    garbageRetried = true;
                }
            }
        }
        finally
        {
            _concurrency.Release();
        }
    }

    private static async Task<string> ReadBodyAsync(HttpResponseMessage response, Uri url, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength is > MaxBodyBytes)
        {
            throw new EndpointResponseException($"{url}: response of {response.Content.Headers.ContentLength} bytes; expected at most {MaxBodyBytes}");
        }

        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
            {
                throw new EndpointResponseException($"{url}: response over {MaxBodyBytes} bytes");
            }

            buffer.Write(chunk, 0, read);
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private static JsonObject Parse(string body, Uri url)
    {
        try
        {
            return JsonNode.Parse(body) as JsonObject ?? throw Garbage(url, "(root)", "a JSON object");
        }
        catch (JsonException ex)
        {
            throw new EndpointResponseException($"{url}: response is not JSON ({ex.Message.Split('.')[0]}): \"{Excerpt(body)}\"");
        }
    }

    private static string ErrorMessage(string body)
    {
        try
        {
            if (JsonNode.Parse(body) is JsonObject o && o["error"] is JsonObject e && e["message"] is JsonValue m && m.TryGetValue<string>(out var text))
            {
                return Excerpt(text);
            }
        }
        catch (JsonException)
        {
        }

        return Excerpt(body);
    }

    private static string Excerpt(string text)
    {
        var flat = text.ReplaceLineEndings(" ");
        return flat.Length <= 120 ? flat : string.Concat(flat.AsSpan(0, 120), "...");
    }

    private static EndpointResponseException Garbage(Uri url, string field, string expected) =>
        new($"{url}: response field {field}: expected {expected}");

    /// <inheritdoc/>
    public void Dispose()
    {
        _http.Dispose();
        _concurrency.Dispose();
    }

    private sealed class TransientEndpointException(string message, TimeSpan? retryAfter) : Exception(message)
    {
        public TimeSpan? RetryAfter { get; } = retryAfter;
    }

    private sealed class NeverException : Exception;
}

/// <summary>The endpoint refused the request (a 4xx other than 408/429): not retried.</summary>
/// <param name="message">The status and the server's error message.</param>
public sealed class EndpointRequestRejectedException(string message) : Exception(message);
