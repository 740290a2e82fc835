using System.CommandLine;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Silo.CommandLine;

namespace DeepSeekRL.Silo.Model;

/// <summary>The <c>--backend</c> and <c>--device</c> options of the model commands, and the engine they choose.</summary>
internal static class BackendOptions
{
    public static Option<string> Backend() => new("--backend") { Description = "The engine: native (the C# engine, default) or torch (libtorch through TorchSharp).", DefaultValueFactory = _ => ModelBackends.Native };

    public static Option<string> Device() => new("--device") { Description = "cpu (default), or cuda / cuda:N with --backend torch and a CUDA libtorch build.", DefaultValueFactory = _ => "cpu" };

    /// <summary>The chosen backend and device, checked together (one-line errors naming the option).</summary>
    public static (string Backend, string Device) Read(ParseResult parseResult, Option<string> backend, Option<string> device)
    {
        var b = parseResult.GetValue(backend)!;
        var d = parseResult.GetValue(device)!;
        if (!ModelBackends.IsKnown(b))
        {
            throw new CliException($"--backend: '{b}' is not native or torch");
        }

        if (!ModelBackends.IsDeviceName(d))
        {
            throw new CliException($"--device: '{d}' is not cpu, cuda or cuda:N");
        }

        if (b == ModelBackends.Native && d != "cpu")
        {
            throw new CliException($"--device: '{d}': the native engine runs on cpu only (use --backend torch for CUDA)");
        }

        return (b, d);
    }

    /// <summary>
    /// The chosen engine and its options; for the libtorch engine, libtorch is loaded and the device checked first, so a
    /// failure is one line naming the option.
    /// </summary>
    public static (IModelEngine Engine, ModelEngineOptions Options) Engine(string backend, string device, int threads)
    {
        if (threads < 1)
        {
            throw new CliException($"--threads: {threads} is not a positive number");
        }

        var engine = HostEngines.All.Get(backend);
        var options = new ModelEngineOptions { Device = device, Threads = threads };
        if (engine.Check(options) is { } problem)
        {
            throw new CliException(problem.Field == "device" ? $"--device: {problem.Message}" : $"--backend {backend}: {problem.Message}");
        }

        return (engine, options);
    }
}
