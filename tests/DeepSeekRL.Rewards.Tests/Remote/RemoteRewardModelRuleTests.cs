using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Remote;

namespace DeepSeekRL.Rewards.Tests.Remote;

/// <summary>A real HTTP server on loopback whose behaviour each test scripts.</summary>
internal sealed class ScriptedRewardServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<int, JsonElement, (int Status, string Body, bool Hang)> _respond;
    private int _requests;

    public ScriptedRewardServer(Func<int, JsonElement, (int Status, string Body, bool Hang)> respond)
    {
        _respond = respond;
        var port = FreePort();
        Url = $"http://127.0.0.1:{port}/score/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    public string Url { get; }

    public int Requests => Volatile.Read(ref _requests);

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        _stop.Dispose();
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                var n = Interlocked.Increment(ref _requests);
                using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
                using var request = JsonDocument.Parse(await reader.ReadToEndAsync());
                var (status, body, hang) = _respond(n, request.RootElement);
                if (hang)
                {
                    try
                    {
                        await Task.Delay(Timeout.Infinite, _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }

                context.Response.StatusCode = status;
                var bytes = Encoding.UTF8.GetBytes(body);
                context.Response.ContentType = "application/json";
                try
                {
                    await context.Response.OutputStream.WriteAsync(bytes);
                    context.Response.Close();
                }
                catch (HttpListenerException)
                {
                }
            });
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

public sealed class RemoteRewardModelRuleTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static (int, string, bool) LengthRewards(JsonElement request) =>
        (200, JsonSerializer.Serialize(new { rewards = request.GetProperty("completions").EnumerateArray().Select(c => (double)c.GetString()!.Length).ToArray() }), false);

    private static RewardInput[] Inputs(int n) => Enumerable.Range(0, n).Select(i => new RewardInput("p" + i, new string('x', i + 1), null)).ToArray();

    private static RewardPipeline Pipeline(RemoteRewardModelOptions options) =>
        new RewardPipelineBuilder().AddRemoteRewardModel(options).Build();

    [Fact]
    public async Task ScoreAsync_HealthyServer_ScoresInBatchesInOrder()
    {
        using var server = new ScriptedRewardServer((_, request) => LengthRewards(request));
        var pipeline = Pipeline(new RemoteRewardModelOptions { Url = server.Url, BatchSize = 4 });

        var results = await pipeline.ScoreAsync(Inputs(10), Ct);

        Assert.Equal(Enumerable.Range(1, 10).Select(i => (double?)i), results.Select(r => r["remote_reward_model"]));
        Assert.Equal(3, server.Requests);
    }

    [Fact]
    public async Task ScoreAsync_ServerFailsTwiceWith500_RetriesAndSucceeds()
    {
        using var server = new ScriptedRewardServer((n, request) => n <= 2 ? (500, "oops", false) : LengthRewards(request));
        var pipeline = Pipeline(new RemoteRewardModelOptions { Url = server.Url, MaxRetries = 3, RetryDelayMs = 10 });

        var results = await pipeline.ScoreAsync(Inputs(3), Ct);

        Assert.Equal([1.0, 2.0, 3.0], results.Select(r => r["remote_reward_model"]!.Value));
        Assert.Equal(3, server.Requests);
    }

    [Fact]
    public async Task ScoreAsync_ServerHangs_TimesOutAndScoresAreMissing()
    {
        using var server = new ScriptedRewardServer((_, _) => (200, "{}", true));
        var pipeline = Pipeline(new RemoteRewardModelOptions { Url = server.Url, TimeoutMs = 200, MaxRetries = 1, RetryDelayMs = 10 });

        var results = await pipeline.ScoreAsync(Inputs(2), Ct);

        Assert.All(results, r => Assert.Null(r["remote_reward_model"]));
        Assert.Contains("did not answer within 200 ms", results[0].Reasons["remote_reward_model"], StringComparison.Ordinal);
        Assert.Equal(2, server.Requests);
        Assert.Equal(2, pipeline.GetStats()[0].Missing);
    }

    [Theory]
    [InlineData("not json at all", "malformed answer, not JSON")]
    [InlineData("{\"scores\": [1]}", "expected {\"rewards\": [...]}")]
    [InlineData("{\"rewards\": [1]}", "1 rewards for 2 completions")]
    [InlineData("{\"rewards\": [1, \"high\"]}", "rewards[1] is \"high\"")]
    public async Task ScoreAsync_MalformedAnswer_IsNotRetriedAndScoresAreMissingWithTheReason(string body, string reason)
    {
        using var server = new ScriptedRewardServer((_, _) => (200, body, false));
        var pipeline = Pipeline(new RemoteRewardModelOptions { Url = server.Url, MaxRetries = 3, RetryDelayMs = 10 });

        var results = await pipeline.ScoreAsync(Inputs(2), Ct);

        Assert.All(results, r => Assert.Null(r["remote_reward_model"]));
        Assert.Contains(reason, results[1].Reasons["remote_reward_model"], StringComparison.Ordinal);
        Assert.Equal(1, server.Requests);
    }

    [Fact]
    public async Task ScoreAsync_NullReward_IsAMissingScoreForThatCompletionOnly()
    {
        using var server = new ScriptedRewardServer((_, _) => (200, "{\"rewards\": [0.25, null]}", false));
        var results = await Pipeline(new RemoteRewardModelOptions { Url = server.Url }).ScoreAsync(Inputs(2), Ct);

        Assert.Equal(0.25, results[0]["remote_reward_model"]);
        Assert.Null(results[1]["remote_reward_model"]);
    }

    [Fact]
    public async Task ScoreAsync_ServerKeepsFailing_CircuitOpensAndStopsCallingIt()
    {
        using var server = new ScriptedRewardServer((_, _) => (503, "busy", false));
        var pipeline = Pipeline(new RemoteRewardModelOptions
        {
            Url = server.Url, BatchSize = 1, MaxRetries = 0, CircuitMinimumThroughput = 4, CircuitFailureRatio = 0.5, CircuitBreakMs = 60_000,
        });

        var results = await pipeline.ScoreAsync(Inputs(10), Ct);

        Assert.All(results, r => Assert.Null(r["remote_reward_model"]));
        Assert.Equal(4, server.Requests);
        Assert.Contains("circuit open", results[9].Reasons["remote_reward_model"], StringComparison.Ordinal);
    }
}
