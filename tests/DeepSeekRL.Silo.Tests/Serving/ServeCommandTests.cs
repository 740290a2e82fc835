using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Serving;

public sealed class ServeCommandTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Serve_TinyModel_AnswersOpenAiRequests()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-serve-");
        Process? server = null;
        try
        {
            string P(string name) => Path.Combine(dir.FullName, name);
            var corpus = Enumerable.Range(1, 40).Select(i => $"What is {i} + {i}? The answer is {i + i}. Let me think about it.");
            await File.WriteAllLinesAsync(P("corpus.txt"), corpus, Ct);
            // The tiny config with a vocabulary the 400-token tokenizer covers, so that generated ids decode to text.
            var config = await File.ReadAllTextAsync(Path.Combine(RepositoryPaths.Root, "examples", "models", "tiny.json"), Ct);
            await File.WriteAllTextAsync(P("config.json"), config.Replace("\"vocab_size\": 2048", "\"vocab_size\": 400", StringComparison.Ordinal), Ct);
            var init = await CliProcess.RunAsync(["model", "init", "--config", P("config.json"), "--seed", "1", "--out", P("tiny")], null, Ct);
            Assert.True(init.ExitCode == 0, init.StandardError);

            var missing = await CliProcess.RunAsync(["serve", "--model", P("tiny"), "--port", "0"], null, Ct);
            Assert.Equal(1, missing.ExitCode);
            Assert.Contains("tokenizer.json does not exist", missing.StandardError, StringComparison.Ordinal);

            var tokenizer = await CliProcess.RunAsync(["tokenizer", "train", "--input", P("corpus.txt"), "--vocab-size", "400",
                "--special-token", "<｜begin▁of▁sentence｜>", "--special-token", "<｜end▁of▁sentence｜>",
                "--special-token", "<｜User｜>", "--special-token", "<｜Assistant｜>", "--out", Path.Combine(P("tiny"), "tokenizer.json")], null, Ct);
            Assert.True(tokenizer.ExitCode == 0, tokenizer.StandardError);

            var port = FreePort();
            (server, var url) = await StartAsync(["serve", "--model", P("tiny"), "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            Assert.Equal($"http://127.0.0.1:{port}", url);
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(2) };

            using (var models = JsonDocument.Parse(await http.GetStringAsync(new Uri("/v1/models", UriKind.Relative), Ct)))
            {
                Assert.Equal("list", models.RootElement.GetProperty("object").GetString());
                Assert.Equal("tiny", models.RootElement.GetProperty("data")[0].GetProperty("id").GetString());
            }

            const string Chat = """{"model": "tiny", "messages": [{"role": "user", "content": "What is 2 + 2?"}], "temperature": 0, "max_tokens": 5, "logprobs": true}""";
            var (status, first) = await PostAsync(http, "/v1/chat/completions", Chat);
            Assert.True(status == HttpStatusCode.OK, first.RootElement.ToString());
            var choice = first.RootElement.GetProperty("choices")[0];
            Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
            var text = choice.GetProperty("message").GetProperty("content").GetString();
            Assert.False(string.IsNullOrEmpty(text), first.RootElement.ToString());
            Assert.Contains(choice.GetProperty("finish_reason").GetString(), new[] { "stop", "length" });
            var usage = first.RootElement.GetProperty("usage");
            var completionTokens = usage.GetProperty("completion_tokens").GetInt32();
            Assert.InRange(completionTokens, 1, 5);
            Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 0);
            Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + completionTokens, usage.GetProperty("total_tokens").GetInt32());
            var logprobs = choice.GetProperty("logprobs").GetProperty("content");
            Assert.Equal(completionTokens, logprobs.GetArrayLength());
            Assert.All(logprobs.EnumerateArray(), l => Assert.True(l.GetProperty("logprob").GetDouble() <= 0));

            // Greedy: the same request gives the same text and log-probs.
            var (_, second) = await PostAsync(http, "/v1/chat/completions", Chat);
            Assert.Equal(text, second.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
            Assert.Equal(logprobs.ToString(), second.RootElement.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content").ToString());

            // Without logprobs they are null.
            var (_, plain) = await PostAsync(http, "/v1/chat/completions", Chat.Replace("\"logprobs\": true", "\"logprobs\": false", StringComparison.Ordinal));
            Assert.Equal(JsonValueKind.Null, plain.RootElement.GetProperty("choices")[0].GetProperty("logprobs").ValueKind);

            // Streaming: SSE chunks whose deltas add up to the same text, then [DONE].
            using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions"))
            {
                request.Content = new StringContent(Chat.Replace("\"temperature\"", "\"stream\": true, \"temperature\"", StringComparison.Ordinal), Encoding.UTF8, "application/json");
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
                var events = CliProcess.Lines(await response.Content.ReadAsStringAsync(Ct));
                Assert.All(events, e => Assert.StartsWith("data: ", e, StringComparison.Ordinal));
                Assert.Equal("data: [DONE]", events[^1]);
                var streamed = new StringBuilder();
                var streamedLogprobs = 0;
                string? finish = null;
                foreach (var e in events[..^1])
                {
                    using var chunk = JsonDocument.Parse(e["data: ".Length..]);
                    Assert.Equal("chat.completion.chunk", chunk.RootElement.GetProperty("object").GetString());
                    var c = chunk.RootElement.GetProperty("choices")[0];
                    if (c.GetProperty("delta").TryGetProperty("content", out var piece))
                    {
                        streamed.Append(piece.GetString());
                    }

                    if (c.GetProperty("logprobs").ValueKind == JsonValueKind.Object)
                    {
                        streamedLogprobs += c.GetProperty("logprobs").GetProperty("content").GetArrayLength();
                    }

                    finish = c.GetProperty("finish_reason").GetString() ?? finish;
                }

                Assert.Equal(text, streamed.ToString());
                Assert.Equal(completionTokens, streamedLogprobs);
                Assert.Equal(choice.GetProperty("finish_reason").GetString(), finish);
            }

            // Legacy completions with token logprobs.
            var (completionStatus, completion) = await PostAsync(http, "/v1/completions", """{"prompt": "What is 3 + 3?", "max_tokens": 4, "temperature": 0, "logprobs": 1}""");
            Assert.Equal(HttpStatusCode.OK, completionStatus);
            Assert.Equal("text_completion", completion.RootElement.GetProperty("object").GetString());
            var completionChoice = completion.RootElement.GetProperty("choices")[0];
            Assert.NotNull(completionChoice.GetProperty("text").GetString());
            Assert.Equal(
                completion.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32(),
                completionChoice.GetProperty("logprobs").GetProperty("token_logprobs").GetArrayLength());

            // Bad requests: 400 with an OpenAI-style error.
            foreach (var (path, body, message) in new[]
            {
                ("/v1/chat/completions", "{not json", "not valid JSON"),
                ("/v1/chat/completions", """{"model": "tiny"}""", "'messages' is required"),
                ("/v1/chat/completions", """{"messages": [{"role": "user", "content": "hi"}], "temperature": -1}""", "temperature"),
                ("/v1/chat/completions", """{"messages": [{"role": "robot", "content": "hi"}]}""", "role"),
                ("/v1/chat/completions", """{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "five"}""", "'max_tokens' must be an integer"),
                ("/v1/completions", """{"max_tokens": 3}""", "'prompt' is required"),
            })
            {
                var (badStatus, error) = await PostAsync(http, path, body);
                Assert.Equal(HttpStatusCode.BadRequest, badStatus);
                var e = error.RootElement.GetProperty("error");
                Assert.Equal("invalid_request_error", e.GetProperty("type").GetString());
                Assert.Contains(message, e.GetProperty("message").GetString(), StringComparison.Ordinal);
            }

            var (notFound, wrongModel) = await PostAsync(http, "/v1/chat/completions", """{"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}""");
            Assert.Equal(HttpStatusCode.NotFound, notFound);
            Assert.Equal("model_not_found", wrongModel.RootElement.GetProperty("error").GetProperty("code").GetString());
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

    private static async Task<(HttpStatusCode Status, JsonDocument Body)> PostAsync(HttpClient http, string path, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync(new Uri(path, UriKind.Relative), content, Ct);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)));
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
