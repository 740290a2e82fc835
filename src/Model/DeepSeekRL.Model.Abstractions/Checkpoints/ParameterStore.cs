using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Checkpoints;

// Every parameter of a model in one contiguous float32 block, in ParameterLayout order, exposed as named slices whose
// names are the HF checkpoint keys (STYLE.md "Numerical code"). This is what checkpoint loading, model init and the
// engine share; it is not an optimizer state or a gradient store (those reuse the same layout with their own block).

/// <summary>
/// The weights of one DeepSeek-V3 model: one contiguous <see cref="Data"/> block holding every
/// <see cref="ParameterLayout"/> tensor back to back in layout order, row-major, and a name → (offset, shape) map.
/// </summary>
/// <remarks>
/// Built by <see cref="ModelCheckpoint.Load"/>, <see cref="ModelInit.Create"/> or <see cref="Allocate"/>. The slice of
/// a parameter is <c>Data[Offset(name) .. Offset(name) + Count]</c>; <see cref="Specs"/>[i] starts at
/// <see cref="Offsets"/>[i]. Not thread-safe for writes; concurrent reads are fine.
/// </remarks>
public sealed class ParameterStore
{
    private readonly Dictionary<string, int> _index;
    private readonly long[] _offsets;

    private ParameterStore(DeepSeekV3Config config, IReadOnlyList<ParameterSpec> specs)
    {
        Config = config;
        Specs = specs;
        _offsets = new long[specs.Count];
        _index = new Dictionary<string, int>(specs.Count, StringComparer.Ordinal);
        long total = 0;
        for (var i = 0; i < specs.Count; i++)
        {
            _offsets[i] = total;
            _index.Add(specs[i].Name, i);
            total += specs[i].Count;
        }

        if (total > Array.MaxLength)
        {
            throw new ArgumentException($"the model has {total} parameters; one float[] block holds at most {Array.MaxLength}", nameof(config));
        }

        Data = new float[total];
    }

    /// <summary>The model config the layout was built from.</summary>
    public DeepSeekV3Config Config { get; }

    /// <summary>Every parameter in layout order (<see cref="ParameterLayout.Parameters"/>).</summary>
    public IReadOnlyList<ParameterSpec> Specs { get; }

    /// <summary>The offset of each parameter in <see cref="Data"/>, parallel to <see cref="Specs"/>.</summary>
    public IReadOnlyList<long> Offsets => _offsets;

    /// <summary>All parameters, back to back in layout order (<c>Data.Length</c> = the sum of the specs' counts).</summary>
    public float[] Data { get; }

    /// <summary>The slice of the parameter named <paramref name="name"/> (its HF checkpoint key), row-major.</summary>
    /// <param name="name">The HF name, e.g. <c>model.layers.0.self_attn.kv_b_proj.weight</c>.</param>
    /// <returns>The writable slice.</returns>
    /// <exception cref="KeyNotFoundException">No parameter has that name.</exception>
    public Span<float> this[string name] => this[IndexOf(name)];

    /// <summary>The slice of the parameter <see cref="Specs"/>[<paramref name="index"/>].</summary>
    /// <param name="index">The layout index.</param>
    /// <returns>The writable slice.</returns>
    public Span<float> this[int index] => Data.AsSpan((int)_offsets[index], (int)Specs[index].Count);

    /// <summary>Allocates a zeroed store for <paramref name="config"/>.</summary>
    /// <param name="config">The config.</param>
    /// <returns>The store (all zeros).</returns>
    public static ParameterStore Allocate(DeepSeekV3Config config) => new(config, ParameterLayout.Parameters(config));

    /// <summary>The layout index of <paramref name="name"/>.</summary>
    /// <param name="name">The HF name.</param>
    /// <returns>The index into <see cref="Specs"/>.</returns>
    /// <exception cref="KeyNotFoundException">No parameter has that name.</exception>
    public int IndexOf(string name) =>
        _index.TryGetValue(name, out var i) ? i : throw new KeyNotFoundException($"no parameter named '{name}' in this model's layout");

    /// <summary>Whether a parameter is named <paramref name="name"/>.</summary>
    /// <param name="name">The HF name.</param>
    /// <returns>Whether it exists.</returns>
    public bool Contains(string name) => _index.ContainsKey(name);

    /// <summary>The offset of <paramref name="name"/> in <see cref="Data"/>.</summary>
    /// <param name="name">The HF name.</param>
    /// <returns>The offset in elements.</returns>
    public long Offset(string name) => _offsets[IndexOf(name)];

    /// <summary>The shape of <paramref name="name"/>.</summary>
    /// <param name="name">The HF name.</param>
    /// <returns>The shape ([out, in] for linear weights).</returns>
    public IReadOnlyList<int> Shape(string name) => Specs[IndexOf(name)].Shape;
}
