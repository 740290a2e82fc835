using System.Globalization;

namespace DeepSeekRL.Storage.Database;

/// <summary>A PostgreSQL server installation on this machine: its major version and its <c>bin</c> directory.</summary>
/// <param name="Major">The major version, e.g. 15.</param>
/// <param name="BinDirectory">The directory holding <c>initdb</c>, <c>pg_ctl</c> and <c>postgres</c>.</param>
public sealed record PostgresInstallation(int Major, string BinDirectory)
{
    /// <summary>The environment variable that names a <c>bin</c> directory explicitly.</summary>
    public const string BinDirectoryVariable = "DEEPSEEKRL_PG_BIN";

    /// <summary>The path of a program of this installation.</summary>
    /// <param name="program">The program name, e.g. <c>pg_ctl</c>.</param>
    /// <returns>The full path.</returns>
    public string Program(string program) => Path.Combine(BinDirectory, program);

    /// <summary>
    /// Every server installation found: the directory of <c>DEEPSEEKRL_PG_BIN</c> if set, then Debian's
    /// <c>/usr/lib/postgresql/N/bin</c>, newest first.
    /// </summary>
    /// <returns>The installations.</returns>
    public static IReadOnlyList<PostgresInstallation> FindAll()
    {
        var found = new List<PostgresInstallation>();
        var explicitBin = Environment.GetEnvironmentVariable(BinDirectoryVariable);
        if (!string.IsNullOrEmpty(explicitBin) && File.Exists(Path.Combine(explicitBin, "pg_ctl")))
        {
            var major = ReadMajorFromBin(explicitBin);
            if (major > 0)
            {
                found.Add(new PostgresInstallation(major, explicitBin));
            }
        }

        const string DebianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(DebianRoot))
        {
            var debian = new List<PostgresInstallation>();
            foreach (var dir in Directory.GetDirectories(DebianRoot))
            {
                var bin = Path.Combine(dir, "bin");
                if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var major)
                    && File.Exists(Path.Combine(bin, "pg_ctl")) && File.Exists(Path.Combine(bin, "initdb")))
                {
                    debian.Add(new PostgresInstallation(major, bin));
                }
            }

            found.AddRange(debian.OrderByDescending(i => i.Major));
        }

        return found;
    }

    private static int ReadMajorFromBin(string bin)
    {
        // .../lib/postgresql/15/bin or a pg_config next to pg_ctl; fall back to the parent folder's number.
        var parent = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(bin).TrimEnd('/')) ?? string.Empty);
        return int.TryParse(parent, NumberStyles.None, CultureInfo.InvariantCulture, out var major) ? major : 0;
    }
}
