using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Tests.Checkpoints;

/// <summary>One tensor of a hand-built safetensors file: raw bytes in any dtype, explicit offsets allowed.</summary>
internal sealed record RawTensor(string Name, string Dtype, long[] Shape, byte[] Bytes)
{
    /// <summary>Overrides the computed data_offsets (to build broken files).</summary>
    public long[]? Offsets { get; init; }

    public static RawTensor F32(string name, long[] shape, ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        }

        return new RawTensor(name, "F32", shape, bytes);
    }

    public static RawTensor F16(string name, long[] shape, ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i * 2), (Half)values[i]);
        }

        return new RawTensor(name, "F16", shape, bytes);
    }
}

/// <summary>Writes safetensors files byte by byte, in the order given (the product writer always sorts).</summary>
internal static class RawSafetensors
{
    public static void Write(string path, IEnumerable<RawTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, long? headerLengthOverride = null)
    {
        var list = tensors.ToList();
        var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata is not null)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                {
                    w.WriteString(k, v);
                }

                w.WriteEndObject();
            }

            long offset = 0;
            foreach (var t in list)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.Dtype);
                w.WriteStartArray("shape");
                foreach (var d in t.Shape)
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(t.Offsets?[0] ?? offset);
                w.WriteNumberValue(t.Offsets?[1] ?? offset + t.Bytes.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.Bytes.Length;
            }

            w.WriteEndObject();
        }

        WriteHeaderAndData(path, json.ToArray(), list.SelectMany(t => t.Bytes).ToArray(), headerLengthOverride);
    }

    public static void WriteHeaderAndData(string path, byte[] header, byte[] data, long? headerLengthOverride = null)
    {
        using var file = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)(headerLengthOverride ?? header.Length));
        file.Write(prefix);
        file.Write(header);
        file.Write(data);
    }

    /// <summary>Every tensor of <paramref name="store"/> as F32 raw tensors in layout order.</summary>
    public static List<RawTensor> FromStore(ParameterStore store)
    {
        var list = new List<RawTensor>();
        for (var p = 0; p < store.Specs.Count; p++)
        {
            list.Add(RawTensor.F32(store.Specs[p].Name, Array.ConvertAll(store.Specs[p].Shape, d => (long)d), store[p]));
        }

        return list;
    }

    public static string Utf8(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}

/// <summary>Small configs and temporary model directories for checkpoint tests.</summary>
internal static class TestModels
{
    public const string MicroJson = """
        {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 3,
         "first_k_dense_replace": 1, "num_attention_heads": 2, "q_lora_rank": 24, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
         "qk_rope_head_dim": 4, "v_head_dim": 8, "n_routed_experts": 8, "num_experts_per_tok": 2, "n_shared_experts": 1,
         "n_group": 2, "topk_group": 1, "max_position_embeddings": 16, "num_nextn_predict_layers": 1}
        """;

    public static DeepSeekV3Config Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        var (config, error) = DeepSeekV3Config.Parse(document.RootElement);
        return config ?? throw new InvalidOperationException(error);
    }

    public static DeepSeekV3Config Micro() => Parse(MicroJson);

    /// <summary>Walks up from the test binaries to the repository root (the directory holding DeepSeekRL.sln).</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DeepSeekRL.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("DeepSeekRL.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A temporary directory deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("dsrl-model-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
