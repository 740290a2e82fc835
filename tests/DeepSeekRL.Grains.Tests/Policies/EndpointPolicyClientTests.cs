using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Grains.Policies;

namespace DeepSeekRL.Grains.Tests.Policies;

public sealed class EndpointPolicyClientTests
{
    private const string Valid = """
        {"id": "cmpl-1", "object": "text_completion", "choices": [
          {"index": 0, "text": " four", "finish_reason": "stop", "logprobs": {"tokens": [" f", "our"], "token_logprobs": [-0.5, -0.25], "top_logprobs": null, "text_offset": [0, 2]}},
          {"index": 1, "text": " 4", "finish_reason": "length", "logprobs": null}]}
        """;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static EndpointPolicyOptions Options(TestServer server, string suffix = "/v1") => new()
    {
        BaseUrl = new Uri(server.Url + suffix),
        Model = "tiny",
        RetryBaseDelay = TimeSpan.FromMilliseconds(5),
        MaxRetryDelay = TimeSpan.FromMilliseconds(50),
        RequestTimeout = TimeSpan.FromSeconds(10),
    };

    [Theory]
    [InlineData("/v1")]
    [InlineData("/v1/")]
    [InlineData("")]
    public async Task SampleAsync_ValidResponse_ParsesChoicesAndSendsFields(string suffix)
    {
        await using var server = new TestServer(_ => TestServer.Json(200, Valid));
        var options = Options(server, suffix);
        options.ApiKey = "sk-test";
        using var client = new EndpointPolicyClient(options);

        var samples = await client.SampleAsync("What is 2 + 2?", 2, new EndpointSamplingParameters(MaxTokens: 7, Temperature: 0.7, TopP: 0.9, Seed: 42, Stop: ["\n"]), Ct);

        Assert.Equal(2, samples.Count);
        Assert.Equal(" four", samples[0].Text);
        Assert.Equal([" f", "our"], samples[0].Tokens);
        Assert.Equal([-0.5f, -0.25f], samples[0].LogProbs);
        Assert.Equal("stop", samples[0].FinishReason);
        Assert.Equal(" 4", samples[1].Text);
        Assert.Equal("length", samples[1].FinishReason);
        Assert.Empty(samples[1].Tokens);
        Assert.Empty(samples[1].LogProbs);

        var request = Assert.Single(server.Requests);
        Assert.Equal("POST /v1/completions", request.Method + " " + request.Path);
        Assert.Equal("Bearer sk-test", request.Authorization);
        using var body = JsonDocument.Parse(request.Body);
        var root = body.RootElement;
        Assert.Equal("tiny", root.GetProperty("model").GetString());
        Assert.Equal("What is 2 + 2?", root.GetProperty("prompt").GetString());
        Assert.Equal(7, root.GetProperty("max_tokens").GetInt32());
        Assert.Equal(0.7, root.GetProperty("temperature").GetDouble());
        Assert.Equal(0.9, root.GetProperty("top_p").GetDouble());
        Assert.Equal(2, root.GetProperty("n").GetInt32());
        Assert.Equal(42, root.GetProperty("seed").GetInt64());
        Assert.Equal(1, root.GetProperty("logprobs").GetInt32());
        Assert.Equal("\n", root.GetProperty("stop")[0].GetString());
    }

    [Fact]
    public async Task SampleAsync_NoApiKeyNoLogProbs_SendsNeither()
    {
        await using var server = new TestServer(_ => TestServer.Json(200, """{"choices": [{"text": "x", "finish_reason": null}]}"""));
        using var client = new EndpointPolicyClient(Options(server));

        var sample = Assert.Single(await client.SampleAsync("p", 1, new EndpointSamplingParameters(LogProbs: false), Ct));

        Assert.Equal("x", sample.Text);
        Assert.Equal("unknown", sample.FinishReason);
        Assert.Empty(sample.Tokens);
        var request = Assert.Single(server.Requests);
        Assert.Null(request.Authorization);
        using var body = JsonDocument.Parse(request.Body);
        Assert.False(body.RootElement.TryGetProperty("logprobs", out _));
        Assert.False(body.RootElement.TryGetProperty("seed", out _));
    }

    [Fact]
    public async Task ListModelsAsync_ReturnsIds()
    {
        await using var server = new TestServer(_ => TestServer.Json(200, """{"object": "list", "data": [{"id": "a"}, {"id": "b"}]}"""));
        using var client = new EndpointPolicyClient(Options(server));

        Assert.Equal(["a", "b"], await client.ListModelsAsync(Ct));
        Assert.Equal("GET /v1/models", server.Requests[0].Method + " " + server.Requests[0].Path);
    }

