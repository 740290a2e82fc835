using System.CommandLine;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.TorchSharp;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;
using static TorchSharp.torch;

namespace DeepSeekRL.Silo.Model;

/// <summary>The <c>--backend</c> and <c>--device</c> options of the model commands, and loading a model on the libtorch engine.</summary>
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

    /// <summary>Loads libtorch and the model on <paramref name="device"/>; a libtorch that cannot load or a bad device is one line.</summary>
    public static TorchDeepSeekV3 LoadTorch(ModelWeights weights, string device, int threads)
    {
        if (TorchRuntime.TryLoad() is { } error)
        {
            throw new CliException("--backend torch: " + error);
        }

        var (parsed, deviceError) = TorchRuntime.ParseDevice(device);
        if (parsed is null)
        {
            throw new CliException("--device: " + deviceError);
        }

        TorchRuntime.SetThreads(threads);
        return new TorchDeepSeekV3(weights, parsed, weights.Config.MaxPositionEmbeddings);
    }

    /// <summary>A [1, T] int64 tensor of token ids on the model's device.</summary>
    public static Tensor Row(TorchDeepSeekV3 model, int[] ids) =>
        tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length], ScalarType.Int64, model.Device);
}
