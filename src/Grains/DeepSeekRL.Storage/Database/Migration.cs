using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace DeepSeekRL.Storage.Database;

/// <summary>One schema migration: a file <c>NNNN_name.sql</c> of <c>infra/sql</c>.</summary>
/// <param name="Version">The number <c>NNNN</c>; migrations apply in increasing order.</param>
/// <param name="Name">The file name, e.g. <c>0001_cluster.sql</c>.</param>
/// <param name="Sql">The script.</param>
public sealed partial record Migration(int Version, string Name, string Sql)
{
    /// <summary>The SHA-256 of the script (hex), recorded when applied so that later edits are detected.</summary>
    public string Checksum { get; } = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Sql)));

    /// <summary>The migrations shipped with this assembly (embedded from <c>infra/sql</c>), in version order.</summary>
    /// <returns>The migrations.</returns>
    public static IReadOnlyList<Migration> Embedded()
    {
        var assembly = typeof(Migration).Assembly;
        const string Prefix = "DeepSeekRL.Sql.";
        var files = new List<(string Name, string Sql)>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(Prefix, StringComparison.Ordinal))
            {
                continue;
            }

            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            files.Add((resource[Prefix.Length..], reader.ReadToEnd()));
        }

        return FromFiles(files).Value;
    }

    /// <summary>The migrations of a directory of <c>NNNN_name.sql</c> files, in version order.</summary>
    /// <param name="directory">The directory.</param>
    /// <returns>The migrations, or an error naming a badly named or duplicate file.</returns>
    public static Outcome<IReadOnlyList<Migration>> FromDirectory(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return Outcome<IReadOnlyList<Migration>>.Failure($"migrations directory '{directory}' does not exist");
        }

        var files = Directory.GetFiles(directory, "*.sql")
            .Select(path => (Path.GetFileName(path), File.ReadAllText(path, Encoding.UTF8)))
            .ToList();
        return FromFiles(files);
    }

    /// <summary>Builds migrations from (file name, script) pairs, checking names and versions.</summary>
    /// <param name="files">The files.</param>
    /// <returns>The migrations in version order, or an error naming the offending file.</returns>
    public static Outcome<IReadOnlyList<Migration>> FromFiles(IEnumerable<(string Name, string Sql)> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var byVersion = new SortedDictionary<int, Migration>();
        foreach (var (name, sql) in files)
        {
            var match = FileNamePattern().Match(name);
            if (!match.Success)
            {
                return Outcome<IReadOnlyList<Migration>>.Failure(
                    $"migration file '{name}': expected a name like 0001_description.sql (four digits, underscore, lower-case words)");
            }

            var version = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            if (version == 0)
            {
                return Outcome<IReadOnlyList<Migration>>.Failure($"migration file '{name}': version 0000 is reserved; start at 0001");
            }

            if (byVersion.TryGetValue(version, out var other))
            {
                return Outcome<IReadOnlyList<Migration>>.Failure(
                    $"migration files '{other.Name}' and '{name}' have the same version {version:D4}");
            }

            byVersion.Add(version, new Migration(version, name, sql));
        }

        return Outcome<IReadOnlyList<Migration>>.Success(byVersion.Values.ToList());
    }

    [GeneratedRegex(@"^(\d{4})_[a-z0-9_]+\.sql$", RegexOptions.CultureInvariant)]
    private static partial Regex FileNamePattern();
}