    [Fact]
    public async Task SampleAsync_503TwiceThen200_Retries()
    {
        await using var server = new TestServer(r => r.Number <= 2
            ? TestServer.Json(503, """{"error": {"message": "overloaded"}}""")
            : TestServer.Json(200, Valid));
        using var client = new EndpointPolicyClient(Options(server));

        var samples = await client.SampleAsync("p", 2, new EndpointSamplingParameters(), Ct);

        Assert.Equal(2, samples.Count);
        Assert.Equal(3, server.Requests.Count);
    }

    [Fact]
    public async Task SampleAsync_429WithRetryAfter_WaitsThenRetries()
    {
        await using var server = new TestServer(r => r.Number == 1
            ? new TestResponse(429, """{"error": {"message": "slow down"}}""", RetryAfterSeconds: 1)
            : TestServer.Json(200, Valid));
        var options = Options(server);
        options.MaxRetryDelay = TimeSpan.FromSeconds(5);
        using var client = new EndpointPolicyClient(options);

        var started = TimeProvider.System.GetTimestamp();
        await client.SampleAsync("p", 2, new EndpointSamplingParameters(), Ct);

        Assert.Equal(2, server.Requests.Count);
        Assert.True(TimeProvider.System.GetElapsedTime(started) >= TimeSpan.FromSeconds(0.9));
    }

