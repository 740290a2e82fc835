using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Threading.RateLimiting;
using DeepSeekRL.Text;
using Polly;
using Polly.CircuitBreaker;
using Polly.RateLimiting;
using Polly.Retry;
using Polly.Timeout;

namespace DeepSeekRL.Grains.Policies;

/// <summary>
/// Samples completions from an OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp <c>llama-server</c>,
/// <c>deepseekrl serve</c>) through <c>POST /v1/completions</c>, behind a Polly pipeline: concurrency limiter, circuit
/// breaker, retry with exponential back-off and jitter, per-attempt timeout (outermost first).
/// </summary>
/// <remarks>
/// Thread-safe: one client serves any number of concurrent callers; <see cref="EndpointPolicyOptions.MaxConcurrency"/>
/// bounds the HTTP requests in flight. A server that refuses <c>n &gt; 1</c> (a 400 naming <c>n</c>) or answers it with
/// a single choice is remembered, and later calls send n separate requests with seeds seed, seed + 1, ...
/// </remarks>
public sealed partial class EndpointPolicyClient : IDisposable
{
    private const int ExcerptLength = 120;
    private static readonly ResiliencePropertyKey<int> MalformedKey = new("deepseekrl.endpoint.malformed");
    private readonly EndpointPolicyOptions _options;
    private readonly HttpClient _http;
    private readonly ResiliencePipeline _pipeline;
    private readonly Uri _completions;
    private readonly Uri _models;
    private volatile bool _singleSample;

    /// <summary>Creates the client.</summary>
    /// <param name="options">The options; checked with <see cref="EndpointPolicyOptions.Validate"/>.</param>
    /// <param name="handler">The HTTP handler (not disposed by the client); default a new <see cref="SocketsHttpHandler"/>.</param>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public EndpointPolicyClient(EndpointPolicyOptions options, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } error)
        {
            throw new ArgumentException(error, nameof(options));
        }

        _options = options;
        var root = options.BaseUrl!.GetLeftPart(UriPartial.Path).TrimEnd('/');
        if (root.EndsWith("/v1", StringComparison.OrdinalIgnoreCase))
        {
            root = root[..^3];
        }

