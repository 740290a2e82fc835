namespace DeepSeekRL.Model.Engines;

/// <summary>The backend names a spec or a command line may give.</summary>
public static class ModelBackends
{
    /// <summary>The native C# engine (the default).</summary>
    public const string Native = "native";

    /// <summary>The libtorch engine (TorchSharp).</summary>
    public const string Torch = "torch";

    /// <summary>Every backend name.</summary>
    public static IReadOnlyList<string> All { get; } = [Native, Torch];

    /// <summary>Whether <paramref name="name"/> names a backend.</summary>
    /// <param name="name">The name.</param>
    /// <returns>Whether it is known.</returns>
    public static bool IsKnown(string? name) => name is Native or Torch;

    /// <summary>Whether <paramref name="device"/> is a device name: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c> (syntax only).</summary>
    /// <param name="device">The name.</param>
    /// <returns>Whether it is well-formed.</returns>
    public static bool IsDeviceName(string? device) =>
        device is "cpu" or "cuda" || (device is { Length: > 5 and < 9 } && device.StartsWith("cuda:", StringComparison.Ordinal) && device[5..].All(char.IsAsciiDigit));

    /// <summary>Checks a backend and device pair: the native engine runs on <c>cpu</c> only.</summary>
    /// <param name="backend">The backend.</param>
    /// <param name="device">The device.</param>
    /// <returns>An error naming the value and what was expected, or null.</returns>
    public static string? Validate(string? backend, string? device) =>
        !IsKnown(backend) ? $"backend = \"{backend}\": expected \"native\" or \"torch\""
        : !IsDeviceName(device) ? $"device = \"{device}\": expected \"cpu\", \"cuda\" or \"cuda:N\""
        : backend == Native && device != "cpu" ? $"device = \"{device}\": the native engine runs on \"cpu\" only (use backend \"torch\" for CUDA)"
        : null;
}

/// <summary>Where and how an engine runs.</summary>
public sealed record ModelEngineOptions
{
    /// <summary>The device: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Threads for the engine's kernels (OpenBLAS or libtorch intra-op).</summary>
    public int Threads { get; init; } = 2;

    /// <summary>Positions a sampler's RoPE tables and KV caches cover (0: min(max_position_embeddings, 8192)).</summary>
    public int MaxPositions { get; init; }
}

/// <summary>The engines a host offers, by backend name.</summary>
public sealed class ModelEngines
{
    private readonly Dictionary<string, Func<IModelEngine>> _engines;
    private readonly Dictionary<string, IModelEngine> _made = [];
    private readonly Lock _gate = new();

    /// <summary>Registers engines (made on first use: the libtorch engine loads libtorch then).</summary>
    /// <param name="engines">Backend name → factory.</param>
    public ModelEngines(IReadOnlyDictionary<string, Func<IModelEngine>> engines)
    {
        ArgumentNullException.ThrowIfNull(engines);
        _engines = new Dictionary<string, Func<IModelEngine>>(engines, StringComparer.Ordinal);
    }

    /// <summary>The registered backend names.</summary>
    public IReadOnlyCollection<string> Names => _engines.Keys;

    /// <summary>The engine of <paramref name="backend"/>.</summary>
    /// <param name="backend">The backend name.</param>
    /// <returns>The engine.</returns>
    /// <exception cref="ArgumentException">This host has no such backend (one line).</exception>
    public IModelEngine Get(string backend)
    {
        lock (_gate)
        {
            if (_made.TryGetValue(backend, out var made))
            {
                return made;
            }

            if (!_engines.TryGetValue(backend, out var factory))
            {
                throw new ArgumentException($"backend = \"{backend}\": this host offers {string.Join(", ", _engines.Keys.Select(k => $"\"{k}\""))}");
            }

            return _made[backend] = factory();
        }
    }
}
