using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace DeepSeekRL.Silo.Tests.Serving;

// Issue 19's serve items against the real `deepseekrl serve` child process on a tiny model (vocabulary 400, context
// 256): D7 top log-probs, D8 independent and random streams, D9 size limits, queue and fairness; JSON errors.
public sealed class ServingEngineTests(ServeFixture fixture) : IClassFixture<ServeFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Chat(string extra) =>
        $$"""{"messages": [{"role": "user", "content": "What is 2 + 2?"}], {{extra}}}""";

    private static void AssertError(HttpStatusCode expected, (HttpStatusCode Status, JsonDocument Body, HttpResponseMessage Response) answer, string messagePart)
    {
        var text = answer.Body.RootElement.ToString();
        Assert.True(expected == answer.Status, $"{answer.Status}: {text[..Math.Min(text.Length, 500)]}");
        var error = answer.Body.RootElement.GetProperty("error");
        Assert.Contains(messagePart, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.True(error.TryGetProperty("type", out _) && error.TryGetProperty("param", out _) && error.TryGetProperty("code", out _), error.ToString());
    }

    [Fact]
    public async Task ChatCompletions_D7_TopLogProbs_AreTheKMostLikelyTokensInOpenAiShape()
    {
        var server = await fixture.SharedAsync();
        foreach (var temperature in new[] { 0, 1 })
        {
            var (status, body, _) = await server.PostAsync("/v1/chat/completions", Chat($$"""
                "max_tokens": 8, "temperature": {{temperature}}, "seed": 5, "logprobs": true, "top_logprobs": 3
                """));
            Assert.True(status == HttpStatusCode.OK, body.RootElement.ToString());
            var content = body.RootElement.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content");
            Assert.True(content.GetArrayLength() > 0);
            foreach (var entry in content.EnumerateArray())
            {
                var top = entry.GetProperty("top_logprobs");
                Assert.Equal(3, top.GetArrayLength());
                var values = top.EnumerateArray().Select(t => t.GetProperty("logprob").GetDouble()).ToArray();
                Assert.Equal(values.OrderDescending(), values);
                Assert.All(values, v => Assert.True(v <= 0 && double.IsFinite(v)));
                Assert.True(values.Sum(Math.Exp) <= 1.0001);
                Assert.All(top.EnumerateArray(), t =>
                {
                    Assert.Equal(JsonValueKind.String, t.GetProperty("token").ValueKind);
                    Assert.Equal(JsonValueKind.Array, t.GetProperty("bytes").ValueKind);
                });

                // The same distribution as the chosen token's own logprob (the model's, before temperature/top-p).
                var logprob = entry.GetProperty("logprob").GetDouble();
                Assert.True(logprob <= values[0] + 1e-6, $"chosen {logprob} above the top {values[0]}");
                if (temperature == 0)
                {
                    Assert.Equal(logprob, values[0], 5);
                    Assert.Equal(entry.GetProperty("token").GetString(), top[0].GetProperty("token").GetString());
                }
            }
        }

        // logprobs without top_logprobs: empty lists, as OpenAI answers.
        var (_, plain, _) = await server.PostAsync("/v1/chat/completions", Chat("\"max_tokens\": 3, \"logprobs\": true"));
        Assert.All(plain.RootElement.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content").EnumerateArray(),
            e => Assert.Equal(0, e.GetProperty("top_logprobs").GetArrayLength()));
    }

    [Fact]
    public async Task Completions_D7_LogProbs_GiveTopLogProbDictionaries()
    {
        var server = await fixture.SharedAsync();
        var (status, body, _) = await server.PostAsync("/v1/completions", """{"prompt": "What is 3 + 3?", "max_tokens": 6, "temperature": 0, "logprobs": 2}""");
        Assert.True(status == HttpStatusCode.OK, body.RootElement.ToString());
        var logprobs = body.RootElement.GetProperty("choices")[0].GetProperty("logprobs");
        var tokens = logprobs.GetProperty("tokens");
        var top = logprobs.GetProperty("top_logprobs");
        Assert.Equal(JsonValueKind.Array, top.ValueKind);
        Assert.Equal(tokens.GetArrayLength(), top.GetArrayLength());
        for (var i = 0; i < tokens.GetArrayLength(); i++)
        {
            var entries = top[i].EnumerateObject().ToArray();
            Assert.InRange(entries.Length, 1, 2); // two tokens decoding to the same text share a key
            Assert.All(entries, e => Assert.True(e.Value.GetDouble() <= 0));

            // Greedy: the chosen token is the most likely one, with the same log-prob.
            var best = entries.MaxBy(e => e.Value.GetDouble());
            Assert.Equal(tokens[i].GetString(), best.Name);
            Assert.Equal(logprobs.GetProperty("token_logprobs")[i].GetDouble(), best.Value.GetDouble(), 5);
        }
    }

    [Fact]
    public async Task ChatCompletions_D7_StreamedTopLogProbs_EqualTheUnstreamedOnes()
    {
        var server = await fixture.SharedAsync();
        const string Extra = "\"max_tokens\": 6, \"temperature\": 0, \"logprobs\": true, \"top_logprobs\": 2";
        var (_, whole, _) = await server.PostAsync("/v1/chat/completions", Chat(Extra));
        var expected = whole.RootElement.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content").EnumerateArray()
            .Select(e => e.GetProperty("top_logprobs").ToString()).ToArray();

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(Chat(Extra + ", \"stream\": true"), Encoding.UTF8, "application/json") };
        using var response = await server.Http.SendAsync(request, Ct);
        var streamed = new List<string>();
        foreach (var line in (await response.Content.ReadAsStringAsync(Ct)).Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var chunk = JsonDocument.Parse(line["data: ".Length..]);
            var lp = chunk.RootElement.GetProperty("choices")[0].GetProperty("logprobs");
            if (lp.ValueKind == JsonValueKind.Object)
            {
                streamed.AddRange(lp.GetProperty("content").EnumerateArray().Select(e => e.GetProperty("top_logprobs").ToString()));
            }
        }

        Assert.Equal(expected, streamed);
        Assert.All(streamed, s => Assert.Equal(2, JsonDocument.Parse(s).RootElement.GetArrayLength()));
    }

    [Fact]
    public async Task Post_D7_LogProbCountsOutOfBounds_Return400Json()
    {
        var server = await fixture.SharedAsync();
        AssertError(HttpStatusCode.BadRequest, await server.PostAsync("/v1/chat/completions", Chat("\"logprobs\": true, \"top_logprobs\": 21")), "top_logprobs = 21");
        AssertError(HttpStatusCode.BadRequest, await server.PostAsync("/v1/chat/completions", Chat("\"logprobs\": true, \"top_logprobs\": -1")), "top_logprobs = -1");
        AssertError(HttpStatusCode.BadRequest, await server.PostAsync("/v1/chat/completions", Chat("\"top_logprobs\": 2")), "logprobs");
        AssertError(HttpStatusCode.BadRequest, await server.PostAsync("/v1/completions", """{"prompt": "hi", "logprobs": 6}"""), "logprobs = 6");
    }

    private static int[][] ChoiceTokens(JsonDocument body) =>
        [.. body.RootElement.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("logprobs").GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!.GetHashCode(StringComparison.Ordinal)).ToArray())];

    [Fact]
    public async Task Completions_D8_NChoices_ShareNoShiftedRun()
    {
        // Choice i against choice 0 shifted by i (the old streams' defect) and unshifted, over 200 tokens at T = 1.
        var server = await fixture.SharedAsync();
        foreach (var seed in new[] { string.Empty, "\"seed\": 0, ", "\"seed\": 1, " })
        {
            var (status, body, _) = await server.PostAsync("/v1/completions", $$"""{"prompt": "What is", {{seed}}"n": 6, "max_tokens": 200, "temperature": 1, "logprobs": 0}""");
            Assert.True(status == HttpStatusCode.OK, body.RootElement.ToString());
            // The old defect: choice j was choice i minus its first j - i tokens (equal at every position). Independent
            // choices agree by chance only (up to ~25% here: the random model favours a few tokens). Pairs cut short
            // by a stop token early on are left out (a random model stops at any step with probability ~1/400).
            var choices = ChoiceTokens(body);
            var compared = 0;
            for (var i = 0; i < choices.Length; i++)
            {
                for (var j = i + 1; j < choices.Length; j++)
                {
                    foreach (var shift in new[] { 0, j - i })
                    {
                        var overlap = Math.Min(choices[j].Length, choices[i].Length - shift);
                        if (overlap < 20)
                        {
                            continue;
                        }

                        compared++;
                        var same = Enumerable.Range(0, overlap).Count(t => choices[j][t] == choices[i][t + shift]);
                        Assert.True(same < overlap / 2, $"{seed}choice {j} equals choice {i} shifted by {shift} at {same} of {overlap} tokens");
                    }
                }
            }

            Assert.True(compared >= 4, $"{seed}only {compared} comparisons: lengths {string.Join(", ", choices.Select(c => c.Length))}");
        }
    }

    [Fact]
    public async Task Completions_D8_UnseededRequests_Differ_SeededRequests_Repeat()
    {
        var server = await fixture.SharedAsync();
        const string Unseeded = """{"prompt": "What is", "max_tokens": 40, "temperature": 1, "logprobs": 0}""";
        var (_, a, _) = await server.PostAsync("/v1/completions", Unseeded);
        var (_, b, _) = await server.PostAsync("/v1/completions", Unseeded);
        Assert.NotEqual(ChoiceTokens(a)[0], ChoiceTokens(b)[0]);

        const string Seeded = """{"prompt": "What is", "n": 3, "seed": 1234, "max_tokens": 40, "temperature": 1, "logprobs": 0}""";
        var (_, c, _) = await server.PostAsync("/v1/completions", Seeded);
        var (_, d, _) = await server.PostAsync("/v1/completions", Seeded);
        Assert.Equal(ChoiceTokens(c), ChoiceTokens(d));
        Assert.Equal(
            c.RootElement.GetProperty("choices").EnumerateArray().Select(x => x.GetProperty("text").GetString()),
            d.RootElement.GetProperty("choices").EnumerateArray().Select(x => x.GetProperty("text").GetString()));
    }

    [Fact]
    public async Task Completions_D9_25MbPrompt_Returns413JsonWithoutGrowingMemory()
    {
        await using var server = await fixture.StartAsync();
        var (warm, _, _) = await server.PostAsync("/v1/completions", """{"prompt": "What is", "max_tokens": 2}""");
        Assert.Equal(HttpStatusCode.OK, warm);
        var before = server.ResidentBytes();
        var huge = "{\"prompt\": \"" + new string('a', 25_000_000) + "\", \"max_tokens\": 2}";
        var answers = await Task.WhenAll(Enumerable.Range(0, 3).Select(async _ =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(huge, Encoding.UTF8, "application/json") };
            request.Headers.ExpectContinue = true; // as curl sends for large bodies
            using var response = await server.Http.SendAsync(request, Ct);
            return (response.StatusCode, Text: await response.Content.ReadAsStringAsync(Ct));
        }));
        foreach (var (status, text) in answers)
        {
            AssertError(HttpStatusCode.RequestEntityTooLarge, (status, ServeProcess.ParseOrFail(text, status), null!), "--max-body-bytes");
        }

        var grown = server.ResidentBytes() - before;
        Assert.True(grown < 200L << 20, $"RSS grew by {grown >> 20} MB");

        // Under the byte limit but longer than the context can hold: refused by its length, before tokenizing.
        var long3 = "{\"prompt\": \"" + new string('a', 3_000_000) + "\"}";
        AssertError(HttpStatusCode.BadRequest, await server.PostAsync("/v1/completions", long3), "characters");
        var grownAfterLong = server.ResidentBytes() - before;
        Assert.True(grownAfterLong < 200L << 20, $"RSS grew by {grownAfterLong >> 20} MB");
    }

    [Fact]
    public async Task Completions_D9_PromptsTimesNOverLimit_Returns400()
    {
        var server = await fixture.SharedAsync();
        var prompts = string.Join(", ", Enumerable.Repeat("\"hi\"", 50));
        AssertError(HttpStatusCode.BadRequest, await server.PostAsync("/v1/completions", $$"""{"prompt": [{{prompts}}], "n": 64, "max_tokens": 1}"""), "--max-sequences");
        AssertError(HttpStatusCode.BadRequest, await server.PostAsync("/v1/completions", """{"prompt": "hi", "n": 65}"""), "n = 65");
    }

    private static async Task WaitUntilRunningAsync(ServeProcess server, int running)
    {
        // Polls the server's own queue state (no sleeps): returns once `running` requests are being generated.
        while (true)
        {
            using var health = JsonDocument.Parse(await server.Http.GetStringAsync(new Uri("/health", UriKind.Relative), Ct));
            if (health.RootElement.GetProperty("running").GetInt32() >= running)
            {
                return;
            }
        }
    }

    [Fact]
    public async Task Completions_D9_FullQueue_Returns429WithRetryAfterAndJson()
    {
        await using var server = await fixture.StartAsync("--max-queue", "1");
        var big = server.PostAsync("/v1/completions", """{"prompt": "What is", "n": 64, "max_tokens": 250, "temperature": 1}""");
        await WaitUntilRunningAsync(server, 1);
        var full = await server.PostAsync("/v1/completions", """{"prompt": "hi", "max_tokens": 1}""");
        AssertError(HttpStatusCode.TooManyRequests, full, "--max-queue");
        Assert.NotNull(full.Response.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.OK, (await big).Status);
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("/v1/completions", """{"prompt": "hi", "max_tokens": 1}""")).Status);
    }

    [Fact]
    public async Task Completions_D9_SmallRequestDuringBigOne_IsAnsweredFirst()
    {
        await using var server = await fixture.StartAsync();
        var finished = new List<string>();
        async Task RunAsync(string name, string body)
        {
            var (status, json, _) = await server.PostAsync("/v1/completions", body);
            Assert.True(status == HttpStatusCode.OK, json.RootElement.ToString());
            lock (finished)
            {
                finished.Add(name);
            }
        }

        var big = RunAsync("big", """{"prompt": ["What is", "The answer"], "n": 32, "max_tokens": 250, "temperature": 1}""");
        await WaitUntilRunningAsync(server, 1);
        await RunAsync("small", """{"prompt": "hi", "max_tokens": 2}""");
        await big;
        Assert.Equal(["small", "big"], finished);
    }

    [Fact]
    public async Task Serve_NotAnEndpointOrWrongMethod_AnswersJsonErrors()
    {
        var server = await fixture.SharedAsync();
        using (var response = await server.Http.GetAsync(new Uri("/v1/completions", UriKind.Relative), Ct))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
            var body = ServeProcess.ParseOrFail(await response.Content.ReadAsStringAsync(Ct), response.StatusCode);
            Assert.Equal("invalid_request_error", body.RootElement.GetProperty("error").GetProperty("type").GetString());
        }

        using (var response = await server.Http.GetAsync(new Uri("/nope", UriKind.Relative), Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            ServeProcess.ParseOrFail(await response.Content.ReadAsStringAsync(Ct), response.StatusCode).RootElement.GetProperty("error");
        }

        using var content = new StringContent("{}", Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
        using (var response = await server.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative), content, Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            ServeProcess.ParseOrFail(await response.Content.ReadAsStringAsync(Ct), response.StatusCode).RootElement.GetProperty("error");
        }
    }

    [Fact]
    public async Task Serve_TorchBackend_SamplesTheNativeEnginesTokensWithTheirLogProbs()
    {
        // The same request on both engines: the same per-sequence streams, so the same tokens (temperature 1, n = 2)
        // and log-probs within 1e-4 (the engines' arithmetic differs in summation order only).
        var native = await fixture.SharedAsync();
        await using var torch = await fixture.StartAsync("--backend", "torch");
        var request = Chat("""
            "max_tokens": 12, "temperature": 1, "seed": 9, "n": 2, "logprobs": true, "top_logprobs": 2
            """);
        var (nativeStatus, nativeBody, _) = await native.PostAsync("/v1/chat/completions", request);
        var (torchStatus, torchBody, _) = await torch.PostAsync("/v1/chat/completions", request);
        Assert.True(nativeStatus == HttpStatusCode.OK, nativeBody.RootElement.ToString());
        Assert.True(torchStatus == HttpStatusCode.OK, torchBody.RootElement.ToString());
        var expected = nativeBody.RootElement.GetProperty("choices");
        var actual = torchBody.RootElement.GetProperty("choices");
        Assert.Equal(2, actual.GetArrayLength());
        for (var c = 0; c < 2; c++)
        {
            Assert.Equal(expected[c].GetProperty("message").GetProperty("content").GetString(), actual[c].GetProperty("message").GetProperty("content").GetString());
            Assert.Equal(expected[c].GetProperty("finish_reason").GetString(), actual[c].GetProperty("finish_reason").GetString());
            var e = expected[c].GetProperty("logprobs").GetProperty("content");
            var a = actual[c].GetProperty("logprobs").GetProperty("content");
            Assert.Equal(e.GetArrayLength(), a.GetArrayLength());
            Assert.True(a.GetArrayLength() > 0);
            for (var i = 0; i < a.GetArrayLength(); i++)
            {
                Assert.Equal(e[i].GetProperty("token").GetString(), a[i].GetProperty("token").GetString());
                Assert.Equal(e[i].GetProperty("logprob").GetDouble(), a[i].GetProperty("logprob").GetDouble(), 1e-4);
            }
        }

        var models = JsonDocument.Parse(await torch.Http.GetStringAsync(new Uri("/v1/models", UriKind.Relative), Ct));
        Assert.Equal("tiny", models.RootElement.GetProperty("data")[0].GetProperty("id").GetString());
    }
}
