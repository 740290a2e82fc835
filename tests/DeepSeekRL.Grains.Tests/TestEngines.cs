using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.TorchSharp.Engines;

namespace DeepSeekRL.Grains.Tests;

/// <summary>The engines the tests' silos offer, as the host's: native and libtorch.</summary>
internal static class TestEngines
{
    public static ModelEngines All { get; } = new(new Dictionary<string, Func<IModelEngine>>
    {
        [ModelBackends.Native] = () => new NativeModelEngine(),
        [ModelBackends.Torch] = () => new TorchModelEngine(),
    });
}
