using System.Globalization;
using Npgsql;

namespace DeepSeekRL.Storage.Database;

/// <summary>Where a connection string came from.</summary>
public enum DatabaseSource
{
    /// <summary>The <c>--db</c> command-line option.</summary>
    CommandLine,

    /// <summary>The <c>DEEPSEEKRL_DB</c> environment variable.</summary>
    Environment,

    /// <summary>The embedded cluster under <c>.data/pg</c>.</summary>
    Embedded,
}

/// <summary>
/// The database to use: <c>--db</c> wins over <c>DEEPSEEKRL_DB</c>, which wins over the embedded cluster.
/// Both keyword connection strings (<c>Host=...;Port=...</c>) and URIs (<c>postgresql://user:pw@host:port/db</c>) are accepted.
/// </summary>
/// <param name="Source">Where the target came from.</param>
/// <param name="ConnectionString">The keyword connection string; <see langword="null"/> for the embedded cluster until it runs.</param>
public sealed record DatabaseTarget(DatabaseSource Source, string? ConnectionString)
{
    /// <summary>The environment variable holding a connection string.</summary>
    public const string EnvironmentVariable = "DEEPSEEKRL_DB";

    /// <summary>Applies the precedence rule.</summary>
    /// <param name="commandLine">The value of <c>--db</c>, if given.</param>
    /// <param name="environment">The value of <c>DEEPSEEKRL_DB</c>, if set.</param>
    /// <returns>The target, or an error naming the option or variable whose value does not parse.</returns>
    public static Outcome<DatabaseTarget> Resolve(string? commandLine, string? environment)
    {
        if (!string.IsNullOrWhiteSpace(commandLine))
        {
            return Parse(DatabaseSource.CommandLine, "--db", commandLine);
        }

        if (!string.IsNullOrWhiteSpace(environment))
        {
            return Parse(DatabaseSource.Environment, EnvironmentVariable, environment);
        }

        return Outcome<DatabaseTarget>.Success(new DatabaseTarget(DatabaseSource.Embedded, null));
    }

    /// <summary>"host:port" of the target, for messages.</summary>
    public string Endpoint
    {
        get
        {
            if (ConnectionString is null)
            {
                return "embedded";
            }

            var builder = new NpgsqlConnectionStringBuilder(ConnectionString);
            return $"{builder.Host}:{builder.Port.ToString(CultureInfo.InvariantCulture)}";
        }
    }

    /// <summary>Converts a <c>postgres://</c> or <c>postgresql://</c> URI to a keyword connection string.</summary>
    /// <param name="uri">The URI.</param>
    /// <returns>The connection string, or an error.</returns>
    public static Outcome<string> FromUri(string uri)
    {
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("postgres" or "postgresql"))
        {
            return Outcome<string>.Failure($"'{Redact(uri)}' is not a postgresql:// URI");
        }

        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = string.IsNullOrEmpty(parsed.Host) ? "127.0.0.1" : parsed.Host,
            Port = parsed.IsDefaultPort || parsed.Port <= 0 ? 5432 : parsed.Port,
        };
        if (!string.IsNullOrEmpty(parsed.UserInfo))
        {
            var colon = parsed.UserInfo.IndexOf(':', StringComparison.Ordinal);
            builder.Username = Uri.UnescapeDataString(colon < 0 ? parsed.UserInfo : parsed.UserInfo[..colon]);
            if (colon >= 0)
            {
                builder.Password = Uri.UnescapeDataString(parsed.UserInfo[(colon + 1)..]);
            }
        }

        var database = parsed.AbsolutePath.Trim('/');
        if (database.Length > 0)
        {
            builder.Database = Uri.UnescapeDataString(database);
        }

        foreach (var pair in parsed.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
            var value = eq < 0 ? string.Empty : Uri.UnescapeDataString(pair[(eq + 1)..]);
            try
            {
                builder[key == "connect_timeout" ? "Timeout" : key] = value;
            }
            catch (ArgumentException)
            {
                return Outcome<string>.Failure($"URI parameter '{key}' is not a known connection setting");
            }
        }

        return Outcome<string>.Success(builder.ConnectionString);
    }

    /// <summary>Builds a <c>postgresql://</c> URI from a keyword connection string (for <c>db url</c>).</summary>
    /// <param name="connectionString">The keyword connection string.</param>
    /// <returns>The URI.</returns>
    public static string ToUri(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        var user = Uri.EscapeDataString(b.Username ?? string.Empty);
        var password = string.IsNullOrEmpty(b.Password) ? string.Empty : ":" + Uri.EscapeDataString(b.Password);
        var credentials = user.Length > 0 ? user + password + "@" : string.Empty;
        return $"postgresql://{credentials}{b.Host}:{b.Port.ToString(CultureInfo.InvariantCulture)}/{Uri.EscapeDataString(b.Database ?? string.Empty)}";
    }

    private static Outcome<DatabaseTarget> Parse(DatabaseSource source, string name, string value)
    {
        value = value.Trim();
        string connectionString;
        if (value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            var converted = FromUri(value);
            if (!converted.Succeeded)
            {
                return Outcome<DatabaseTarget>.Failure($"{name}: {converted.Error}");
            }

            connectionString = converted.Value;
        }
        else
        {
            connectionString = value;
        }

        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            return Outcome<DatabaseTarget>.Failure($"{name}: '{Redact(value)}' is not a PostgreSQL connection string ({ex.Message})");
        }

        if (string.IsNullOrEmpty(builder.Host))
        {
            return Outcome<DatabaseTarget>.Failure($"{name}: the connection string has no Host (expected e.g. Host=127.0.0.1;Port=5432;Username=...;Database=...)");
        }

        // Never hang on a server that does not answer: bound the connect (and startup) time unless the user chose one.
        if (!connectionString.Contains("timeout", StringComparison.OrdinalIgnoreCase))
        {
            builder.Timeout = 5;
        }

        return Outcome<DatabaseTarget>.Success(new DatabaseTarget(source, builder.ConnectionString));
    }

    private static string Redact(string value)
    {
        var at = value.IndexOf('@', StringComparison.Ordinal);
        var scheme = value.IndexOf("://", StringComparison.Ordinal);
        if (at > 0 && scheme > 0 && at > scheme)
        {
            return value[..(scheme + 3)] + "***" + value[at..];
        }

        return value.Contains("password", StringComparison.OrdinalIgnoreCase) ? "(connection string with password)" : value;
    }
}
