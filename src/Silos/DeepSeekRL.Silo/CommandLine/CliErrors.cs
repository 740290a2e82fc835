using System.CommandLine;
using System.Globalization;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Npgsql;

namespace DeepSeekRL.Silo.CommandLine;

/// <summary>
/// The command line's top-level error handling: every exception becomes one line <c>deepseekrl: error: ...</c> on
/// standard error and a non-zero exit code; <c>--verbose</c> or <c>DEEPSEEKRL_DEBUG=1</c> adds the stack trace.
/// Known system failures (a missing native library or browser, a full disk, a port in use, a lost database) name
/// what is missing and the command that fixes it.
/// </summary>
public static partial class CliErrors
{
    /// <summary>The environment variable that, set to 1, prints stack traces as <c>--verbose</c> does.</summary>
    public const string DebugVariable = "DEEPSEEKRL_DEBUG";

    private const int NoSpaceLeftOnDevice = 28; // ENOSPC: .NET's IOException carries the raw errno on Unix.
    private const int FileNameTooLong = 36; // ENAMETOOLONG

    /// <summary>Whether <c>DEEPSEEKRL_DEBUG=1</c> asks for stack traces.</summary>
    public static bool DebugRequested => Environment.GetEnvironmentVariable(DebugVariable) is "1" or "true";

