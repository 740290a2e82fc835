using System.Diagnostics;
using System.Globalization;
using System.Net;
using DeepSeekRL.Grains.Policies;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Serving;

// The endpoint policy client against the real `deepseekrl serve` child process on a tiny model: n > 1 in one request,
// log-probs in the legacy completions format, and /v1/models.
public sealed class EndpointAgainstServeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SampleAsync_ServeTinyModel_ReturnsNCompletionsWithLogProbs()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-endpoint-");
        Process? server = null;
        try
        {
            string P(string name) => Path.Combine(dir.FullName, name);
            var corpus = Enumerable.Range(1, 40).Select(i => $"What is {i} + {i}? The answer is {i + i}. Let me think about it.");
            await File.WriteAllLinesAsync(P("corpus.txt"), corpus, Ct);
            var config = await File.ReadAllTextAsync(Path.Combine(RepositoryPaths.Root, "examples", "models", "tiny.json"), Ct);
            await File.WriteAllTextAsync(P("config.json"), config.Replace("\"vocab_size\": 2048", "\"vocab_size\": 400", StringComparison.Ordinal), Ct);
            var init = await CliProcess.RunAsync(["model", "init", "--config", P("config.json"), "--seed", "1", "--out", P("tiny")], null, Ct);
            Assert.True(init.ExitCode == 0, init.StandardError);
            var tokenizer = await CliProcess.RunAsync(["tokenizer", "train", "--input", P("corpus.txt"), "--vocab-size", "400",
                "--special-token", "<｜begin▁of▁sentence｜>", "--special-token", "<｜end▁of▁sentence｜>",
                "--special-token", "<｜User｜>", "--special-token", "<｜Assistant｜>", "--out", Path.Combine(P("tiny"), "tokenizer.json")], null, Ct);
            Assert.True(tokenizer.ExitCode == 0, tokenizer.StandardError);

            (server, var url) = await StartAsync(["serve", "--model", P("tiny"), "--port", FreePort().ToString(CultureInfo.InvariantCulture)]);
            using var client = new EndpointPolicyClient(new EndpointPolicyOptions { BaseUrl = new Uri(url + "/v1"), Model = "tiny", ApiKey = "unused" });

            Assert.Equal(["tiny"], await client.ListModelsAsync(Ct));

            var parameters = new EndpointSamplingParameters(MaxTokens: 6, Temperature: 1, Seed: 7);
            var samples = await client.SampleAsync("What is 2 + 2?", 4, parameters, Ct);

            Assert.False(client.UsesSeparateRequests); // serve takes n > 1 in one request
            Assert.Equal(4, samples.Count);
            Assert.All(samples, s =>
            {
                Assert.InRange(s.Tokens.Length, 1, 6);
                Assert.Equal(s.Tokens.Length, s.LogProbs.Length);
                Assert.All(s.LogProbs, lp => Assert.True(lp <= 0 && float.IsFinite(lp), $"log-prob {lp}"));
                Assert.Contains(s.FinishReason, new[] { "stop", "length" });
            });
            // Per-sequence seeds: the four samples are not all the same draw.
            Assert.True(samples.Select(s => string.Join('|', s.Tokens)).Distinct().Count() > 1, string.Join(" / ", samples.Select(s => s.Text)));

            // The same seed gives the same samples.
            var again = await client.SampleAsync("What is 2 + 2?", 4, parameters, Ct);
            Assert.Equal(samples.Select(s => s.Text), again.Select(s => s.Text));
            Assert.Equal(samples.SelectMany(s => s.LogProbs), again.SelectMany(s => s.LogProbs));

            // Beyond serve's limit of 64 the 400 names n, so the client falls back to separate requests.
            var many = await client.SampleAsync("What is 2 + 2?", 65, parameters with { MaxTokens = 1 }, Ct);
            Assert.Equal(65, many.Count);
            Assert.True(client.UsesSeparateRequests);

            // Chat completions take n too; streaming keeps n = 1 with a 400 that says so.
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(2) };
            const string Chat = """{"messages": [{"role": "user", "content": "What is 2 + 2?"}], "max_tokens": 3, "n": 3, "seed": 1, "logprobs": true}""";
            using (var content = new StringContent(Chat, System.Text.Encoding.UTF8, "application/json"))
            using (var response = await http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), content, Ct))
            {
                using var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
                Assert.True(response.StatusCode == HttpStatusCode.OK, body.RootElement.ToString());
                var choices = body.RootElement.GetProperty("choices");
                Assert.Equal([0, 1, 2], choices.EnumerateArray().Select(c => c.GetProperty("index").GetInt32()));
                var usage = body.RootElement.GetProperty("usage");
                Assert.Equal(
                    choices.EnumerateArray().Sum(c => c.GetProperty("logprobs").GetProperty("content").GetArrayLength()),
                    usage.GetProperty("completion_tokens").GetInt32());
            }

            using (var content = new StringContent(Chat.Replace("\"n\": 3", "\"n\": 3, \"stream\": true", StringComparison.Ordinal), System.Text.Encoding.UTF8, "application/json"))
            using (var response = await http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), content, Ct))
            {
                Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
                using var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
                Assert.Equal("n = 3 with stream = true: streaming supports only n = 1", body.RootElement.GetProperty("error").GetProperty("message").GetString());
                Assert.Equal("n", body.RootElement.GetProperty("error").GetProperty("param").GetString());
            }
        }
        finally
        {
            if (server is not null)
            {
                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync(CancellationToken.None);
                server.Dispose();
            }

            dir.Delete(recursive: true);
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    // Starts the CLI and waits for its "serving MODEL on URL" line; the caller kills the process.
    private static async Task<(Process Process, string Url)> StartAsync(string[] arguments)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "DeepSeekRL.Silo.dll"));
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DEEPSEEKRL_HOME"] = RepositoryPaths.Root;
        info.Environment.Remove("DEEPSEEKRL_DB");
        var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        try
        {
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line.StartsWith("serving ", StringComparison.Ordinal))
                {
                    return (process, line[(line.LastIndexOf(' ') + 1)..]);
                }
            }

            await process.WaitForExitAsync(timeout.Token);
            throw new InvalidOperationException($"serve exited with {process.ExitCode} before listening: {await stderr}");
        }
        catch
        {
            process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }
    }
}
