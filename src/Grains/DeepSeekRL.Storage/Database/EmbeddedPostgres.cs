using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace DeepSeekRL.Storage.Database;

/// <summary>The state of an embedded cluster.</summary>
/// <param name="DataDirectory">The data directory actually used.</param>
/// <param name="Initialized">Whether initdb has run there.</param>
/// <param name="Running">Whether its postmaster is alive.</param>
/// <param name="Pid">The postmaster's process id when running.</param>
/// <param name="Port">The port when running.</param>
/// <param name="StalePidFile">Whether a <c>postmaster.pid</c> is left from a server that is no longer alive.</param>
public sealed record EmbeddedPostgresStatus(string DataDirectory, bool Initialized, bool Running, int Pid, int Port, bool StalePidFile);

/// <summary>
/// A private PostgreSQL cluster under the repository (<c>.data/pg</c>): initdb on first use, a free loopback port, the
/// Unix socket in the data directory, run as the <c>postgres</c> user when invoked as root. Start reuses a running
/// server, recovers from a crash (stale <c>postmaster.pid</c>, orphaned shared memory) and picks another port when
/// its port is taken.
/// </summary>
/// <remarks>
/// Thread-safety: start and stop are serialised across processes by a lock file beside the data directory.
/// The cluster listens on 127.0.0.1 only and requires a password (SCRAM) kept in the data directory.
/// </remarks>
public sealed class EmbeddedPostgres
{
    private const string PasswordFile = "deepseekrl.password";
    private readonly EmbeddedPostgresOptions _options;
    private readonly string? _runAs;

