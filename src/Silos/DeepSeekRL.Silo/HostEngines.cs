using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.TorchSharp.Engines;

namespace DeepSeekRL.Silo;

/// <summary>The model engines this host offers: the native engine (default) and the libtorch one (loaded on first use).</summary>
public static class HostEngines
{
    /// <summary>The process's engines.</summary>
    public static ModelEngines All { get; } = new(new Dictionary<string, Func<IModelEngine>>
    {
        [ModelBackends.Native] = () => new NativeModelEngine(),
        [ModelBackends.Torch] = () => new TorchModelEngine(),
    });
}
