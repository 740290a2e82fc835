using System.Globalization;
using System.Net;
using System.Net.Sockets;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Api;

/// <summary>
/// A real <c>silo --roles api</c> child process over a real PostgreSQL database holding campaign 1 (examples/random-native.json,
/// created with <c>--detach</c> and never run), with a configured token and its own data root: a copy of examples'
/// models and data, a malformed dataset, and a symlink to a file outside the root.
/// </summary>
public sealed class ApiServerFixture : IAsyncLifetime
{
    public const string Token = "api-test-token-0123456789abcdef";

    private readonly string _dir = Directory.CreateTempSubdirectory("api-server-").FullName;
    private TestDatabase? _database;

    /// <summary>The data root given to <c>--data-root</c>.</summary>
    public string DataRoot => Path.Combine(_dir, "root");

    /// <summary>A valid dataset outside the data root.</summary>
    public string Outside => Path.Combine(_dir, "outside", "secret.jsonl");

    public int Port { get; private set; }

    /// <summary>The database the silo serves (tests may add rows to campaign 1).</summary>
    public TestDatabase Database => _database!;

    public HttpClient Http { get; private set; } = new();

    public CliChild Silo { get; private set; } = null!;

    public static string Spec { get; } = Path.Combine(RepositoryPaths.Root, "examples", "random-native.json");

    public async ValueTask InitializeAsync()
    {
        var examples = Path.Combine(RepositoryPaths.Root, "examples");
        foreach (var sub in new[] { "models", "data" })
        {
            Directory.CreateDirectory(Path.Combine(DataRoot, sub));
            foreach (var file in Directory.EnumerateFiles(Path.Combine(examples, sub)))
            {
                File.Copy(file, Path.Combine(DataRoot, sub, Path.GetFileName(file)));
            }
        }

        await File.WriteAllTextAsync(Path.Combine(DataRoot, "data", "bad.jsonl"), "#SECRET-1\n#SECRET-2\n#SECRET-3\n");
        Directory.CreateDirectory(Path.GetDirectoryName(Outside)!);
        File.Copy(Path.Combine(examples, "data", "arithmetic.jsonl"), Outside);
        File.CreateSymbolicLink(Path.Combine(DataRoot, "data", "escape.jsonl"), Outside);

        var server = await PostgresServer.SharedAsync();
        _database = await server.CreateDatabaseAsync();
        var detached = await CliProcess.RunAsync(["campaign", "run", Spec, "--detach", "--db", _database.ConnectionString], null, CancellationToken.None);
        Assert.True(detached.ExitCode == 0, detached.StandardOutput + detached.StandardError);
        (Silo, Port, Http) = await StartSiloAsync(_database.ConnectionString, IPAddress.Loopback, ["--data-root", DataRoot]);
    }

    public async ValueTask DisposeAsync()
    {
        Silo?.Dispose();
        Http.Dispose();
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Starts <c>silo --roles api</c> on a free port of <paramref name="address"/> and waits until it answers.</summary>
    public static async Task<(CliChild Silo, int Port, HttpClient Http)> StartSiloAsync(string connectionString, IPAddress address, IEnumerable<string> extra)
    {
        int port;
        using (var probe = new TcpListener(address, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
        }

        string[] arguments =
        [
            "silo", "--roles", "api", "--api-port", port.ToString(CultureInfo.InvariantCulture), "--api-token", Token, "--db", connectionString,
            .. IPAddress.IsLoopback(address) && address.Equals(IPAddress.Loopback) ? Array.Empty<string>() : ["--api-host", address.ToString()],
            .. extra,
        ];
        var silo = CliChild.Start("api", arguments);
        var http = new HttpClient { BaseAddress = new Uri($"http://{address}:{port}") };
        for (var i = 0; i < 150; i++)
        {
            try
            {
                using var response = await http.GetAsync(new Uri("/api/health", UriKind.Relative));
                if (response.IsSuccessStatusCode)
                {
                    return (silo, port, http);
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.False(silo.HasExited, silo.Output);
            await Task.Delay(200);
        }

        Assert.Fail("the api role did not answer within 30 s: " + silo.Output);
        return default;
    }
}
