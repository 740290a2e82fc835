using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Text;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace DeepSeekRL.Rewards.Remote;

/// <summary>A remote reward model answered something that is not the contract: not retried, every score of the batch is missing.</summary>
/// <param name="message">What was wrong.</param>
public sealed class RemoteRewardModelException(string message) : Exception(message);

/// <summary>
/// <c>remote_reward_model</c>: scores batches through an HTTP reward model, behind a Polly pipeline — a time limit
/// per attempt, retries with exponential back-off and jitter on transient failures (connection errors, time-outs,
/// 408, 429 and 5xx), and a circuit breaker that stops hammering a failing endpoint. A malformed answer (not JSON,
/// no <c>rewards</c> array, wrong length, non-numbers) is not retried; the batch's scores are then missing, with the
/// reason. <c>null</c> entries in <c>rewards</c> are missing scores.
/// </summary>
[RewardRule("remote_reward_model")]
internal sealed class RemoteRewardModelRule : IBatchRewardRule, IRuleTimeout, IDisposable
{
    private readonly RemoteRewardModelOptions _options;
    private readonly HttpClient _http;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;

    public RemoteRewardModelRule(RemoteRewardModelOptions options)
    {
        _options = options;
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan };
        var token = options.ApiKeyEnvironmentVariable is null ? null : Environment.GetEnvironmentVariable(options.ApiKeyEnvironmentVariable);
        if (!string.IsNullOrEmpty(token))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        var transient = new PredicateBuilder<HttpResponseMessage>()
            .Handle<HttpRequestException>()
            .Handle<TimeoutRejectedException>()
            .HandleResult(r => r.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)r.StatusCode >= 500);
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { Name = "deepseekrl-remote-reward" };
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = transient,
                MaxRetryAttempts = options.MaxRetries,
                Delay = TimeSpan.FromMilliseconds(options.RetryDelayMs),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
            });
        }

        _pipeline = builder
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = transient,
                FailureRatio = options.CircuitFailureRatio,
                MinimumThroughput = options.CircuitMinimumThroughput,
                SamplingDuration = TimeSpan.FromSeconds(30),
                BreakDuration = TimeSpan.FromMilliseconds(options.CircuitBreakMs),
            })
            .AddTimeout(TimeSpan.FromMilliseconds(options.TimeoutMs))
            .Build();
    }

    /// <summary>Every attempt of every chunk may use its full time limit.</summary>
    public TimeSpan DefaultTimeout => TimeSpan.FromMilliseconds((long)_options.TimeoutMs * (_options.MaxRetries + 1) * 4 + 10_000);

    public async ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        (await ScoreBatchAsync([args], cancellationToken))[0];

    public async ValueTask<IReadOnlyList<RewardOutcome>> ScoreBatchAsync(IReadOnlyList<RewardArguments> batch, CancellationToken cancellationToken)
    {
        var outcomes = new RewardOutcome[batch.Count];
        for (var start = 0; start < batch.Count; start += _options.BatchSize)
        {
            var count = Math.Min(_options.BatchSize, batch.Count - start);
            try
            {
                var rewards = await ScoreChunkAsync(batch, start, count, cancellationToken);
                for (var i = 0; i < count; i++)
                {
                    outcomes[start + i] = rewards[i] is double v ? RewardOutcome.Score(v) : RewardOutcome.Missing("the reward model returned null");
                }
            }
            catch (Exception ex) when (ex is RemoteRewardModelException or HttpRequestException or TimeoutRejectedException or BrokenCircuitException or JsonException)
            {
                var reason = ex switch
                {
                    BrokenCircuitException => $"circuit open after repeated failures of {_options.Url}",
                    TimeoutRejectedException => $"{_options.Url} did not answer within {_options.TimeoutMs} ms",
                    JsonException => $"{_options.Url}: malformed answer, not JSON ({ex.Message.Split(" LineNumber", 2)[0]})",
                    _ => $"{_options.Url}: {ex.Message}",
                };
                for (var i = 0; i < count; i++)
                {
                    outcomes[start + i] = RewardOutcome.Missing(reason);
                }
            }
        }

        return outcomes;
    }

    public void Dispose() => _http.Dispose();

    private async Task<double?[]> ScoreChunkAsync(IReadOnlyList<RewardArguments> batch, int start, int count, CancellationToken cancellationToken)
    {
        var body = new MemoryStream();
        using (var writer = new Utf8JsonWriter(body))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("prompts");
            for (var i = start; i < start + count; i++)
            {
                writer.WriteStringValue(batch[i].Prompt);
            }

            writer.WriteEndArray();
            writer.WriteStartArray("completions");
            for (var i = start; i < start + count; i++)
            {
                writer.WriteStringValue(batch[i].Completion);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        var payload = body.ToArray();
        using var response = await _pipeline.ExecuteAsync(async ct =>
        {
            using var content = new ByteArrayContent(payload);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            var r = await _http.PostAsync(_options.Url, content, ct);
            // Read the body inside the attempt, so that a server that stalls mid-body hits the attempt's time limit.
            await r.Content.LoadIntoBufferAsync(16 << 20, ct);
            return r;
        }, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new RemoteRewardModelException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
        }

        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var document = await JsonText.ParseAsync(stream, default, cancellationToken);
        if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("rewards", out var rewards) || rewards.ValueKind != JsonValueKind.Array)
        {
            throw new RemoteRewardModelException("malformed answer: expected {\"rewards\": [...]}");
        }

        if (rewards.GetArrayLength() != count)
        {
            throw new RemoteRewardModelException($"malformed answer: {rewards.GetArrayLength()} rewards for {count} completions");
        }

        var values = new double?[count];
        var k = 0;
        foreach (var value in rewards.EnumerateArray())
        {
            values[k] = value.ValueKind switch
            {
                JsonValueKind.Number when value.TryGetDouble(out var d) && double.IsFinite(d) => d,
                JsonValueKind.Null => null,
                _ => throw new RemoteRewardModelException($"malformed answer: rewards[{k}] is {value.GetRawText()}, expected a number or null"),
            };
            k++;
        }

        return values;
    }
}

/// <summary>Registration of the <c>remote_reward_model</c> rule.</summary>
public static class RemoteRewardModelBuilderExtensions
{
    /// <summary>Adds a remote reward model.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options (<see cref="RemoteRewardModelOptions.Url"/> is required).</param>
    /// <param name="weight">The weight.</param>
    /// <param name="name">The rule name in the pipeline; default <c>remote_reward_model</c>.</param>
    /// <returns>The builder.</returns>
    public static RewardPipelineBuilder AddRemoteRewardModel(this RewardPipelineBuilder builder, RemoteRewardModelOptions options, double weight = 1.0, string name = "remote_reward_model")
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        var rule = new RemoteRewardModelRule(options);
        return builder.AddRule(name, rule, weight, rule.DefaultTimeout);
    }
}
