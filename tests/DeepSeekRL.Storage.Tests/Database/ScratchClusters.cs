using DeepSeekRL.Storage.Database;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Storage.Tests.Database;

/// <summary>Private clusters, each in its own data directory, removed when the test class is done.</summary>
public sealed class ScratchClusters : IAsyncLifetime
{
    private readonly List<string> _directories = [];

    /// <summary>A handle to a new, not yet initialised cluster.</summary>
    public EmbeddedPostgres NewCluster(int port = 0)
    {
        var directory = Path.Combine(RepositoryPaths.Root, ".data", "test-" + Guid.NewGuid().ToString("N")[..8], "pg");
        lock (_directories)
        {
            _directories.Add(directory);
        }

        return Open(directory, port);
    }

    /// <summary>Another handle (as another process would make) to the cluster of <paramref name="cluster"/>.</summary>
    public static EmbeddedPostgres Reopen(EmbeddedPostgres cluster, int port = 0) => Open(cluster.RequestedDirectory, port);

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var directory in _directories)
        {
            var cluster = Open(directory, 0);
            await cluster.StopAsync(CancellationToken.None);
            TryDelete(Path.GetDirectoryName(cluster.DataDirectory)!);
            TryDelete(Path.GetDirectoryName(directory)!);
        }
    }

    private static EmbeddedPostgres Open(string directory, int port) =>
        new(new EmbeddedPostgresOptions { DataDirectory = directory, Port = port });

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
