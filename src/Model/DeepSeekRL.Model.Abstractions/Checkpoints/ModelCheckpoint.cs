using System.IO.MemoryMappedFiles;
using System.Text.Json;
using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Checkpoints;

// A model directory in the Hugging Face layout: config.json plus model.safetensors, or model.safetensors.index.json
// and its shards (reference doc §13-14). Loading checks every header against its file, every ParameterLayout tensor's
// presence and shape, and dequantises F16/BF16/FP8 into one float32 ParameterStore; the files are memory-mapped and
// decoded straight into the store, never read whole. Saving writes F32 or BF16 without the MTP copies of embed/head.

/// <summary>Loads and saves model directories (<c>config.json</c> + safetensors) as <see cref="ParameterStore"/>s.</summary>
public static class ModelCheckpoint
{
    /// <summary>The config file name in a model directory.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>The single-file weights name.</summary>
    public const string WeightsFileName = "model.safetensors";

    /// <summary>The sharded index name (<c>{"metadata": {...}, "weight_map": {tensor: file}}</c>).</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>The FP8 block size of <c>weight_scale_inv</c> (128x128, reference doc §14.3).</summary>
    public const int Fp8BlockSize = 128;

    private const string ScaleSuffix = "_scale_inv";

    /// <summary>Reads and validates <c>config.json</c> of <paramref name="directory"/>.</summary>
    /// <param name="directory">The model directory.</param>
    /// <returns>The config.</returns>
    /// <exception cref="SafetensorsException">The config is missing or invalid (one line naming the file and keys).</exception>
    public static DeepSeekV3Config LoadConfig(string directory)
    {
        var (config, error) = DeepSeekV3Config.Load(Path.Combine(directory, ConfigFileName));
        return config ?? throw new SafetensorsException(error!);
    }

    /// <summary>
    /// Loads a model directory: <c>config.json</c>, then <c>model.safetensors.index.json</c> and its shards if the
    /// index exists, else <c>model.safetensors</c>.
    /// </summary>
    /// <param name="directory">The model directory.</param>
    /// <returns>The weights, in <see cref="ParameterLayout"/> order, as float32.</returns>
    /// <remarks>
    /// Accepted: any tensor order; <c>__metadata__</c>; the MTP copies <c>model.layers.{L}.embed_tokens.weight</c> and
    /// <c>model.layers.{L}.shared_head.head.weight</c> (shape-checked, then ignored: the main embedding and head are
    /// used); dtypes F32, BF16, F16, and F8_E4M3 with a <c>weight_scale_inv</c> sibling (F32 or BF16,
    /// [⌈rows/128⌉, ⌈cols/128⌉]) dequantised on load. Rejected with a one-line <see cref="SafetensorsException"/>
    /// naming the file and tensor: a missing tensor, a wrong shape, any other dtype, an unknown tensor, and every
    /// malformed file (see <see cref="Safetensors.ReadHeader"/>).
    /// </remarks>
    /// <exception cref="SafetensorsException">The directory is not a valid checkpoint of its config.</exception>
    public static ParameterStore Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var config = LoadConfig(directory);
        var store = ParameterStore.Allocate(config);

        // Which file holds which tensor.
        var files = new Dictionary<string, ShardFile>(StringComparer.Ordinal);
        var where = new Dictionary<string, ShardFile>(StringComparer.Ordinal);
        try
        {
            var indexPath = Path.Combine(directory, IndexFileName);
            if (File.Exists(indexPath))
            {
                foreach (var (tensor, fileName) in ReadIndex(indexPath))
                {
                    if (!files.TryGetValue(fileName, out var shard))
                    {
                        var path = Path.Combine(directory, fileName);
                        if (!File.Exists(path))
                        {
                            throw new SafetensorsException($"{indexPath}: tensor '{tensor}' is mapped to {fileName}, which does not exist");
                        }

                        shard = new ShardFile(path);
                        files.Add(fileName, shard);
                    }

                    if (!shard.Entries.ContainsKey(tensor))
                    {
                        throw new SafetensorsException($"{shard.Path}: tensor '{tensor}' is missing (the index maps it to this file)");
                    }

                    where[tensor] = shard;
                }
            }
            else
            {
                var path = Path.Combine(directory, WeightsFileName);
                if (!File.Exists(path))
                {
                    throw new SafetensorsException($"{directory}: neither {WeightsFileName} nor {IndexFileName} exists");
                }

                var shard = new ShardFile(path);
                files.Add(WeightsFileName, shard);
                foreach (var name in shard.Entries.Keys)
                {
                    where[name] = shard;
                }
            }

            CheckNames(config, store, where);
            for (var p = 0; p < store.Specs.Count; p++)
            {
                var spec = store.Specs[p];
                if (!where.TryGetValue(spec.Name, out var shard))
                {
                    var place = files.Count == 1 ? files.Values.First().Path : Path.Combine(directory, IndexFileName);
                    throw new SafetensorsException($"{place}: tensor '{spec.Name}' [{string.Join(',', spec.Shape)}] is missing");
                }

                var entry = shard.Entries[spec.Name];
                CheckShape(shard.Path, entry, spec.Shape);
                var destination = store[p]; // (spec.Shape), row-major
                switch (entry.Dtype)
                {
                    case SafetensorsDtype.F32 or SafetensorsDtype.BF16 or SafetensorsDtype.F16:
                        shard.Decode(entry, destination);
                        break;
                    case SafetensorsDtype.F8_E4M3:
                        LoadFp8(shard, entry, where, destination);
                        break;
                    default:
                        throw new SafetensorsException($"{shard.Path}: tensor '{spec.Name}': dtype {entry.Dtype} is not a weight dtype (F32, BF16, F16, F8_E4M3)");
                }
            }
        }
        finally
        {
            foreach (var shard in files.Values)
            {
                shard.Dispose();
            }
        }