        _completions = new Uri(root + "/v1/completions");
        _models = new Uri(root + "/v1/models");
        _http = handler is null
            ? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }, disposeHandler: true)
            : new HttpClient(handler, disposeHandler: false);
        _http.Timeout = Timeout.InfiniteTimeSpan; // the pipeline's per-attempt timeout governs
        _pipeline = BuildPipeline(options);
    }

    /// <summary>The URL completions are posted to (<c>{base}/v1/completions</c>).</summary>
    public Uri CompletionsUrl => _completions;

    /// <summary>Whether the server was found to refuse <c>n &gt; 1</c>, so calls send one request per completion.</summary>
    public bool UsesSeparateRequests => _singleSample;

    /// <summary>Samples <paramref name="n"/> completions of <paramref name="prompt"/>.</summary>
    /// <param name="prompt">The prompt text (already in the model's chat template, if any).</param>
    /// <param name="n">Completions wanted, 1..1024.</param>
    /// <param name="parameters">How to sample.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The <paramref name="n"/> completions, in the server's choice order.</returns>
    /// <exception cref="EndpointRequestException">An HTTP error, network error or timeout after retries, or an open circuit.</exception>
    /// <exception cref="EndpointResponseException">The server's answer was malformed twice in a row.</exception>
    public async Task<IReadOnlyList<EndpointSample>> SampleAsync(string prompt, int n, EndpointSamplingParameters parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(n, 1024);
        if (n == 1 || _singleSample)
        {
            return await SeparateAsync(prompt, 0, n, parameters, cancellationToken);
        }

        IReadOnlyList<EndpointSample> samples;
        try
        {
            samples = await PostAsync(prompt, n, parameters.Seed, parameters, cancellationToken);
        }
        catch (EndpointRequestException ex) when (ex.StatusCode == HttpStatusCode.BadRequest && MentionsN(ex.ServerMessage))
        {
            _singleSample = true;
            return await SeparateAsync(prompt, 0, n, parameters, cancellationToken);
        }

        if (samples.Count == n)
        {
            return samples;
        }

        if (samples.Count == 1)
        {
            // The server ignored n (Ollama does): keep its one completion and ask for the rest one by one.
            _singleSample = true;
            var rest = await SeparateAsync(prompt, 1, n - 1, parameters, cancellationToken);
            return [samples[0], .. rest];
        }

        throw new EndpointResponseException($"POST {_completions}: choices: expected {n} completions (n = {n}), got {samples.Count}");
    }

    /// <summary>Lists the model ids the server serves (<c>GET /v1/models</c>, the <c>data[].id</c> fields).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The model ids.</returns>
    /// <exception cref="EndpointRequestException">An HTTP error, network error or timeout after retries, or an open circuit.</exception>
    /// <exception cref="EndpointResponseException">The answer was malformed.</exception>
    public Task<IReadOnlyList<string>> ListModelsAsync(CancellationToken cancellationToken) =>
        ExecuteAsync(HttpMethod.Get, _models, null, ParseModels, cancellationToken);

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();

    private async Task<IReadOnlyList<EndpointSample>> SeparateAsync(string prompt, int first, int count, EndpointSamplingParameters parameters, CancellationToken cancellationToken)
    {
        // Each request goes through the pipeline on its own, so the concurrency limiter bounds them.
        var tasks = new Task<IReadOnlyList<EndpointSample>>[count];
        for (var i = 0; i < count; i++)
        {
            var seed = parameters.Seed is long s ? unchecked(s + first + i) : (long?)null;
            tasks[i] = PostAsync(prompt, 1, seed, parameters, cancellationToken);
        }

        var results = await Task.WhenAll(tasks);
        var samples = new List<EndpointSample>(count);
        foreach (var result in results)
        {
            if (result.Count < 1)
            {
                throw new EndpointResponseException($"POST {_completions}: choices: expected 1 completion, got none");
            }

            samples.Add(result[0]);
        }

        return samples;
    }

    private Task<IReadOnlyList<EndpointSample>> PostAsync(string prompt, int n, long? seed, EndpointSamplingParameters parameters, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["model"] = _options.Model,
            ["prompt"] = prompt,
            ["max_tokens"] = parameters.MaxTokens,
            ["temperature"] = parameters.Temperature,
            ["top_p"] = parameters.TopP,
            ["n"] = n,
        };
        if (seed is long s)
        {
            body["seed"] = s;
        }

        if (parameters.LogProbs)
        {
            body["logprobs"] = 1;
        }

        if (parameters.Stop is { Count: > 0 } stop)
        {
            body["stop"] = new JsonArray([.. stop.Select(x => (JsonNode?)x)]);
        }

        return ExecuteAsync(HttpMethod.Post, _completions, body.ToJsonString(), ParseCompletions, cancellationToken);
    }

    private async Task<T> ExecuteAsync<T>(HttpMethod method, Uri url, string? body, Func<Uri, string, T> parse, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        try
        {
            return await _pipeline.ExecuteAsync(
                async (ctx, state) => await state.Self.AttemptAsync(state.Method, state.Url, state.Body, state.Parse, ctx.CancellationToken),
                context,
                (Self: this, Method: method, Url: url, Body: body, Parse: parse));
        }
        catch (BrokenCircuitException ex)
        {
            throw new EndpointRequestException(
                $"{method} {url}: circuit open after repeated failures; calls fail fast for up to {_options.BreakDuration.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s",
                null, null, ex.RetryAfter, ex);
        }
        catch (TimeoutRejectedException ex)
        {
            throw new EndpointRequestException(
                $"{method} {url}: no response within {_options.RequestTimeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s (RequestTimeout), {_options.MaxRetries + 1} attempt(s)",
                null, null, null, ex);
        }
        catch (RateLimiterRejectedException ex)
        {
            throw new EndpointRequestException($"{method} {url}: too many requests queued for MaxConcurrency = {_options.MaxConcurrency}", null, null, null, ex);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private async Task<T> AttemptAsync<T>(HttpMethod method, Uri url, string? body, Func<Uri, string, T> parse, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, url);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        if (_options.ApiKey is { Length: > 0 } key)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex) when (ex is not EndpointRequestException)
        {
            throw new EndpointRequestException($"{method} {url}: {OneLine(ex.Message)}", null, null, null, ex);
        }

        using (response)
        {
            string text;
            try
            {
                text = await response.Content.ReadAsStringAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException)
            {
                if (!response.IsSuccessStatusCode)
                {
                    throw new EndpointRequestException($"{method} {url}: {Status(response)}", response.StatusCode, null, RetryAfter(response), ex);
                }

                throw new EndpointResponseException($"{method} {url}: body: the response ended before its declared length ({OneLine(ex.Message)})", ex);
            }

            if (!response.IsSuccessStatusCode)
            {
                var message = ServerMessage(text);
                throw new EndpointRequestException(
                    $"{method} {url}: {Status(response)}" + (message is null ? string.Empty : ": " + message),
                    response.StatusCode, message, RetryAfter(response));
            }

            return parse(url, text);
        }
    }

    private static string Status(HttpResponseMessage response) =>
        string.Create(CultureInfo.InvariantCulture, $"{(int)response.StatusCode} {response.ReasonPhrase}").TrimEnd();

    private static TimeSpan? RetryAfter(HttpResponseMessage response) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date - (response.Headers.Date ?? date),
        _ => null,
    };

    // The error message of an OpenAI-style ({"error": {"message"}}), Ollama/llama.cpp ({"error": "..."}) or
    // FastAPI ({"detail": ...}) error body; otherwise an excerpt of the body.
    private static string? ServerMessage(string body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return null;
        }

        try
        {
            var node = JsonNode.Parse(JsonText.ReplaceLoneSurrogates(body));
            var message = node?["error"] switch
            {
                JsonObject e when e["message"] is JsonValue m && m.TryGetValue<string>(out var s) => s,
                JsonValue v when v.TryGetValue<string>(out var s) => s,
                _ => null,
            };
            message ??= node is JsonObject o && o["detail"] is { } detail ? detail.ToJsonString() : null;
            message ??= node is JsonObject o2 && o2["message"] is JsonValue mv && mv.TryGetValue<string>(out var ms) ? ms : null;
            return Excerpt(message ?? body);
        }
        catch (JsonException)
        {
            return Excerpt(body);
        }
    }

    private static bool MentionsN(string? message) => message is not null && NWord().IsMatch(message);

    [GeneratedRegex(@"(^|[^\w])('n'|""n""|n)([^\w]|$)", RegexOptions.CultureInvariant)]
    private static partial Regex NWord();

    /// <summary>One line of at most <see cref="ExcerptLength"/> characters.</summary>
    internal static string Excerpt(string text)
    {
        var line = OneLine(text).Trim();
        return line.Length <= ExcerptLength ? line : line[..ExcerptLength] + "...";
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private static ResiliencePipeline BuildPipeline(EndpointPolicyOptions options)
    {
        var builder = new ResiliencePipelineBuilder { Name = "deepseekrl-endpoint" };
        builder.AddConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = options.MaxConcurrency, QueueLimit = 1 << 20, QueueProcessingOrder = QueueProcessingOrder.OldestFirst });
        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            FailureRatio = options.BreakerFailureRatio,
            MinimumThroughput = options.BreakerMinimumThroughput,
            SamplingDuration = TimeSpan.FromSeconds(30),
            BreakDuration = options.BreakDuration,
            // Client errors (a bad request, a wrong key) say nothing about the server's health.
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } ex && !args.Context.CancellationToken.IsCancellationRequested
                && (ex is TimeoutRejectedException or EndpointResponseException || ex is EndpointRequestException { IsTransient: true })),
        });
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.MaxRetryDelay,
                ShouldHandle = args => ValueTask.FromResult(ShouldRetry(args.Outcome.Exception, args.Context)),
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Exception is EndpointRequestException { RetryAfter: { } after }
                    ? (TimeSpan?)(after < TimeSpan.Zero ? TimeSpan.Zero : after > options.MaxRetryDelay ? options.MaxRetryDelay : after)
                    : null),
            });
        }

        builder.AddTimeout(options.RequestTimeout);
        return builder.Build();
    }

    private static bool ShouldRetry(Exception? exception, ResilienceContext context)
    {
        if (exception is null || context.CancellationToken.IsCancellationRequested)
        {
            return false;
        }

        if (exception is EndpointResponseException)
        {
            // A malformed answer may be a glitch; twice is the server's way of answering.
            var seen = context.Properties.GetValue(MalformedKey, 0);
            context.Properties.Set(MalformedKey, seen + 1);
            return seen == 0;
        }

        return exception is TimeoutRejectedException || exception is EndpointRequestException { IsTransient: true };
    }
}