    /// <summary>
    /// Reports the exceptions no command catches: on a background thread (the process ends with exit code 70 after
    /// the one line) and unobserved task failures (stack trace only with <c>DEEPSEEKRL_DEBUG=1</c> or <c>--verbose</c>).
    /// </summary>
    /// <param name="trace">Whether to print stack traces.</param>
    public static void InstallProcessHandlers(bool trace)
    {
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            if (e.ExceptionObject is Exception exception)
            {
                Write(exception, null, trace);
            }

            // Exiting here keeps the runtime from printing its own multi-line crash report.
            Environment.Exit(70);
        };
        TaskScheduler.UnobservedTaskException += (_, e) =>
        {
            e.SetObserved();
            if (trace)
            {
                Console.Error.WriteLine("deepseekrl: warning: a background task failed: " + Describe(e.Exception, null));
                Console.Error.WriteLine(e.Exception.ToString());
            }
        };
    }

    /// <summary>Writes the one-line error (and, when asked, the stack trace) and returns the exit code.</summary>
    /// <param name="exception">The exception.</param>
    /// <param name="command">The command that ran, if known (its <c>--port</c>/<c>--api-port</c> option is named for a port in use).</param>
    /// <param name="trace">Whether to print the stack trace too.</param>
    /// <returns>The exit code: a <see cref="CliException"/>'s, else 1.</returns>
    public static int Write(Exception exception, Command? command, bool trace)
    {
        ArgumentNullException.ThrowIfNull(exception);
        Console.Error.WriteLine("deepseekrl: error: " + Describe(exception, command));
        if (trace && exception is not CliException)
        {
            Console.Error.WriteLine(exception.ToString());
        }

        return exception is CliException cli ? cli.ExitCode : 1;
    }

    /// <summary>The one-line description of an exception, without the <c>deepseekrl: error: </c> prefix.</summary>
    /// <param name="exception">The exception.</param>
    /// <param name="command">The command that ran, if known.</param>
    /// <returns>One line.</returns>
    public static string Describe(Exception exception, Command? command)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception is CliException)
        {
            return OneLine(exception.Message);
        }

        var chain = Chain(exception).ToList();
        if (chain.OfType<DllNotFoundException>().FirstOrDefault() is { } dll)
        {
            return DescribeMissingLibrary(dll);
        }

        if (chain.FirstOrDefault(IsAddressInUse) is not null)
        {
            return DescribeAddressInUse(chain, command);
        }

        if (chain.OfType<IOException>().FirstOrDefault(e => e.HResult == NoSpaceLeftOnDevice
            || e.Message.Contains("No space left on device", StringComparison.OrdinalIgnoreCase)) is { } full)
        {
            var path = QuotedPath(full.Message);
            return path is null
                ? "no space left on device; free space on the disk and run again (df -h shows what is full)"
                : $"no space left on device writing {path}; free space on that disk and run again (df -h {Path.GetDirectoryName(path) ?? path})";
        }

        if (chain.OfType<NpgsqlException>().FirstOrDefault(e => e is not PostgresException && e.InnerException is SocketException or IOException or TimeoutException) is { } lost)
        {
            return $"lost the connection to PostgreSQL ({OneLine(lost.InnerException!.Message)}); check the server with ./deepseekrl db status";
        }

        if (chain.OfType<OutOfMemoryException>().FirstOrDefault() is not null)
        {
            return "out of memory; free memory or use a smaller model configuration, batch or --threads";
        }

        if (chain.OfType<UnauthorizedAccessException>().FirstOrDefault() is { } denied)
        {
            return QuotedPath(denied.Message) is { } path ? $"permission denied: {path}" : OneLine(denied.Message);
        }

        if (chain.OfType<IOException>().FirstOrDefault(e => e.HResult == FileNameTooLong) is { } tooLong)
        {
            return QuotedPath(tooLong.Message) is { } path ? $"file name too long (at most 255 bytes per name): {path}" : OneLine(tooLong.Message);
        }

        // A bug: the message and the type, and how to see where it happened.
        var root = exception is AggregateException { InnerExceptions.Count: 1 } aggregate ? aggregate.InnerExceptions[0] : exception;
        return $"{OneLine(root.Message)} ({root.GetType().Name}; run with --verbose or {DebugVariable}=1 for the stack trace)";
    }

    /// <summary>Describes a file-system failure on a path given to an option, e.g. <c>--out: cannot write X: permission denied</c>.</summary>
    /// <param name="option">The option, e.g. <c>--out</c>.</param>
    /// <param name="path">The path as given.</param>
    /// <param name="exception">The failure.</param>
    /// <returns>The exception to throw.</returns>
    public static CliException FileFailure(string option, string path, Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var cause = exception switch
        {
            UnauthorizedAccessException => "permission denied",
            PathTooLongException or IOException { HResult: FileNameTooLong } =>
                string.Create(CultureInfo.InvariantCulture, $"the file name is too long ({System.Text.Encoding.UTF8.GetByteCount(Path.GetFileName(path))} bytes; at most 255)"),
            IOException { HResult: NoSpaceLeftOnDevice } => "no space left on device",
            DirectoryNotFoundException or FileNotFoundException => "the directory does not accept new files (or a part of the path is missing)",
            _ => QuotedPath(exception.Message) is { } quoted ? OneLine(exception.Message.Replace($"'{quoted}'", string.Empty, StringComparison.Ordinal).Trim(' ', ':', '.')) : OneLine(exception.Message),
        };
        return new CliException($"{option}: cannot write {path}: {cause}");
    }

    private static string DescribeMissingLibrary(DllNotFoundException dll)
    {
        var name = LibraryName().Match(dll.Message) is { Success: true } m ? m.Groups[1].Value : "a native library";
        return name.Contains("openblas", StringComparison.OrdinalIgnoreCase)
            ? $"missing OpenBLAS ({name}); run: sudo apt-get install -y --no-install-recommends libopenblas0-pthread (or bash infra/setup.sh)"
            : $"missing the native library {name}; run: bash infra/setup.sh (it installs DeepSeekRL's system packages)";
    }

    private static bool IsAddressInUse(Exception e) =>
        e is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse }
        || e.GetType().Name == "AddressInUseException"
        || (e is IOException && e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase));

    private static string DescribeAddressInUse(List<Exception> chain, Command? command)
    {
        // Kestrel: "Failed to bind to address http://127.0.0.1:5080: address already in use."
        var endpoint = chain.Select(e => BoundAddress().Match(e.Message)).FirstOrDefault(m => m.Success);
        var where = endpoint is null ? "the port" : $"port {endpoint.Groups["port"].Value} on {endpoint.Groups["host"].Value}";
        var option = command?.Options.FirstOrDefault(o => o.Name is "--port" or "--api-port")?.Name;
        var fix = option is null ? "choose another port" : $"choose another with {option}";
        return $"{where} is already in use; stop the program listening there or {fix}";
    }

    private static IEnumerable<Exception> Chain(Exception exception)
    {
        var pending = new Stack<Exception>();
        pending.Push(exception);
        while (pending.Count > 0)
        {
            var e = pending.Pop();
            yield return e;
            if (e is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.Reverse())
                {
                    pending.Push(inner);
                }
            }
            else if (e.InnerException is { } inner)
            {
                pending.Push(inner);
            }
        }
    }

    private static string? QuotedPath(string message) => QuotedPathPattern().Match(message) is { Success: true } m ? m.Groups[1].Value : null;

    private static string OneLine(string text) => LineBreaks().Replace(text, " ").Trim();

    [GeneratedRegex(@"shared library '([^']+)'")]
    private static partial Regex LibraryName();

    [GeneratedRegex(@"https?://\[?(?<host>[^\s\]/]+?)\]?:(?<port>\d+)")]
    private static partial Regex BoundAddress();

    [GeneratedRegex(@"'(/[^']*)'")]
    private static partial Regex QuotedPathPattern();

    [GeneratedRegex(@"\s*[\r\n]+\s*")]
    private static partial Regex LineBreaks();
}