        return store;
    }

    /// <summary>Writes <c>config.json</c> and <c>model.safetensors</c> (no MTP copies of embed/head) into <paramref name="directory"/>.</summary>
    /// <param name="store">The weights.</param>
    /// <param name="directory">The directory (created if missing).</param>
    /// <param name="dtype">F32 or BF16 (round to nearest even).</param>
    public static void Save(ParameterStore store, string directory, SafetensorsDtype dtype = SafetensorsDtype.F32)
    {
        ArgumentNullException.ThrowIfNull(store);
        Directory.CreateDirectory(directory);
        var tensors = new List<(string, long[], ReadOnlyMemory<float>)>(store.Specs.Count);
        for (var p = 0; p < store.Specs.Count; p++)
        {
            var spec = store.Specs[p];
            tensors.Add((spec.Name, Array.ConvertAll(spec.Shape, d => (long)d), store.Data.AsMemory((int)store.Offsets[p], (int)spec.Count)));
        }

        Safetensors.Write(Path.Combine(directory, WeightsFileName), tensors, dtype, new Dictionary<string, string> { ["format"] = "pt" });
        store.Config.Save(Path.Combine(directory, ConfigFileName));
    }

    // Names that are neither layout parameters, nor the MTP copies, nor FP8 scales of a parameter: a config mismatch.
    private static void CheckNames(DeepSeekV3Config config, ParameterStore store, Dictionary<string, ShardFile> where)
    {
        foreach (var (name, shard) in where)
        {
            if (store.Contains(name))
            {
                continue;
            }

            if (name.EndsWith(ScaleSuffix, StringComparison.Ordinal) && store.Contains(name[..^ScaleSuffix.Length]))
            {
                continue;
            }

            if (IsMtpCopy(config, name))
            {
                CheckShape(shard.Path, shard.Entries[name], [config.VocabSize, config.HiddenSize]);
                continue;
            }

            throw new SafetensorsException($"{shard.Path}: tensor '{name}' is not a parameter of this config (num_hidden_layers = {config.NumHiddenLayers}, num_nextn_predict_layers = {config.NumNextnPredictLayers})");
        }
    }

    private static bool IsMtpCopy(DeepSeekV3Config config, string name)
    {
        for (var k = 0; k < config.NumNextnPredictLayers; k++)
        {
            var prefix = $"model.layers.{config.NumHiddenLayers + k}.";
            if (name == prefix + "embed_tokens.weight" || name == prefix + "shared_head.head.weight")
            {
                return true;
            }
        }

        return false;
    }

    private static void CheckShape(string path, SafetensorsEntry entry, int[] expected)
    {
        var same = entry.Shape.Length == expected.Length;
        for (var i = 0; same && i < expected.Length; i++)
        {
            same = entry.Shape[i] == expected[i];
        }

        if (!same)
        {
            throw new SafetensorsException($"{path}: tensor '{entry.Name}' has shape [{string.Join(',', entry.Shape)}], expected [{string.Join(',', expected)}]");
        }
    }

    // W_f32[i, j] = fp8(W[i, j]) · S[i / 128, j / 128], edge blocks partial (reference doc §14.3).
    private static void LoadFp8(ShardFile shard, SafetensorsEntry entry, Dictionary<string, ShardFile> where, Span<float> destination)
    {
        var scaleName = entry.Name + ScaleSuffix;
        if (entry.Shape.Length != 2)
        {
            throw new SafetensorsException($"{shard.Path}: tensor '{entry.Name}': F8_E4M3 is only read for 2-D weights with 128x128 {scaleName} blocks");
        }

        if (!where.TryGetValue(scaleName, out var scaleShard))
        {
            throw new SafetensorsException($"{shard.Path}: tensor '{entry.Name}' is F8_E4M3 but its scale '{scaleName}' is missing");
        }

        var rows = (int)entry.Shape[0];
        var cols = (int)entry.Shape[1];
        var scaleEntry = scaleShard.Entries[scaleName];
        int[] scaleShape = [(rows + Fp8BlockSize - 1) / Fp8BlockSize, (cols + Fp8BlockSize - 1) / Fp8BlockSize];
        CheckShape(scaleShard.Path, scaleEntry, scaleShape);
        if (scaleEntry.Dtype is not (SafetensorsDtype.F32 or SafetensorsDtype.BF16))
        {
            throw new SafetensorsException($"{scaleShard.Path}: tensor '{scaleName}': dtype {scaleEntry.Dtype} is not a scale dtype (F32, BF16)");
        }

        var scale = new float[scaleShape[0] * scaleShape[1]]; // (⌈rows/128⌉, ⌈cols/128⌉)
        scaleShard.Decode(scaleEntry, scale);
        shard.Decode(entry, destination);
        var blocksPerRow = scaleShape[1];
        for (var i = 0; i < rows; i++)
        {
            var row = destination.Slice(i * cols, cols);
            var scaleRow = scale.AsSpan((i / Fp8BlockSize) * blocksPerRow, blocksPerRow);
            for (var b = 0; b < blocksPerRow; b++)
            {
                var start = b * Fp8BlockSize;
                var block = row.Slice(start, Math.Min(Fp8BlockSize, cols - start));
                System.Numerics.Tensors.TensorPrimitives.Multiply(block, scaleRow[b], block);
            }
        }
    }

    private static List<(string Tensor, string File)> ReadIndex(string indexPath)
    {
        if (new FileInfo(indexPath).Length > 64 << 20)
        {
            throw new SafetensorsException($"{indexPath}: {new FileInfo(indexPath).Length} bytes is too large for an index");
        }

        var bytes = File.ReadAllBytes(indexPath);
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            throw new SafetensorsException($"{indexPath}: not valid UTF-8");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException ex)
        {
            throw new SafetensorsException($"{indexPath}: invalid JSON ({ex.Message.Split(" LineNumber", 2)[0]})");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            {
                throw new SafetensorsException($"{indexPath}: expected an object with a \"weight_map\" object");
            }

            var list = new List<(string, string)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in map.EnumerateObject())
            {
                var file = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString()! : null;
                if (string.IsNullOrEmpty(file) || file != Path.GetFileName(file) || file is "." or "..")
                {
                    throw new SafetensorsException($"{indexPath}: tensor '{property.Name}' maps to {property.Value.GetRawText()}, expected a file name in the same directory");
                }

                if (!seen.Add(property.Name))
                {
                    throw new SafetensorsException($"{indexPath}: tensor '{property.Name}' appears twice in weight_map");
                }

                list.Add((property.Name, file));
            }

            return list;
        }
    }

    /// <summary>One validated safetensors file, memory-mapped read-only while the store is filled.</summary>
    private sealed class ShardFile : IDisposable
    {
        private readonly long _dataStart;
        private MemoryMappedFile? _map;
        private MemoryMappedViewAccessor? _view;

        public ShardFile(string path)
        {
            Path = path;
            (Entries, _dataStart) = Safetensors.ReadHeader(path, out _);
        }

        public string Path { get; }

        public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }

        /// <summary>Decodes <paramref name="entry"/> into <paramref name="destination"/> from the mapped file.</summary>
        public unsafe void Decode(SafetensorsEntry entry, Span<float> destination)
        {
            var bytes = entry.End - entry.Begin;
            if (bytes == 0)
            {
                return;
            }

            // The header was validated against this length; a file that changed since is caught here.
            if (_view is null)
            {
                var length = new FileInfo(Path).Length;
                if (_dataStart + entry.End > length)
                {
                    throw new SafetensorsException($"{Path}: tensor '{entry.Name}' lies beyond the end of the file (it changed while loading?)");
                }

                _map = MemoryMappedFile.CreateFromFile(Path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
                _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            }

            if (_dataStart + entry.End > (long)_view.SafeMemoryMappedViewHandle.ByteLength)
            {
                throw new SafetensorsException($"{Path}: tensor '{entry.Name}' lies beyond the end of the mapped file");
            }

            byte* basePointer = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePointer);
            try
            {
                var source = basePointer + _view.PointerOffset + _dataStart + entry.Begin;
                var size = bytes / entry.ElementCount;

                // Decode in chunks so that no span exceeds 2^31 bytes.
                const int Chunk = 1 << 24;
                for (long start = 0; start < destination.Length; start += Chunk)
                {
                    var n = (int)Math.Min(Chunk, destination.Length - start);
                    Safetensors.Decode(new ReadOnlySpan<byte>(source + (start * size), checked((int)(n * size))), entry.Dtype, destination.Slice((int)start, n));
                }
            }
            finally
            {
                _view.SafeMemoryMappedViewHandle.ReleasePointer();
            }
        }

        public void Dispose()
        {
            _view?.Dispose();
            _map?.Dispose();
        }
    }
}
