namespace DeepSeekRL.Storage.Database;

/// <summary>Options of the private PostgreSQL cluster that DeepSeekRL starts when no server is configured.</summary>
public sealed class EmbeddedPostgresOptions
{
    /// <summary>
    /// The data directory. Required. The CLI uses <c>.data/pg</c> in the repository. When the process runs as root the
    /// server runs as <see cref="ServiceUser"/>; if that user cannot reach this directory (a checkout in root's home,
    /// a private temp directory) the cluster lives in <see cref="FallbackRoot"/> instead, under a name derived from
    /// this path, and <see cref="EmbeddedPostgres.LocationNote"/> says so.
    /// </summary>
    public string DataDirectory { get; set; } = string.Empty;

    /// <summary>The TCP port on 127.0.0.1. Default 0: any free port. A port in use is replaced by a free one.</summary>
    public int Port { get; set; }

    /// <summary>The operating-system user the server runs as when this process is root. Default <c>postgres</c>.</summary>
    public string ServiceUser { get; set; } = "postgres";

    /// <summary>Where clusters live when <see cref="ServiceUser"/> cannot reach <see cref="DataDirectory"/>. Default <c>/var/lib/deepseekrl</c>.</summary>
    public string FallbackRoot { get; set; } = "/var/lib/deepseekrl";

    /// <summary>The database the product uses. Default <c>deepseekrl</c>.</summary>
    public string Database { get; set; } = "deepseekrl";

    /// <summary>The superuser created by initdb. Default <c>deepseekrl</c>.</summary>
    public string UserName { get; set; } = "deepseekrl";

    /// <summary>The maximum wait for the server to start or stop. Default 60 s.</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Server setting <c>max_connections</c>. Default 200 (tests and benchmarks run many claimers).</summary>
    public int MaxConnections { get; set; } = 200;
}