    /// <summary>Creates the handle; nothing is started until <see cref="StartAsync"/>.</summary>
    /// <param name="options">The options; <see cref="EmbeddedPostgresOptions.DataDirectory"/> is required.</param>
    public EmbeddedPostgres(EmbeddedPostgresOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.DataDirectory))
        {
            throw new ArgumentException("EmbeddedPostgresOptions.DataDirectory is required.", nameof(options));
        }

        _options = options;
        _runAs = IsRoot ? options.ServiceUser : null;
        RequestedDirectory = Path.GetFullPath(options.DataDirectory);
        DataDirectory = RequestedDirectory;
        if (_runAs is not null && !ServiceUserCanReach(RequestedDirectory))
        {
            DataDirectory = FallbackDirectory(options.FallbackRoot, RequestedDirectory);
            LocationNote = $"the embedded PostgreSQL runs as user '{_runAs}', who cannot reach {RequestedDirectory}; its cluster lives in {DataDirectory} instead";
        }
    }

    /// <summary>Whether this process runs as root.</summary>
    public static bool IsRoot => string.Equals(Environment.UserName, "root", StringComparison.Ordinal);

    /// <summary>The data directory asked for.</summary>
    public string RequestedDirectory { get; }

    /// <summary>The data directory used (different from <see cref="RequestedDirectory"/> only in the root fallback).</summary>
    public string DataDirectory { get; }

    /// <summary>Why <see cref="DataDirectory"/> differs from <see cref="RequestedDirectory"/>, or <see langword="null"/>.</summary>
    public string? LocationNote { get; }

    /// <summary>Reads the cluster's state from its data directory without starting anything.</summary>
    /// <returns>The status.</returns>
    public EmbeddedPostgresStatus GetStatus()
    {
        var initialized = File.Exists(Path.Combine(DataDirectory, "PG_VERSION"));
        var pidFile = ReadPidFile();
        if (pidFile is null)
        {
            return new EmbeddedPostgresStatus(DataDirectory, initialized, false, 0, 0, false);
        }

        var alive = IsPostgresProcess(pidFile.Value.Pid);
        return new EmbeddedPostgresStatus(DataDirectory, initialized, alive, alive ? pidFile.Value.Pid : 0, alive ? pidFile.Value.Port : 0, !alive);
    }

    /// <summary>
    /// Starts the cluster, or reuses it when it runs; makes sure the product database exists.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The connection string of the product database, or a one-line error with the fix.</returns>
    public async Task<Outcome<string>> StartAsync(CancellationToken cancellationToken)
    {
        using var fileLock = await AcquireLockAsync(cancellationToken);
        var status = GetStatus();
        if (!status.Running)
        {
            var installation = ChooseInstallation(status.Initialized);
            if (!installation.Succeeded)
            {
                return Outcome<string>.From(installation);
            }

            if (!status.Initialized)
            {
                var init = await InitDbAsync(installation.Value, cancellationToken);
                if (init is not null)
                {
                    return Outcome<string>.Failure(init);
                }
            }

            var started = await StartServerAsync(installation.Value, cancellationToken);
            if (started is not null)
            {
                return Outcome<string>.Failure(started);
            }

            status = GetStatus();
            if (!status.Running)
            {
                return Outcome<string>.Failure($"PostgreSQL in {DataDirectory} reported a start but is not running; see {Path.Combine(DataDirectory, "server.log")}");
            }
        }

        var password = ReadPassword();
        if (password is null)
        {
            return Outcome<string>.Failure($"{Path.Combine(DataDirectory, PasswordFile)} is missing: this cluster was not made by DeepSeekRL; stop it and remove {DataDirectory} to start afresh");
        }

        var ensured = await EnsureDatabaseAsync(status.Port, password, cancellationToken);
        return ensured is null ? Outcome<string>.Success(ConnectionString(status.Port, password, _options.Database)) : Outcome<string>.Failure(ensured);
    }

    /// <summary>The connection string of the product database when the cluster runs, else <see langword="null"/>.</summary>
    /// <returns>The connection string.</returns>
    public string? TryGetConnectionString()
    {
        var status = GetStatus();
        var password = ReadPassword();
        return status.Running && password is not null ? ConnectionString(status.Port, password, _options.Database) : null;
    }

    /// <summary>Stops the cluster (fast shutdown: sessions are disconnected, transactions rolled back).</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>Whether a server was stopped (<see langword="false"/>: it was not running), or an error.</returns>
    public async Task<Outcome<bool>> StopAsync(CancellationToken cancellationToken)
    {
        using var fileLock = await AcquireLockAsync(cancellationToken);
        var status = GetStatus();
        if (!status.Running)
        {
            return Outcome<bool>.Success(false);
        }

        var installation = ChooseInstallation(initialized: true);
        if (!installation.Succeeded)
        {
            return Outcome<bool>.From(installation);
        }

        var result = await ProcessRunner.RunAsync(
            installation.Value.Program("pg_ctl"),
            ["stop", "-D", DataDirectory, "-m", "fast", "-w", "-s", "-t", ((int)_options.StartTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture)],
            _runAs, _options.StartTimeout + TimeSpan.FromSeconds(5), cancellationToken);
        return result.Succeeded
            ? Outcome<bool>.Success(true)
            : Outcome<bool>.Failure($"cannot stop PostgreSQL in {DataDirectory}: {result.LastLine}");
    }

    /// <summary>Builds a connection string for the embedded cluster.</summary>
    private string ConnectionString(int port, string password, string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = port,
        Username = _options.UserName,
        Password = password,
        Database = database,
        Timeout = 5,
    }.ConnectionString;

    private Outcome<PostgresInstallation> ChooseInstallation(bool initialized)
    {
        var all = PostgresInstallation.FindAll();
        if (all.Count == 0)
        {
            return Outcome<PostgresInstallation>.Failure(
                "no PostgreSQL server found (looked in /usr/lib/postgresql/*/bin and $DEEPSEEKRL_PG_BIN); run infra/setup.sh, or set DEEPSEEKRL_DB to a server's connection string");
        }

        if (!initialized)
        {
            return Outcome<PostgresInstallation>.Success(all[0]);
        }

        var versionText = File.ReadAllText(Path.Combine(DataDirectory, "PG_VERSION")).Trim();
        var match = all.FirstOrDefault(i => i.Major.ToString(CultureInfo.InvariantCulture) == versionText);
        if (match is not null)
        {
            return Outcome<PostgresInstallation>.Success(match);
        }

        var have = string.Join(", ", all.Select(i => i.Major));
        return Outcome<PostgresInstallation>.Failure(
            $"{DataDirectory} was made by PostgreSQL {versionText} but this machine has PostgreSQL {have}; install postgresql-{versionText}, or remove the directory (its data is lost) with: rm -rf '{DataDirectory}'");
    }

    private async Task<string?> InitDbAsync(PostgresInstallation installation, CancellationToken cancellationToken)
    {
        var prepared = await PrepareDirectoryAsync(cancellationToken);
        if (prepared is not null)
        {
            return prepared;
        }

        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        var pwFile = Path.Combine(Path.GetTempPath(), $"deepseekrl-pw-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(pwFile, password + "\n", cancellationToken);
        File.SetUnixFileMode(pwFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            if (_runAs is not null)
            {
                var chown = await ProcessRunner.RunAsync("chown", [_runAs, pwFile], null, TimeSpan.FromSeconds(30), cancellationToken);
                if (!chown.Succeeded)
                {
                    return $"cannot hand {pwFile} to user '{_runAs}': {chown.LastLine}";
                }
            }

            var result = await ProcessRunner.RunAsync(
                installation.Program("initdb"),
                ["-D", DataDirectory, "-U", _options.UserName, "--pwfile=" + pwFile, "--auth=scram-sha-256",
                 "--encoding=UTF8", "--locale=C", "--no-instructions"],
                _runAs, TimeSpan.FromMinutes(2), cancellationToken);
            if (!result.Succeeded)
            {
                return $"initdb of {DataDirectory} failed: {result.LastLine}";
            }
        }
        finally
        {
            File.Delete(pwFile);
        }

        // Settings for a private, loopback-only server. The port is given at each start.
        var socketDir = DataDirectory.Length < 90 ? DataDirectory.Replace("'", "''", StringComparison.Ordinal) : string.Empty;
        var conf = $"""

            # Added by DeepSeekRL (embedded cluster)
            listen_addresses = '127.0.0.1'
            unix_socket_directories = '{socketDir}'
            unix_socket_permissions = 0700
            max_connections = {_options.MaxConnections}
            shared_buffers = 256MB
            # Bulk COPY of samples and checkpoint uploads write a lot of WAL: fewer checkpoints, larger WAL buffers.
            max_wal_size = 4GB
            wal_buffers = 64MB
            wal_compression = lz4
            logging_collector = off
            log_min_messages = warning
            """;
        await File.AppendAllTextAsync(Path.Combine(DataDirectory, "postgresql.conf"), conf, cancellationToken);
        var passwordPath = Path.Combine(DataDirectory, PasswordFile);
        await File.WriteAllTextAsync(passwordPath, password, cancellationToken);
        File.SetUnixFileMode(passwordPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return null;
    }

    private async Task<string?> PrepareDirectoryAsync(CancellationToken cancellationToken)
    {
        try
        {
            var parent = Path.GetDirectoryName(DataDirectory)!;
            Directory.CreateDirectory(parent);
            Directory.CreateDirectory(DataDirectory);
            File.SetUnixFileMode(DataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"cannot create {DataDirectory}: {ex.Message}";
        }

        if (_runAs is not null)
        {
            var chown = await ProcessRunner.RunAsync("chown", [$"{_runAs}:", DataDirectory], null, TimeSpan.FromSeconds(30), cancellationToken);
            if (!chown.Succeeded)
            {
                return $"cannot give {DataDirectory} to user '{_runAs}': {chown.LastLine}";
            }
        }

        return null;
    }

    private async Task<string?> StartServerAsync(PostgresInstallation installation, CancellationToken cancellationToken)
    {
        RemoveStalePidFile();
        var logPath = Path.Combine(DataDirectory, "server.log");
        string lastError = "unknown error";
        var deadline = Environment.TickCount64 + (long)_options.StartTimeout.TotalMilliseconds;
        // Keep the previous port when it is still free, so that URLs handed out earlier stay valid.
        var portFile = Path.Combine(DataDirectory, "deepseekrl.port");
        var port = _options.Port;
        if (port == 0 && File.Exists(portFile)
            && int.TryParse(File.ReadAllText(portFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var previous))
        {
            port = previous;
        }

        for (var attempt = 0; ; attempt++)
        {
            if (port == 0 || !IsPortFree(port))
            {
                port = FreePort();
            }

            var logLength = File.Exists(logPath) ? new FileInfo(logPath).Length : 0;
            var result = await ProcessRunner.RunAsync(
                installation.Program("pg_ctl"),
                ["start", "-D", DataDirectory, "-l", logPath, "-w", "-s",
                 "-t", ((int)_options.StartTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture),
                 "-o", "-p " + port.ToString(CultureInfo.InvariantCulture)],
                _runAs, _options.StartTimeout + TimeSpan.FromSeconds(5), cancellationToken);
            if (result.Succeeded)
            {
                await File.WriteAllTextAsync(portFile, port.ToString(CultureInfo.InvariantCulture), CancellationToken.None);
                return null;
            }

            var log = ReadLogTail(logPath, logLength);
            lastError = FirstFatal(log) ?? result.LastLine;
            var retryable = lastError.Contains("could not bind", StringComparison.OrdinalIgnoreCase)
                || lastError.Contains("could not create any TCP/IP sockets", StringComparison.OrdinalIgnoreCase)
                || lastError.Contains("shared memory block", StringComparison.OrdinalIgnoreCase)
                || lastError.Contains("already exists", StringComparison.OrdinalIgnoreCase);
            if (!retryable || Environment.TickCount64 > deadline || attempt >= 30)
            {
                break;
            }

            // A port taken between our probe and the bind, or the old server's processes still detaching from
            // shared memory after a crash: wait a little and try again with a fresh port.
            port = 0;
            RemoveStalePidFile();
            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
        }

        return $"cannot start PostgreSQL in {DataDirectory}: {lastError} (log: {logPath})";
    }

    private async Task<string?> EnsureDatabaseAsync(int port, string password, CancellationToken cancellationToken)
    {
        try
        {
            // No pooling: a pooled connection may be left over from before a restart of this cluster.
            var admin = new NpgsqlConnectionStringBuilder(ConnectionString(port, password, "postgres")) { Pooling = false };
            await using var connection = new NpgsqlConnection(admin.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", connection);
            exists.Parameters.Add(new NpgsqlParameter { Value = _options.Database });
            if (await exists.ExecuteScalarAsync(cancellationToken) is null)
            {
                var quoted = "\"" + _options.Database.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
                await using var create = new NpgsqlCommand($"CREATE DATABASE {quoted}", connection);
                try
                {
                    await create.ExecuteNonQueryAsync(cancellationToken);
                }
                catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.DuplicateDatabase or PostgresErrorCodes.UniqueViolation)
                {
                    // Created by a concurrent starter.
                }
            }

            return null;
        }
        catch (NpgsqlException ex)
        {
            return $"embedded PostgreSQL at 127.0.0.1:{port} does not accept connections: {ex.Message}";
        }
    }

    private (int Pid, int Port)? ReadPidFile()
    {
        var path = Path.Combine(DataDirectory, "postmaster.pid");
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        if (lines.Length < 1 || !int.TryParse(lines[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            return (0, 0);
        }

        var port = lines.Length >= 4 && int.TryParse(lines[3], NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : 0;
        return (pid, port);
    }

    private void RemoveStalePidFile()
    {
        // PostgreSQL itself ignores a postmaster.pid whose process is gone, but refuses one whose pid was reused by
        // another program. We remove it only when that pid is not a postgres process: nothing can be lost.
        var pid = ReadPidFile();
        if (pid is not null && !IsPostgresProcess(pid.Value.Pid))
        {
            File.Delete(Path.Combine(DataDirectory, "postmaster.pid"));
        }
    }

    private static bool IsPostgresProcess(int pid)
    {
        if (pid <= 0)
        {
            return false;
        }

        try
        {
            var comm = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/comm").Trim();
            if (comm is not ("postgres" or "postmaster"))
            {
                return false;
            }

            // A zombie (killed, not yet reaped) is not a running server.
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            var close = stat.LastIndexOf(')');
            return close < 0 || close + 2 >= stat.Length || stat[close + 2] != 'Z';
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private string? ReadPassword()
    {
        try
        {
            return File.ReadAllText(Path.Combine(DataDirectory, PasswordFile)).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private async Task<FileStream> AcquireLockAsync(CancellationToken cancellationToken)
    {
        var lockPath = DataDirectory.TrimEnd('/') + ".lock";
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        while (true)
        {
            try
            {
                // FileShare.None takes an exclusive advisory lock (flock) on Unix; it is released if we crash.
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }

    private bool ServiceUserCanReach(string directory)
    {
        // The server user needs to enter every ancestor of the data directory. Check the nearest existing ancestor
        // as that user; the directories below it will be created by us with traversable permissions.
        var probe = directory;
        while (!Directory.Exists(probe))
        {
            probe = Path.GetDirectoryName(probe);
            if (probe is null)
            {
                return false;
            }
        }

        var result = ProcessRunner.RunAsync("test", ["-x", probe], _runAs, TimeSpan.FromSeconds(30), CancellationToken.None)
            .GetAwaiter().GetResult();
        return result.Succeeded;
    }

    private static string FallbackDirectory(string root, string requested)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(requested)))[..16];
        return Path.Combine(root, hash, "pg");
    }

    private static bool IsPortFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string ReadLogTail(string path, long from)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            stream.Seek(Math.Min(from, stream.Length), SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }

    private static string? FirstFatal(string log)
    {
        foreach (var line in log.Split('\n'))
        {
            var i = line.IndexOf("FATAL:", StringComparison.Ordinal);
            if (i >= 0)
            {
                return line[(i + 6)..].Trim();
            }
        }

        return null;
    }
}
