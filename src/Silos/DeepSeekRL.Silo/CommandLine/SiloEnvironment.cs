using DeepSeekRL.Storage.Database;

namespace DeepSeekRL.Silo.CommandLine;

/// <summary>Where this installation lives and the embedded-cluster settings derived from it.</summary>
public static class SiloEnvironment
{
    /// <summary>The environment variable the launcher sets to the repository root.</summary>
    public const string HomeVariable = "DEEPSEEKRL_HOME";

    /// <summary>
    /// The repository root: <c>DEEPSEEKRL_HOME</c> if set (the launcher sets it), else the nearest ancestor of the
    /// program holding <c>DeepSeekRL.sln</c>, else the current directory.
    /// </summary>
    /// <returns>The absolute path.</returns>
    public static string Home()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(HomeVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return Path.GetFullPath(fromEnvironment);
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DeepSeekRL.sln")))
            {
                return dir.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }

    /// <summary>The embedded cluster of this installation (<c>.data/pg</c> under <see cref="Home"/>).</summary>
    /// <returns>The cluster handle.</returns>
    public static EmbeddedPostgres EmbeddedCluster() =>
        new(new EmbeddedPostgresOptions { DataDirectory = Path.Combine(Home(), ".data", "pg") });
}
