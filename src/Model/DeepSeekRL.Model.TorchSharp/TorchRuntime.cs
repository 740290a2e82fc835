using System.Runtime.InteropServices;
using TorchSharp;

namespace DeepSeekRL.Model.TorchSharp;

// Loads libtorch once per process and turns every way that can fail into one line naming the cause. TorchSharp's own
// loader, when the shim libLibTorchSharp.so does not load, reports that the application lacks a package reference,
// whatever the real cause (on Debian 12 it is a libstdc++ version need: see infra/build/libtorchsharp.targets).

/// <summary>The libtorch runtime of the process: loading, the device, the thread count.</summary>
public static class TorchRuntime
{
    private static readonly Lock Gate = new();
    private static string? _error;
    private static bool _loaded;

    /// <summary>The shim's file name.</summary>
    public const string ShimFileName = "libLibTorchSharp.so";

    /// <summary>Loads libtorch (once); returns null when it is usable, else one line naming the cause.</summary>
    /// <returns>The error, or null.</returns>
    public static string? TryLoad()
    {
        lock (Gate)
        {
            if (_loaded || _error is not null)
            {
                return _error;
            }

            var shim = LocateShim(AppContext.BaseDirectory);
            if (shim is null)
            {
                return _error = $"libtorch is not part of this build: {ShimFileName} is missing from {AppContext.BaseDirectory} (the project must reference TorchSharp and libtorch-cpu-linux-x64)";
            }

            if (Diagnose(shim) is { } cause)
            {
                return _error = cause;
            }

            try
            {
                torch.InitializeDeviceType(DeviceType.CPU);
                _loaded = true;
                return null;
            }
            catch (Exception e) when (e is NotSupportedException or DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
            {
                return _error = $"libtorch did not load: {FirstLine(e.InnerException?.Message ?? e.Message)}";
            }
        }
    }

    /// <summary>Loads libtorch or throws <see cref="TorchUnavailableException"/> with the one-line cause.</summary>
    /// <exception cref="TorchUnavailableException">libtorch cannot be loaded here.</exception>
    public static void EnsureLoaded()
    {
        if (TryLoad() is { } error)
        {
            throw new TorchUnavailableException(error);
        }
    }

    /// <summary>
    /// Why the shim at <paramref name="shim"/> does not load, in one line, or null when the dynamic loader accepts it
    /// (it stays loaded: TorchSharp then binds to it).
    /// </summary>
    /// <param name="shim">The path of libLibTorchSharp.so.</param>
    /// <returns>The cause, or null.</returns>
    public static string? Diagnose(string shim)
    {
        ArgumentNullException.ThrowIfNull(shim);
        try
        {
            NativeLibrary.Load(shim);
            return null;
        }
        catch (DllNotFoundException e)
        {
            var message = e.Message;
            var at = message.IndexOf("version `GLIBCXX_", StringComparison.Ordinal);
            if (at >= 0)
            {
                var end = message.IndexOf('\'', at + 9);
                var version = end > at ? message[(at + 9)..end] : "GLIBCXX_?";
                return $"libtorch did not load: {shim} needs {version} from libstdc++, which this system's libstdc++ does not define; "
                    + "the build marks that need weak (infra/build/libtorchsharp.targets), so this copy was not built here: rebuild, or install a newer libstdc++";
            }

            return $"libtorch did not load: {FirstLine(message)}";
        }
        catch (BadImageFormatException e)
        {
            return $"libtorch did not load: {shim} is not a loadable library ({FirstLine(e.Message)})";
        }
    }

    /// <summary>Sets the threads libtorch runs its operators on (intra-op) for the whole process.</summary>
    /// <param name="threads">Threads (at least 1).</param>
    public static void SetThreads(int threads)
    {
        EnsureLoaded();
        var n = Math.Max(1, threads);
        if (torch.get_num_threads() != n)
        {
            torch.set_num_threads(n);
        }
    }

    /// <summary>Parses a device name: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    /// <param name="name">The name.</param>
    /// <returns>The device, or an error naming the value and what was expected.</returns>
    public static (torch.Device? Device, string? Error) ParseDevice(string? name)
    {
        var text = string.IsNullOrEmpty(name) ? "cpu" : name;
        if (!IsDeviceName(text))
        {
            return (null, $"device = \"{text}\": expected \"cpu\", \"cuda\" or \"cuda:N\"");
        }

        EnsureLoaded();
        if (text.StartsWith("cuda", StringComparison.Ordinal))
        {
            try
            {
                torch.InitializeDeviceType(DeviceType.CUDA);
            }
            catch (Exception e) when (e is NotSupportedException or DllNotFoundException or InvalidOperationException)
            {
                return (null, $"device = \"{text}\": this build's libtorch has no CUDA (reference a libtorch-cuda package instead of libtorch-cpu-linux-x64): {FirstLine(e.Message)}");
            }

            if (!torch.cuda.is_available())
            {
                return (null, $"device = \"{text}\": no CUDA device is available");
            }
        }

        return (torch.device(text), null);
    }

    /// <summary>Whether <paramref name="name"/> is a device name this engine accepts (syntax only; no libtorch needed).</summary>
    /// <param name="name">The name.</param>
    /// <returns>Whether it is <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</returns>
    public static bool IsDeviceName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return DeepSeekRL.Model.Engines.ModelBackends.IsDeviceName(name);
    }

    private static string? LocateShim(string directory)
    {
        foreach (var candidate in new[] { Path.Combine(directory, ShimFileName), Path.Combine(directory, "runtimes", "linux-x64", "native", ShimFileName) })
        {
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string FirstLine(string message)
    {
        var line = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? message;
        return line.Length > 400 ? line[..400] + "…" : line;
    }
}

/// <summary>libtorch cannot be loaded or used here; the message is one line naming the cause.</summary>
/// <param name="message">The cause.</param>
public sealed class TorchUnavailableException(string message) : Exception(message);
