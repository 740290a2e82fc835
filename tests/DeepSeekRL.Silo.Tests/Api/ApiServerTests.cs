using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Grains;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Api;

/// <summary>The api role's HTTP edges (issue 19): a real <c>silo --roles api</c> and a real HttpClient (or raw TCP).</summary>
public sealed class ApiServerTests(ApiServerFixture fixture) : IClassFixture<ApiServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("q=%00", "q: contains U+0000")]
    [InlineData("rule=%00", "rule: contains U+0000")]
    [InlineData("limit=5&q=a%00b", "q: contains U+0000")]
    [InlineData("step=%00", "step: contains U+0000")]
    [InlineData("accepted=%00", "accepted: contains U+0000")]
    public async Task Samples_NulInAQueryParameter_Is400NamingIt(string query, string expected)
    {
        var (status, error) = await ErrorAsync(HttpMethod.Get, $"/api/campaigns/1/samples?{query}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(expected, error);
    }

    [Theory]
    [InlineData("/api/campaigns/1/samples?q=%FF", "q: not valid UTF-8 (percent-encoded bytes must form UTF-8 text)")]
    [InlineData("/api/campaigns/1/samples?q=%ED%A0%80", "q: not valid UTF-8 (percent-encoded bytes must form UTF-8 text)")]
    [InlineData("/api/campaigns/1/samples?rule=acc%C3", "rule: not valid UTF-8 (percent-encoded bytes must form UTF-8 text)")]
    [InlineData("/api/campaigns?x=%ED%B0%80", "x: not valid UTF-8 (percent-encoded bytes must form UTF-8 text)")]
    [InlineData("/?q=%00", "q: contains U+0000")]
    public async Task Query_InvalidUtf8OrLoneSurrogate_Is400WithJson(string path, string expected)
    {
        var (status, error) = await ErrorAsync(HttpMethod.Get, path);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(expected, error);
    }

    [Fact]
    public async Task Errors_InternalFailure_Is500WithAnErrorIdInTheServersLog()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var (silo, _, http) = await ApiServerFixture.StartSiloAsync(db.ConnectionString, IPAddress.Loopback, []);
        using (silo)
        using (http)
        {
            // The table under the campaign list goes away under the running server.
            await db.ExecuteAsync("ALTER TABLE campaigns RENAME TO campaigns_moved_away");
            using var response = await http.GetAsync("/api/campaigns", Ct);
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            Assert.StartsWith("application/json", response.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
            using var json = JsonDocument.Parse(body);
            var id = json.RootElement.GetProperty("error_id").GetString()!;
            Assert.Matches("^[0-9a-f]{12}$", id);
            Assert.Contains(id, json.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", body, StringComparison.Ordinal);
            Assert.DoesNotContain("campaigns_moved_away", body, StringComparison.Ordinal);
            Assert.DoesNotContain("Npgsql", body, StringComparison.Ordinal);

            // The console logger writes from its own thread: wait (bounded) for the line with the id and the exception.
            for (var i = 0; i < 100 && !silo.Output.Contains($"error {id}", StringComparison.Ordinal); i++)
            {
                await Task.Delay(100, Ct);
            }

            var line = silo.Output.Split('\n').FirstOrDefault(l => l.Contains($"error {id}: GET /api/campaigns failed", StringComparison.Ordinal));
            Assert.True(line is not null, silo.Output);
            Assert.StartsWith("err: ", line, StringComparison.Ordinal);
            Assert.Contains("PostgresException", silo.Output, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("/", "text/html; charset=utf-8")]
    [InlineData("/app.js", "text/javascript; charset=utf-8")]
    [InlineData("/style.css", "text/css; charset=utf-8")]
    [InlineData("/api/campaigns", "application/json; charset=utf-8")]
    [InlineData("/api/campaigns/abc", "application/json; charset=utf-8")]
    [InlineData("/api/no-such-thing", "application/json; charset=utf-8")]
    [InlineData("/openapi.json", "application/json; charset=utf-8")]
    [InlineData("/api/campaigns/1/export", "application/x-ndjson; charset=utf-8")]
    public async Task SecurityHeaders_OnEveryResponse_WithCharset(string path, string contentType)
    {
        using var response = await fixture.Http.GetAsync(path, Ct);
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        var csp = Assert.Single(response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.Equal("DENY", Assert.Single(response.Headers.GetValues("X-Frame-Options")));
        Assert.Equal("no-referrer", Assert.Single(response.Headers.GetValues("Referrer-Policy")));
        Assert.Equal(contentType, response.Content.Headers.ContentType?.ToString());
    }

    [Fact]
    public async Task Export_FormatParquet_AParquetDownloadTheReaderOpens()
    {
        using var response = await fixture.Http.GetAsync("/api/campaigns/1/export?format=parquet", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/vnd.apache.parquet", response.Content.Headers.ContentType?.ToString());
        Assert.Equal("campaign-1.parquet", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        var path = Path.Combine(Path.GetTempPath(), $"deepseekrl-api-{Guid.NewGuid():N}.parquet");
        try
        {
            await File.WriteAllBytesAsync(path, await response.Content.ReadAsByteArrayAsync(Ct), Ct);
            var opened = await Storage.Parquet.ParquetRows.OpenAsync(path, Ct);
            Assert.True(opened.Succeeded, opened.Error);
            await opened.Value.DisposeAsync();
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Export_UnknownFormat_400NamingTheFormats()
    {
        using var response = await fixture.Http.GetAsync("/api/campaigns/1/export?format=csv", Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("""{"error":"format: 'csv' is not a format (expected jsonl or parquet)"}""", await response.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task SecurityHeaders_On401And500BodiesToo()
    {
        using var response = await fixture.Http.PostAsync("/api/campaigns/1/pause", null, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("DENY", Assert.Single(response.Headers.GetValues("X-Frame-Options")));
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("evil.example:80")]
    [InlineData("127.0.0.1.evil.example")]
    [InlineData("localhost.evil.example")]
    public async Task HostHeader_NotALoopbackName_Is400WithJson(string host)
    {
        var (status, headers, body) = await RawGetAsync(IPAddress.Loopback, fixture.Port, "/api/campaigns", host);
        Assert.Equal(400, status);
        Assert.Contains("Content-Type: application/json; charset=utf-8", headers, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("\"error\":\"Host ", body, StringComparison.Ordinal);
        Assert.DoesNotContain("random-native", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("LOCALHOST:{port}")]
    [InlineData("127.0.0.1:{port}")]
    [InlineData("[::1]:{port}")]
    public async Task HostHeader_LoopbackName_IsServed(string host)
    {
        var (status, _, body) = await RawGetAsync(IPAddress.Loopback, fixture.Port, "/api/campaigns", host.Replace("{port}", fixture.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        Assert.Equal(200, status);
        Assert.Contains("random-native", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostHeader_ApiHostAddress_IsServedAndOthersAreNot()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var address = IPAddress.Parse("127.0.0.2");
        var (silo, port, http) = await ApiServerFixture.StartSiloAsync(db.ConnectionString, address, []);
        using (silo)
        using (http)
        {
            Assert.Equal(200, (await RawGetAsync(address, port, "/api/campaigns", $"127.0.0.2:{port}")).Status);
            Assert.Equal(200, (await RawGetAsync(address, port, "/api/campaigns", "localhost")).Status);
            Assert.Equal(400, (await RawGetAsync(address, port, "/api/campaigns", "evil.example")).Status);
            Assert.Equal(400, (await RawGetAsync(address, port, "/api/campaigns", "127.0.0.3")).Status);
        }
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("../outside/secret.jsonl")]
    [InlineData("{outside}")]
    [InlineData("data/escape.jsonl")]
    [InlineData("data/../../outside/secret.jsonl")]
    public async Task PostCampaign_PathOutsideTheDataRoot_Is400NotAllowed(string path)
    {
        path = path.Replace("{outside}", fixture.Outside, StringComparison.Ordinal);
        var spec = (await File.ReadAllTextAsync(ApiServerFixture.Spec, Ct)).Replace("\"data/arithmetic.jsonl\"", JsonSerializer.Serialize(path), StringComparison.Ordinal);
        var (status, error) = await ErrorAsync(HttpMethod.Post, "/api/campaigns", spec, ApiServerFixture.Token);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        var root = Path.GetFullPath(fixture.DataRoot);
        Assert.Equal($"dataset.path: path {JsonSerializer.Serialize(path)} is not allowed (outside the data root {root})", error);
    }

    [Theory]
    [InlineData("config", "/etc/hostname")]
    [InlineData("tokenizer", "../../../../../../../etc/hostname")]
    public async Task PostCampaign_ModelPathOutsideTheDataRoot_Is400NotAllowed(string key, string path)
    {
        var spec = (await File.ReadAllTextAsync(ApiServerFixture.Spec, Ct))
            .Replace(key == "config" ? "\"models/quick.json\"" : "\"models/tiny-tokenizer.json\"", JsonSerializer.Serialize(path), StringComparison.Ordinal);
        var (status, error) = await ErrorAsync(HttpMethod.Post, "/api/campaigns", spec, ApiServerFixture.Token);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains($"policy.native.{key}: path {JsonSerializer.Serialize(path)} is not allowed (outside the data root ", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"prompt_field\": \"prompt\"", "\"prompt_field\": \"pro\\u0000mpt\"", "dataset.prompt_field: contains U+0000")]
    [InlineData("\"path\": \"data/arithmetic.jsonl\"", "\"path\": \"data/arithmetic.jsonl\\u0000.txt\"", "dataset.path: contains U+0000")]
    [InlineData("\"rule\": \"accuracy\"", "\"rule\": \"accuracy\\u0000\"", "rewards.rules[0].rule: contains U+0000")]
    public async Task PostCampaign_NulInASpecString_Is400NamingTheField(string from, string to, string expected)
    {
        var spec = (await File.ReadAllTextAsync(ApiServerFixture.Spec, Ct)).Replace(from, to, StringComparison.Ordinal);
        Assert.Contains("u0000", spec, StringComparison.Ordinal);
        var (status, error) = await ErrorAsync(HttpMethod.Post, "/api/campaigns", spec, ApiServerFixture.Token);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(expected, error);
    }

    [Fact]
    public async Task PostCampaign_MalformedDatasetInTheRoot_SaysNotValidWithoutItsContent()
    {
        var spec = (await File.ReadAllTextAsync(ApiServerFixture.Spec, Ct)).Replace("\"data/arithmetic.jsonl\"", "\"data/bad.jsonl\"", StringComparison.Ordinal);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/campaigns") { Content = new StringContent(spec, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiServerFixture.Token);
        using var response = await fixture.Http.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("dataset.path = data/bad.jsonl: not a valid dataset (expected JSONL objects with \"prompt\"; details in the server's log)",
            JsonDocument.Parse(body).RootElement.GetProperty("error").GetString());
        Assert.DoesNotContain("#", body, StringComparison.Ordinal);
        Assert.DoesNotContain("3 malformed", body, StringComparison.Ordinal);
        Assert.DoesNotContain("line", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PostCampaign_MissingFileInTheRoot_SaysNotFoundWithoutLeavingTheRoot()
    {
        var spec = (await File.ReadAllTextAsync(ApiServerFixture.Spec, Ct)).Replace("\"data/arithmetic.jsonl\"", "\"data/nope.jsonl\"", StringComparison.Ordinal);
        var (status, error) = await ErrorAsync(HttpMethod.Post, "/api/campaigns", spec, ApiServerFixture.Token);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("dataset.path = \"data/nope.jsonl\": expected an existing file", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PostCampaign_ExampleSpecAsShipped_IsCreatedFromTheDataRoot()
    {
        var spec = (await File.ReadAllTextAsync(ApiServerFixture.Spec, Ct)).Replace("\"random-native\"", "\"from-the-data-root\"", StringComparison.Ordinal);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/campaigns") { Content = new StringContent(spec, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("bearer", ApiServerFixture.Token);
        using var response = await fixture.Http.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        Assert.Equal(40, JsonDocument.Parse(body).RootElement.GetProperty("train_rows").GetInt32());
    }

    [Fact]
    public async Task Silo_DataRootNotADirectory_IsAOneLineError()
    {
        var server = await PostgresServer.SharedAsync();
        await using var db = await server.CreateDatabaseAsync(Ct);
        var missing = Path.Combine(fixture.DataRoot, "no-such-dir");
        var run = await CliProcess.RunAsync(["silo", "--roles", "api", "--api-port", "0", "--data-root", missing, "--db", db.ConnectionString], null, Ct);
        Assert.Equal(1, run.ExitCode);
        Assert.Equal($"deepseekrl: error: --data-root: '{missing}' is not an existing directory", run.StandardError.Trim());
    }

    [Theory]
    [InlineData("bearer")]
    [InlineData("BEARER")]
    [InlineData("Bearer")]
    public async Task Auth_BearerSchemeInAnyCase_IsAccepted(string scheme)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/campaigns/999/pause");
        request.Headers.TryAddWithoutValidation("Authorization", $"{scheme} {ApiServerFixture.Token}");
        using var response = await fixture.Http.SendAsync(request, Ct);

        // Past authentication: the campaign does not exist.
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Theory]
    [InlineData(null, "Bearer realm=\"deepseekrl\"")]
    [InlineData("Basic dXNlcjpwYXNz", "Bearer realm=\"deepseekrl\"")]
    [InlineData("Bearer", "Bearer realm=\"deepseekrl\"")]
    [InlineData("Bearer not-the-token-0123456789", "Bearer realm=\"deepseekrl\", error=\"invalid_token\"")]
    public async Task Auth_NoOrWrongToken_Is401WithChallengeAndJson(string? authorization, string challenge)
    {
        foreach (var path in new[] { "/api/campaigns/1/pause", "/api/campaigns" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
            if (authorization is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", authorization);
            }

            using var response = await fixture.Http.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal(challenge, Assert.Single(response.Headers.GetValues("WWW-Authenticate")));
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
            Assert.Contains("Authorization: Bearer", json.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("GET", "/api/health")]
    [InlineData("GET", "/api/campaigns")]
    [InlineData("GET", "/api/campaigns/1")]
    [InlineData("GET", "/api/campaigns/1/steps")]
    [InlineData("GET", "/api/campaigns/1/evaluations")]
    [InlineData("GET", "/api/campaigns/1/policies")]
    [InlineData("GET", "/api/nodes")]
    [InlineData("GET", "/openapi.json")]
    [InlineData("POST", "/api/campaigns")]
    [InlineData("POST", "/api/campaigns/1/pause")]
    [InlineData("POST", "/api/campaigns/1/resume")]
    [InlineData("POST", "/api/campaigns/1/cancel")]
    public async Task Query_UnknownParameter_Is400OnEveryEndpoint(string method, string path)
    {
        var (status, error) = await ErrorAsync(new HttpMethod(method), path + "?fields=all", method == "POST" ? "{}" : null, ApiServerFixture.Token);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("unknown parameter 'fields'; this endpoint takes no query parameters", error);
    }

    [Fact]
    public async Task Query_UnknownParameterOfExport_NamesFormat()
    {
        var (status, error) = await ErrorAsync(HttpMethod.Get, "/api/campaigns/1/export?fields=all", null, ApiServerFixture.Token);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("unknown parameter 'fields'; expected format", error);
    }

    [Fact]
    public async Task Query_UnknownParameterOfSamples_ListsTheAllowedOnes()
    {
        var (status, error) = await ErrorAsync(HttpMethod.Get, "/api/campaigns/1/samples?limit=5&fields=all");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("unknown parameter 'fields'; expected limit, after_id, step, rule, min, max, accepted, q, reflection", error);
    }

    [Fact]
    public async Task Samples_Reflection_ListsTheCompletionsWithThatBitAndTheirBits()
    {
        // Campaign 1's completions as the reward worker stores them: a check that passes (1), a failed check repaired
        // (7), a failed check left (3), no check (0).
        ReflectionFlags[] flags = [ReflectionFlags.Verifies, ReflectionFlags.Verifies | ReflectionFlags.Detects | ReflectionFlags.Repairs,
            ReflectionFlags.Verifies | ReflectionFlags.Detects, ReflectionFlags.None];
        var records = flags.Select((_, i) => new CompletionRecord(1, 0, 9_001, i, 0, "Using 3, 5, 2 make 16.", [1], $"<think>attempt {i}</think> 16", [-0.5f], "stop")).ToList();
        long[] ids;
        await using (var connection = await fixture.Database.DataSource.OpenConnectionAsync(Ct))
        await using (var transaction = await connection.BeginTransactionAsync(Ct))
        {
            ids = await SampleStore.WriteCompletionsAsync(connection, transaction, records, Ct);
            await SampleStore.WriteRewardsAsync(connection, transaction, ids, [1.0, 1.0, 0.0, 0.0], flags, Ct);
            await transaction.CommitAsync(Ct);
        }

        async Task<(long, int)[]> PageAsync(string query)
        {
            using var response = await fixture.Http.GetAsync($"/api/campaigns/1/samples?limit=100{query}", Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
            return [.. json.RootElement.GetProperty("items").EnumerateArray()
                .Select(i => (i.GetProperty("completion_id").GetInt64(), i.GetProperty("reflection").GetInt32()))
                .Where(i => ids.Contains(i.Item1))];
        }

        Assert.Equal(new (long, int)[] { (ids[0], 1), (ids[1], 7), (ids[2], 3), (ids[3], 0) }, await PageAsync(""));
        Assert.Equal(new (long, int)[] { (ids[0], 1), (ids[1], 7), (ids[2], 3) }, await PageAsync("&reflection=verify"));
        Assert.Equal(new (long, int)[] { (ids[1], 7), (ids[2], 3) }, await PageAsync("&reflection=detect"));
        Assert.Equal(new (long, int)[] { (ids[1], 7) }, await PageAsync("&reflection=repair&step=0"));
    }

    [Theory]
    [InlineData("reflection=fixed", "reflection = 'fixed': expected verify, detect or repair")]
    [InlineData("reflection=Repair", "reflection = 'Repair': expected verify, detect or repair")]
    [InlineData("reflection=", "reflection = '': expected verify, detect or repair")]
    [InlineData("limit=5&reflection=7", "reflection = '7': expected verify, detect or repair")]
    public async Task Samples_ReflectionNotAKind_Is400NamingTheKinds(string query, string expected)
    {
        using var response = await fixture.Http.GetAsync($"/api/campaigns/1/samples?{query}", Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(expected, json.RootElement.GetProperty("error").GetString());
    }

    private async Task<(HttpStatusCode Status, string? Error)> ErrorAsync(HttpMethod method, string path, string? body = null, string? token = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await fixture.Http.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(text.Length > 0, $"{method} {path}: {(int)response.StatusCode} with an empty body");
        using var json = JsonDocument.Parse(text);
        return (response.StatusCode, json.RootElement.TryGetProperty("error", out var error) ? error.GetString() : null);
    }

    /// <summary>One HTTP/1.1 request written by hand, so the Host header is exactly what a rebinding page would send.</summary>
    private static async Task<(int Status, string Headers, string Body)> RawGetAsync(IPAddress address, int port, string path, string host)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(address, port, Ct);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), Ct);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var text = await reader.ReadToEndAsync(Ct);
        var split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var status = int.Parse(text.AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture);
        return (status, text[..split], text[(split + 4)..]);
    }
}
