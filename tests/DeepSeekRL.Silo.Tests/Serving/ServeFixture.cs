using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Serving;

/// <summary>A tiny model (vocabulary 400, context 256) with a trained tokenizer, made once per test class.</summary>
public sealed class ServeFixture : IAsyncLifetime
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("deepseekrl-serve-fixture-");

    public string ModelDir => Path.Combine(_dir.FullName, "tiny");

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        string P(string name) => Path.Combine(_dir.FullName, name);
        var corpus = Enumerable.Range(1, 40).Select(i => $"What is {i} + {i}? The answer is {i + i}. Let me think about it.");
        await File.WriteAllLinesAsync(P("corpus.txt"), corpus, ct);
        var config = await File.ReadAllTextAsync(Path.Combine(RepositoryPaths.Root, "examples", "models", "tiny.json"), ct);
        await File.WriteAllTextAsync(P("config.json"), config.Replace("\"vocab_size\": 2048", "\"vocab_size\": 400", StringComparison.Ordinal), ct);
        var init = await CliProcess.RunAsync(["model", "init", "--config", P("config.json"), "--seed", "1", "--out", ModelDir], null, ct);
        Assert.True(init.ExitCode == 0, init.StandardError);
        var tokenizer = await CliProcess.RunAsync(["tokenizer", "train", "--input", P("corpus.txt"), "--vocab-size", "400",
            "--special-token", "<｜begin▁of▁sentence｜>", "--special-token", "<｜end▁of▁sentence｜>",
            "--special-token", "<｜User｜>", "--special-token", "<｜Assistant｜>", "--out", Path.Combine(ModelDir, "tokenizer.json")], null, ct);
        Assert.True(tokenizer.ExitCode == 0, tokenizer.StandardError);
    }

    private ServeProcess? _shared;

    /// <summary>One server with the default options, shared by the tests of a class (started on first use).</summary>
    public async Task<ServeProcess> SharedAsync() => _shared ??= await StartAsync();

    public async ValueTask DisposeAsync()
    {
        if (_shared is not null)
        {
            await _shared.DisposeAsync();
        }

        _dir.Delete(recursive: true);
    }

    /// <summary>Starts <c>serve</c> on the tiny model on a free port with extra options.</summary>
    public async Task<ServeProcess> StartAsync(params string[] options)
    {
        int port;
        using (var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "DeepSeekRL.Silo.dll"));
        foreach (var argument in (string[])["serve", "--model", ModelDir, "--port", port.ToString(CultureInfo.InvariantCulture), .. options])
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DEEPSEEKRL_HOME"] = RepositoryPaths.Root;
        info.Environment.Remove("DEEPSEEKRL_DB");
        var process = Process.Start(info)!;
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            lock (stderr)
            {
                stderr.AppendLine(e.Data);
            }
        };
        process.BeginErrorReadLine();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        try
        {
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line.StartsWith("serving ", StringComparison.Ordinal))
                {
                    return new ServeProcess(process, line[(line.LastIndexOf(' ') + 1)..], stderr);
                }
            }

            await process.WaitForExitAsync(timeout.Token);
            throw new InvalidOperationException($"serve exited with {process.ExitCode} before listening: {stderr}");
        }
        catch
        {
            process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }
    }
}

/// <summary>A running <c>serve</c> child process and a client for it; disposing kills it.</summary>
public sealed class ServeProcess(Process process, string url, StringBuilder stderr) : IAsyncDisposable
{
    public HttpClient Http { get; } = new() { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(5) };

    public string StandardError
    {
        get
        {
            lock (stderr)
            {
                return stderr.ToString();
            }
        }
    }

    /// <summary>The server's resident set size (VmRSS of /proc/PID/status), in bytes.</summary>
    public long ResidentBytes()
    {
        var line = File.ReadLines($"/proc/{process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }

    public async Task<(HttpStatusCode Status, JsonDocument Body, HttpResponseMessage Response)> PostAsync(string path, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        var response = await Http.PostAsync(new Uri(path, UriKind.Relative), content, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return (response.StatusCode, ParseOrFail(text, response.StatusCode), response);
    }

    public static JsonDocument ParseOrFail(string text, HttpStatusCode status)
    {
        try
        {
            return JsonDocument.Parse(text);
        }
        catch (JsonException)
        {
            Assert.Fail($"{(int)status}: the body is not JSON: '{text}'");
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync(CancellationToken.None);
        process.Dispose();
    }
}