    [Fact]
    public async Task SampleAsync_503Always_SurfacesStatusAndServerMessage()
    {
        await using var server = new TestServer(_ => TestServer.Json(503, """{"error": {"message": "overloaded"}}"""));
        var options = Options(server);
        options.MaxRetries = 2;
        using var client = new EndpointPolicyClient(options);

        var ex = await Assert.ThrowsAsync<EndpointRequestException>(() => client.SampleAsync("p", 1, new EndpointSamplingParameters(), Ct));

        Assert.Equal(3, server.Requests.Count);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ex.StatusCode);
        Assert.Equal($"POST {server.Url}/v1/completions: 503 Service Unavailable: overloaded", ex.Message);
    }

    [Fact]
    public async Task SampleAsync_401_IsNotRetriedAndNamesServerMessage()
    {
        await using var server = new TestServer(_ => TestServer.Json(401, """{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}"""));
        using var client = new EndpointPolicyClient(Options(server));

        var ex = await Assert.ThrowsAsync<EndpointRequestException>(() => client.SampleAsync("p", 1, new EndpointSamplingParameters(), Ct));

        Assert.Single(server.Requests);
        Assert.Equal($"POST {server.Url}/v1/completions: 401 Unauthorized: Incorrect API key provided", ex.Message);
    }

    [Fact]
    public async Task SampleAsync_ServerRefusesN_FallsBackToSeparateRequestsAndRemembers()
    {
        await using var server = new TestServer(r =>
        {
            using var body = JsonDocument.Parse(r.Body);
            var n = body.RootElement.GetProperty("n").GetInt32();
            if (n > 1)
            {
                return TestServer.Json(400, """{"error": {"message": "n = 3: only n = 1 is supported", "param": "n"}}""");
            }

            var seed = body.RootElement.GetProperty("seed").GetInt64();
            return TestServer.Json(200, $$"""{"choices": [{"index": 0, "text": "seed {{seed}}", "finish_reason": "stop"}]}""");
        });
        using var client = new EndpointPolicyClient(Options(server));

        var samples = await client.SampleAsync("p", 3, new EndpointSamplingParameters(Seed: 10), Ct);

        Assert.Equal(["seed 10", "seed 11", "seed 12"], samples.Select(s => s.Text));
        Assert.Equal(4, server.Requests.Count);
        Assert.True(client.UsesSeparateRequests);

        await client.SampleAsync("p", 2, new EndpointSamplingParameters(Seed: 0), Ct);
        Assert.Equal(6, server.Requests.Count); // no second refused n > 1 request
    }

    [Fact]
    public async Task SampleAsync_ServerIgnoresN_AsksForTheRestSeparately()
    {
        await using var server = new TestServer(_ => TestServer.Json(200, """{"choices": [{"text": "one", "finish_reason": "stop"}]}"""));
        using var client = new EndpointPolicyClient(Options(server));

        var samples = await client.SampleAsync("p", 3, new EndpointSamplingParameters(), Ct);

        Assert.Equal(3, samples.Count);
        Assert.Equal(3, server.Requests.Count);
        Assert.True(client.UsesSeparateRequests);
    }

    [Theory]
    [InlineData("<html>Bad Gateway</html>", "body: expected JSON, got '<html>Bad Gateway</html>'")]
    [InlineData("""{"id": "x", "object": "text_completion"}""", "choices: missing; expected an array")]
    [InlineData("""{"choices": {"text": "x"}}""", "choices: expected an array, got object")]
    [InlineData("""{"choices": [{"text": 5}]}""", "choices[0].text: expected a string, got number 5")]
    [InlineData("""{"choices": ["x"]}""", "choices[0]: expected an object, got the string 'x'")]
    [InlineData("""{"choices": [{"text": "x", "logprobs": {"tokens": ["a"], "token_logprobs": ["high"]}}]}""", "choices[0].logprobs.token_logprobs[0]: expected a number or null")]
    [InlineData("""{"choices": [{"text": "x", "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-1]}}]}""", "tokens has 2 entries but token_logprobs has 1")]
    [InlineData("""{"choices": [{"text": "tru""", "body: expected JSON, got '{\"choices\": [{\"text\": \"tru'")]
    [InlineData("", "body: expected JSON, got the body is empty")]
    public async Task SampleAsync_Garbage_RetriedOnceThenOneLineError(string body, string expected)
    {
        await using var server = new TestServer(_ => TestServer.Json(200, body));
        using var client = new EndpointPolicyClient(Options(server));

        var ex = await Assert.ThrowsAsync<EndpointResponseException>(() => client.SampleAsync("p", 1, new EndpointSamplingParameters(), Ct));

        Assert.Equal(2, server.Requests.Count);
        Assert.StartsWith($"{server.Url}/v1/completions: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public async Task SampleAsync_LongGarbage_QuotesAtMost120Characters()
    {
        var junk = "<html>" + new string('x', 5000) + "\n</html>";
        await using var server = new TestServer(_ => TestServer.Json(200, junk));
        using var client = new EndpointPolicyClient(Options(server));

        var ex = await Assert.ThrowsAsync<EndpointResponseException>(() => client.SampleAsync("p", 1, new EndpointSamplingParameters(), Ct));

        Assert.True(ex.Message.Length < 400, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public async Task SampleAsync_BodyShorterThanContentLength_IsResponseError()
    {
        await using var server = new TestServer(_ => new TestResponse(200, """{"choices": [{"te""", Truncate: true));
        using var client = new EndpointPolicyClient(Options(server));

        var ex = await Assert.ThrowsAsync<EndpointResponseException>(() => client.SampleAsync("p", 1, new EndpointSamplingParameters(), Ct));

        Assert.Contains("body: the response ended before its declared length", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SampleAsync_ServerHangs_TimesOutPerAttempt()
    {
        await using var server = new TestServer(_ => new TestResponse(200, Valid, Hang: true));
        var options = Options(server);
        options.RequestTimeout = TimeSpan.FromMilliseconds(200);
        options.MaxRetries = 1;
        using var client = new EndpointPolicyClient(options);

        var ex = await Assert.ThrowsAsync<EndpointRequestException>(() => client.SampleAsync("p", 1, new EndpointSamplingParameters(), Ct));

        Assert.Equal(2, server.Requests.Count);
        Assert.Equal($"POST {server.Url}/v1/completions: no response within 0.2 s (RequestTimeout), 2 attempt(s)", ex.Message);
    }

    [Fact]
    public async Task SampleAsync_ManyFailures_OpenTheCircuitAndFailFast()
    {
        await using var server = new TestServer(_ => TestServer.Json(500, """{"error": {"message": "boom"}}"""));
        var options = Options(server);
        options.MaxRetries = 0;
        options.BreakerMinimumThroughput = 4;
        options.BreakDuration = TimeSpan.FromSeconds(30);
        using var client = new EndpointPolicyClient(options);

        for (var i = 0; i < 4; i++)
        {
            var failure = await Assert.ThrowsAsync<EndpointRequestException>(() => client.SampleAsync("p", 1, new EndpointSamplingParameters(), Ct));
            Assert.EndsWith("500 Internal Server Error: boom", failure.Message, StringComparison.Ordinal);
        }

        var ex = await Assert.ThrowsAsync<EndpointRequestException>(() => client.SampleAsync("p", 1, new EndpointSamplingParameters(), Ct));

        Assert.Equal(4, server.Requests.Count);
        Assert.Equal($"POST {server.Url}/v1/completions: circuit open after repeated failures; calls fail fast for up to 30 s", ex.Message);
    }

    [Fact]
    public async Task SampleAsync_ManyCallers_ConcurrencyLimitHonoured()
    {
        var inFlight = 0;
        var maxInFlight = 0;
        await using var server = new TestServer(async _ =>
        {
            var now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref maxInFlight, now);
            await Task.Delay(50, CancellationToken.None); // hold the request so callers overlap
            Interlocked.Decrement(ref inFlight);
            return TestServer.Json(200, """{"choices": [{"text": "x"}]}""");
        });
        var options = Options(server);
        options.MaxConcurrency = 2;
        using var client = new EndpointPolicyClient(options);

        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => client.SampleAsync("p", 1, new EndpointSamplingParameters(), Ct)));

        Assert.Equal(10, server.Requests.Count);
        Assert.Equal(2, maxInFlight);
    }

    [Fact]
    public void Options_Invalid_NameTheOption()
    {
        Assert.Equal("BaseUrl: required (the server's base URL, e.g. http://host:8000/v1)", new EndpointPolicyOptions { Model = "m" }.Validate());
        Assert.Equal("MaxConcurrency = 0: expected 1..1024", new EndpointPolicyOptions { BaseUrl = new Uri("http://h/v1"), Model = "m", MaxConcurrency = 0 }.Validate());
        Assert.Equal("BaseUrl = ftp://h/: expected an absolute http(s) URL", new EndpointPolicyOptions { BaseUrl = new Uri("ftp://h"), Model = "m" }.Validate());
        Assert.Null(new EndpointPolicyOptions { BaseUrl = new Uri("http://h/v1"), Model = "m" }.Validate());
        Assert.Throws<ArgumentException>(() => new EndpointPolicyClient(new EndpointPolicyOptions()));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    private sealed record TestRequest(int Number, string Method, string Path, string? Authorization, string Body);

    private sealed record TestResponse(int Status, string Body, int? RetryAfterSeconds = null, bool Truncate = false, bool Hang = false);

    // A real HTTP/1.1 server on 127.0.0.1 over a TcpListener (raw HTTP, so it can also truncate bodies and hang):
    // one request per connection, Connection: close.
    private sealed class TestServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Func<TestRequest, Task<TestResponse>> _respond;
        private readonly CancellationTokenSource _stop = new();
        private readonly List<TestRequest> _requests = [];
        private readonly Task _loop;
        private int _count;

        public TestServer(Func<TestRequest, TestResponse> respond)
            : this(r => Task.FromResult(respond(r)))
        {
        }

        public TestServer(Func<TestRequest, Task<TestResponse>> respond)
        {
            _respond = respond;
            _listener.Start();
            Url = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
            _loop = AcceptAsync();
        }

        public string Url { get; }

        public IReadOnlyList<TestRequest> Requests
        {
            get
            {
                lock (_requests)
                {
                    return [.. _requests];
                }
            }
        }

        public static TestResponse Json(int status, string body) => new(status, body);

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _loop;
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }

            _stop.Dispose();
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                var socket = await _listener.AcceptTcpClientAsync(_stop.Token);
                _ = Task.Run(() => ServeAsync(socket));
            }
        }

        private async Task ServeAsync(TcpClient socket)
        {
            using (socket)
            {
                try
                {
                    var stream = socket.GetStream();
                    var head = new StringBuilder();
                    var buffer = new byte[1];
                    while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
                    {
                        if (await stream.ReadAsync(buffer, _stop.Token) == 0)
                        {
                            return;
                        }

                        head.Append((char)buffer[0]);
                    }

                    var lines = head.ToString().Split("\r\n");
                    var start = lines[0].Split(' ');
                    string? Header(string name) => lines.Skip(1).Where(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))
                        .Select(l => l[(name.Length + 1)..].Trim()).FirstOrDefault();
                    var length = int.Parse(Header("Content-Length") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
                    var body = new byte[length];
                    await stream.ReadExactlyAsync(body, _stop.Token);
                    var request = new TestRequest(Interlocked.Increment(ref _count), start[0], start[1], Header("Authorization"), Encoding.UTF8.GetString(body));
                    lock (_requests)
                    {
                        _requests.Add(request);
                    }

                    var response = await _respond(request);
                    if (response.Hang)
                    {
                        await Task.Delay(Timeout.Infinite, _stop.Token);
                    }

                    var bytes = Encoding.UTF8.GetBytes(response.Body);
                    var declared = response.Truncate ? bytes.Length + 100 : bytes.Length;
                    var reason = ((HttpStatusCode)response.Status) switch
                    {
                        HttpStatusCode.OK => "OK",
                        HttpStatusCode.BadRequest => "Bad Request",
                        HttpStatusCode.Unauthorized => "Unauthorized",
                        HttpStatusCode.TooManyRequests => "Too Many Requests",
                        HttpStatusCode.InternalServerError => "Internal Server Error",
                        HttpStatusCode.ServiceUnavailable => "Service Unavailable",
                        _ => "Status",
                    };
                    var retryAfter = response.RetryAfterSeconds is int s ? $"Retry-After: {s}\r\n" : string.Empty;
                    var header = $"HTTP/1.1 {response.Status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n{retryAfter}Connection: close\r\n\r\n";
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(header), _stop.Token);
                    await stream.WriteAsync(bytes, _stop.Token);
                    await stream.FlushAsync(_stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException)
                {
                    // The client went away (a timeout) or the server is stopping.
                }
            }
        }
    }
}
