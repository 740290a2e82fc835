using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Training;

// The gradient of every parameter in ONE contiguous, pinned float[] with the parameter block's layout
// (ParameterLayout order), exposed as named slices equal to the checkpoint names. Zeroing is one Clear().

/// <summary>Gradients of a DeepSeek-V3 model, laid out exactly like <see cref="ModelWeights.Data"/>.</summary>
/// <remarks>Backward passes accumulate (<c>+=</c>) into <see cref="Data"/>; call <see cref="Clear"/> between steps. Not thread-safe.</remarks>
public sealed class Gradients
{
    private readonly ModelWeights _view;

    /// <summary>Allocates zeroed gradients for <paramref name="config"/>.</summary>
    /// <param name="config">The config.</param>
    public Gradients(DeepSeekV3Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        long count = 0;
        foreach (var spec in ParameterLayout.Parameters(config))
        {
            count += spec.Count;
        }

        Data = GC.AllocateArray<float>(checked((int)count), pinned: true);
        _view = new ModelWeights(config, Data);
    }

    /// <summary>The config.</summary>
    public DeepSeekV3Config Config => _view.Config;

    /// <summary>The parameters in layout order.</summary>
    public IReadOnlyList<ParameterSpec> Specs => _view.Specs;

    /// <summary>Every gradient, contiguous and pinned, in layout order.</summary>
    public float[] Data { get; }

    /// <summary>The gradient slice of a parameter.</summary>
    /// <param name="name">The HF checkpoint name.</param>
    /// <returns>The slice.</returns>
    public Span<float> Get(string name) => _view.Get(name);

    /// <summary>The element offset of a parameter.</summary>
    /// <param name="name">The HF checkpoint name.</param>
    /// <returns>The offset.</returns>
    public int Offset(string name) => _view.Offset(name);

    /// <summary>Zeroes every gradient.</summary>
    public void Clear() => Array.Clear(Data);

    /// <summary>Writes every gradient under its checkpoint name, plus extra scalars (e.g. <c>loss</c>), as F32 safetensors.</summary>
    /// <param name="path">The file.</param>
    /// <param name="scalars">Extra one-element tensors (shape [1]).</param>
    public void Save(string path, IReadOnlyDictionary<string, float>? scalars = null)
    {
        var list = new List<(string, long[], ReadOnlyMemory<float>)>();
        foreach (var (name, value) in scalars ?? new Dictionary<string, float>())
        {
            list.Add((name, [1L], new[] { value }));
        }

        foreach (var spec in Specs)
        {
            list.Add((spec.Name, Array.ConvertAll(spec.Shape, x => (long)x), Data.AsMemory(Offset(spec.Name), (int)spec.Count)));
        }

        Safetensors.Write(path, list);
    }
}
