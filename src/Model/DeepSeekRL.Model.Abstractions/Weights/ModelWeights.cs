using System.Runtime.InteropServices;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Weights;

// Every parameter of a model in ONE contiguous, pinned float[] in ParameterLayout order, exposed as named slices
// whose names are the HF checkpoint keys. It is not a checkpoint loader beyond plain F32/BF16 files (Safetensors.ReadAll).

/// <summary>The parameters of a DeepSeek-V3 model as one contiguous block with named slices.</summary>
/// <remarks>
/// <see cref="Data"/> is allocated on the pinned object heap, so the engine can hand raw pointers to BLAS without
/// pinning per call. A loader fills <see cref="Data"/> through <see cref="Get(string)"/> or by offset.
/// Not thread-safe for writes; concurrent reads are fine.
/// </remarks>
public sealed class ModelWeights
{
    private readonly Dictionary<string, (long Offset, ParameterSpec Spec)> _index = new(StringComparer.Ordinal);
    private GCHandle _pin;

    /// <summary>Creates zero-filled weights for <paramref name="config"/> (norm weights at 1).</summary>
    /// <param name="config">The config.</param>
    public ModelWeights(DeepSeekV3Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        Specs = ParameterLayout.Parameters(config);
        long offset = 0;
        foreach (var spec in Specs)
        {
            _index.Add(spec.Name, (offset, spec));
            offset += spec.Count;
        }

        if (offset > Array.MaxLength)
        {
            throw new ArgumentException($"the model has {offset} parameters, more than one float[] holds", nameof(config));
        }

        Data = GC.AllocateArray<float>((int)offset, pinned: true);
        foreach (var spec in Specs)
        {
            if (spec.Init == ParameterInit.Ones)
            {
                Get(spec.Name).Fill(1f);
            }
        }
    }

    /// <summary>
    /// Wraps an existing parameter block in <see cref="ParameterLayout"/> order (for example a checkpoint loader's
    /// store) without copying; the array is pinned for the lifetime of this object, and edits to it are seen.
    /// </summary>
    /// <param name="config">The config the block was laid out for.</param>
    /// <param name="data">The block; its length must be the layout's parameter count.</param>
    public ModelWeights(DeepSeekV3Config config, float[] data)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(data);
        Config = config;
        Specs = ParameterLayout.Parameters(config);
        long offset = 0;
        foreach (var spec in Specs)
        {
            _index.Add(spec.Name, (offset, spec));
            offset += spec.Count;
        }

        if (data.Length != offset)
        {
            throw new ArgumentException($"the block has {data.Length} floats, the layout of this config needs {offset}", nameof(data));
        }

        Data = data;
        _pin = GCHandle.Alloc(data, GCHandleType.Pinned);
    }

    /// <summary>Releases the pin of a wrapped block.</summary>
    ~ModelWeights()
    {
        if (_pin.IsAllocated)
        {
            _pin.Free();
        }
    }

    /// <summary>The config.</summary>
    public DeepSeekV3Config Config { get; }

    /// <summary>The parameters in layout order.</summary>
    public IReadOnlyList<ParameterSpec> Specs { get; }

    /// <summary>All parameters, contiguous and pinned, in <see cref="Specs"/> order.</summary>
    public float[] Data { get; }

    /// <summary>Whether a parameter of that name exists.</summary>
    /// <param name="name">The HF name.</param>
    /// <returns>Whether it exists.</returns>
    public bool Contains(string name) => _index.ContainsKey(name);

    /// <summary>The element offset of a parameter in <see cref="Data"/>.</summary>
    /// <param name="name">The HF name.</param>
    /// <returns>The offset.</returns>
    public int Offset(string name) => (int)Lookup(name).Offset;

    /// <summary>The slice of a parameter.</summary>
    /// <param name="name">The HF name.</param>
    /// <returns>The slice.</returns>
    public Span<float> Get(string name)
    {
        var (offset, spec) = Lookup(name);
        return Data.AsSpan((int)offset, (int)spec.Count);
    }

    /// <summary>
    /// Loads a model directory through <see cref="ModelCheckpoint.Load"/>: config.json plus model.safetensors or a sharded
    /// index; F32, BF16, F16 and block-scaled FP8; memory-mapped; every problem is one line naming file and tensor.
    /// </summary>
    /// <param name="directory">The model directory.</param>
    /// <returns>The weights, or a one-line error naming the file and tensor.</returns>
    public static (ModelWeights? Weights, string? Error) LoadDirectory(string directory)
    {
        try
        {
            var store = ModelCheckpoint.Load(directory);
            return (new ModelWeights(store.Config, store.Data), null);
        }
        catch (SafetensorsException ex)
        {
            return (null, ex.Message);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, $"{directory}: {ex.Message}");
        }
    }

    /// <summary>Writes <c>config.json</c> + <c>model.safetensors</c> (F32) into a directory.</summary>
    /// <param name="directory">The directory (created).</param>
    public void SaveDirectory(string directory)
    {
        Directory.CreateDirectory(directory);
        Config.Save(Path.Combine(directory, "config.json"));
        var list = new List<(string, long[], ReadOnlyMemory<float>)>(Specs.Count);
        foreach (var spec in Specs)
        {
            var (offset, _) = _index[spec.Name];
            list.Add((spec.Name, Array.ConvertAll(spec.Shape, x => (long)x), Data.AsMemory((int)offset, (int)spec.Count)));
        }

        Safetensors.Write(Path.Combine(directory, "model.safetensors"), list);
    }

    private (long Offset, ParameterSpec Spec) Lookup(string name) =>
        _index.TryGetValue(name, out var entry) ? entry : throw new KeyNotFoundException($"no parameter named {name}");
}
