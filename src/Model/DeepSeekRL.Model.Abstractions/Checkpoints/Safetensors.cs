using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;

namespace DeepSeekRL.Model.Checkpoints;

// safetensors (HF): an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then
// the byte buffer. This file reads and writes it strictly (reference doc §14): no header size is trusted before it is
// checked against the file. It is not a general tensor library: tensors come out as float32.

/// <summary>The element types of safetensors that DeepSeekRL knows.</summary>
public enum SafetensorsDtype
{
    /// <summary>IEEE binary32.</summary>
    F32,

    /// <summary>bfloat16 (the upper half of a binary32).</summary>
    BF16,

    /// <summary>IEEE binary16.</summary>
    F16,

    /// <summary>float8 e4m3fn (DeepSeek's FP8, with 128x128 <c>weight_scale_inv</c> blocks).</summary>
    F8_E4M3,

    /// <summary>IEEE binary64.</summary>
    F64,

    /// <summary>Signed 64-bit integers.</summary>
    I64,

    /// <summary>Signed 32-bit integers.</summary>
    I32,

    /// <summary>Unsigned bytes.</summary>
    U8,
}

/// <summary>One tensor's header entry.</summary>
/// <param name="Name">The tensor name.</param>
/// <param name="Dtype">The element type.</param>
/// <param name="Shape">The shape (empty for a scalar).</param>
/// <param name="Begin">Start offset in the byte buffer.</param>
/// <param name="End">End offset (exclusive) in the byte buffer.</param>
public sealed record SafetensorsEntry(string Name, SafetensorsDtype Dtype, long[] Shape, long Begin, long End)
{
    /// <summary>The number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>A safetensors file that failed validation; the message names the file, the tensor and the problem.</summary>
/// <param name="message">The one-line message.</param>
public sealed class SafetensorsException(string message) : Exception(message);

/// <summary>Reads safetensors files strictly (bounds, tiling, sizes, dtypes), and writes F32 or BF16 files.</summary>
public static class Safetensors
{
    /// <summary>The largest header accepted (the reference reader's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Reads and validates the header of <paramref name="path"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="metadata">The <c>__metadata__</c> strings, if any.</param>
    /// <returns>The entries by name, and the file offset of the byte buffer.</returns>
    /// <exception cref="SafetensorsException">The file is not a valid safetensors file.</exception>
    public static (IReadOnlyDictionary<string, SafetensorsEntry> Entries, long DataStart) ReadHeader(string path, out IReadOnlyDictionary<string, string> metadata)
    {
        using var file = File.OpenRead(path);
        var length = file.Length;
        if (length < 8)
        {
            throw new SafetensorsException($"{path}: {length} bytes is too short for a safetensors file (8-byte header length missing)");
        }

        Span<byte> prefix = stackalloc byte[8];
        file.ReadExactly(prefix);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes || (long)headerLength > length - 8)
        {
            throw new SafetensorsException($"{path}: header length {headerLength} exceeds the file ({length} bytes) or the {MaxHeaderBytes}-byte limit");
        }

        var header = new byte[headerLength];
        file.ReadExactly(header);
        if (!System.Text.Unicode.Utf8.IsValid(header))
        {
            throw new SafetensorsException($"{path}: the header is not valid UTF-8");
        }

        var dataStart = 8 + (long)headerLength;
        var bufferLength = length - dataStart;
        var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.AsMemory().TrimEnd((byte)' '), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException ex)
        {
            throw new SafetensorsException($"{path}: the header is not valid JSON ({ex.Message.Split(" LineNumber", 2)[0]})");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new SafetensorsException($"{path}: the header must be a JSON object");
            }

            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                    {
                        throw new SafetensorsException($"{path}: __metadata__ must be an object of strings");
                    }

                    foreach (var m in property.Value.EnumerateObject())
                    {
                        meta[m.Name] = m.Value.ValueKind == JsonValueKind.String
                            ? m.Value.GetString()!
                            : throw new SafetensorsException($"{path}: __metadata__.{m.Name} must be a string");
                    }

                    continue;
                }

                if (entries.ContainsKey(property.Name))
                {
                    throw new SafetensorsException($"{path}: tensor '{property.Name}' appears twice in the header");
                }

                entries[property.Name] = ParseEntry(path, property.Name, property.Value, bufferLength);
            }
        }

        // The tensors must tile the buffer exactly: sorted by offset, no holes, no overlaps, ending at its end.
        long cursor = 0;
        SafetensorsEntry? last = null;
        foreach (var entry in entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin != cursor)
            {
                throw new SafetensorsException(entry.Begin < cursor
                    ? $"{path}: tensor '{entry.Name}' overlaps the previous tensor (offset {entry.Begin} < {cursor})"
                    : $"{path}: a hole of {entry.Begin - cursor} bytes precedes tensor '{entry.Name}'");
            }

            cursor = entry.End;
            last = entry;
        }

        if (cursor != bufferLength)
        {
            throw new SafetensorsException(last is null
                ? $"{path}: the header lists no tensor but the data buffer holds {bufferLength} bytes (padded file)"
                : $"{path}: the last tensor '{last.Name}' ends at byte {cursor} but the data buffer holds {bufferLength} (truncated or padded file)");
        }

        metadata = meta;
        return (entries, dataStart);
    }

    /// <summary>Reads every tensor of <paramref name="path"/> as float32 (integers are converted; FP8 blocks are NOT scaled here).</summary>
    /// <param name="path">The file.</param>
    /// <returns>The tensors by name with their shapes.</returns>
    /// <exception cref="SafetensorsException">The file is not a valid safetensors file.</exception>
    public static IReadOnlyDictionary<string, (long[] Shape, float[] Data)> ReadAll(string path)
    {
        var (entries, dataStart) = ReadHeader(path, out _);
        var result = new Dictionary<string, (long[], float[])>(StringComparer.Ordinal);
        using var file = File.OpenRead(path);
        foreach (var entry in entries.Values)
        {
            result[entry.Name] = (entry.Shape, ReadTensor(file, dataStart, entry));
        }

        return result;
    }

    /// <summary>Reads one tensor's elements as float32.</summary>
    /// <param name="file">The open file.</param>
    /// <param name="dataStart">The file offset of the byte buffer.</param>
    /// <param name="entry">The entry (validated by <see cref="ReadHeader"/>).</param>
    /// <returns>The elements.</returns>
    public static float[] ReadTensor(FileStream file, long dataStart, SafetensorsEntry entry)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(entry);
        var bytes = new byte[entry.End - entry.Begin];
        file.Seek(dataStart + entry.Begin, SeekOrigin.Begin);
        file.ReadExactly(bytes);
        var values = new float[checked((int)entry.ElementCount)];
        Decode(bytes, entry.Dtype, values);
        return values;
    }

    /// <summary>Decodes little-endian elements of <paramref name="dtype"/> into float32 (no FP8 block scaling here).</summary>
    /// <param name="source">The raw bytes: <c>destination.Length</c> elements of <paramref name="dtype"/>.</param>
    /// <param name="dtype">The element type.</param>
    /// <param name="destination">The values.</param>
    /// <exception cref="ArgumentException">The lengths disagree.</exception>
    public static void Decode(ReadOnlySpan<byte> source, SafetensorsDtype dtype, Span<float> destination)
    {
        var n = destination.Length;
        if ((long)n * ElementSize(dtype) != source.Length)
        {
            throw new ArgumentException($"{source.Length} bytes of {dtype} do not hold {n} elements", nameof(source));
        }

        switch (dtype)
        {
            case SafetensorsDtype.F32 when BitConverter.IsLittleEndian:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case SafetensorsDtype.F32:
                for (var i = 0; i < n; i++)
                {
                    destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(i * 4)..]);
                }

                break;
            case SafetensorsDtype.BF16:
                for (var i = 0; i < n; i++)
                {
                    destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source[(i * 2)..]) << 16);
                }

                break;
            case SafetensorsDtype.F16:
                for (var i = 0; i < n; i++)
                {
                    destination[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(source[(i * 2)..]));
                }

                break;
            case SafetensorsDtype.F8_E4M3:
                var table = Fp8Table;
                for (var i = 0; i < n; i++)
                {
                    destination[i] = table[source[i]];
                }

                break;
            case SafetensorsDtype.F64:
                for (var i = 0; i < n; i++)
                {
                    destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(source[(i * 8)..]);
                }

                break;
            case SafetensorsDtype.I64:
                for (var i = 0; i < n; i++)
                {
                    destination[i] = BinaryPrimitives.ReadInt64LittleEndian(source[(i * 8)..]);
                }

                break;
            case SafetensorsDtype.I32:
                for (var i = 0; i < n; i++)
                {
                    destination[i] = BinaryPrimitives.ReadInt32LittleEndian(source[(i * 4)..]);
                }

                break;
            case SafetensorsDtype.U8:
                for (var i = 0; i < n; i++)
                {
                    destination[i] = source[i];
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a known dtype");
        }
    }

    /// <summary>The size in bytes of one element of <paramref name="dtype"/>.</summary>
    /// <param name="dtype">The element type.</param>
    /// <returns>1, 2, 4 or 8.</returns>
    public static int ElementSize(SafetensorsDtype dtype) => dtype switch
    {
        SafetensorsDtype.F32 or SafetensorsDtype.I32 => 4,
        SafetensorsDtype.BF16 or SafetensorsDtype.F16 => 2,
        SafetensorsDtype.F64 or SafetensorsDtype.I64 => 8,
        SafetensorsDtype.F8_E4M3 or SafetensorsDtype.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a known dtype"),
    };

    /// <summary>Writes tensors as F32 or BF16 (round to nearest even), sorted by name, header padded to 8 bytes.</summary>
    /// <param name="path">The file (written to a temporary name, then renamed).</param>
    /// <param name="tensors">The tensors: name, shape, data.</param>
    /// <param name="dtype">F32 or BF16.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> strings.</param>
    public static void Write(string path, IEnumerable<(string Name, long[] Shape, ReadOnlyMemory<float> Data)> tensors, SafetensorsDtype dtype = SafetensorsDtype.F32, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (dtype is not (SafetensorsDtype.F32 or SafetensorsDtype.BF16))
        {
            throw new ArgumentException($"writing {dtype} is not supported (F32 or BF16)", nameof(dtype));
        }

        var list = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var size = dtype == SafetensorsDtype.F32 ? 4 : 2;
        var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (metadata is not null)
            {
                writer.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                {
                    writer.WriteString(k, v);
                }

                writer.WriteEndObject();
            }

            long offset = 0;
            foreach (var (name, shape, data) in list)
            {
                var count = shape.Aggregate(1L, (a, b) => a * b);
                if (count != data.Length)
                {
                    throw new ArgumentException($"tensor '{name}': shape [{string.Join(',', shape)}] holds {count} elements but {data.Length} were given", nameof(tensors));
                }

                writer.WriteStartObject(name);
                writer.WriteString("dtype", dtype.ToString());
                writer.WriteStartArray("shape");
                foreach (var d in shape)
                {
                    writer.WriteNumberValue(d);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + (count * size));
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += count * size;
            }

            writer.WriteEndObject();
        }

        while (json.Length % 8 != 0)
        {
            json.WriteByte((byte)' ');
        }

        var temp = path + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)json.Length);
            file.Write(prefix);
            json.Position = 0;
            json.CopyTo(file);
            var buffer = new byte[1 << 16];
            foreach (var (_, _, data) in list)
            {
                var span = data.Span;
                var filled = 0;
                for (var i = 0; i < span.Length; i++)
                {
                    if (filled + size > buffer.Length)
                    {
                        file.Write(buffer, 0, filled);
                        filled = 0;
                    }

                    if (size == 4)
                    {
                        BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(filled), span[i]);
                    }
                    else
                    {
                        BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(filled), SingleToBFloat16(span[i]));
                    }

                    filled += size;
                }

                file.Write(buffer, 0, filled);
            }
        }

        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Rounds a float32 to bfloat16 bits, to nearest even (NaN stays NaN).</summary>
    /// <param name="value">The value.</param>
    /// <returns>The bfloat16 bits.</returns>
    public static ushort SingleToBFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        var rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    private static readonly float[] Fp8Table = BuildFp8Table();

    /// <summary>Decodes float8 e4m3fn (bias 7, no infinities, S.1111.111 is NaN, max 448).</summary>
    /// <param name="b">The byte.</param>
    /// <returns>The value.</returns>
    public static float Fp8E4M3ToSingle(byte b)
    {
        var sign = (b & 0x80) != 0 ? -1f : 1f;
        var exponent = (b >> 3) & 0xF;
        var mantissa = b & 0x7;
        if (exponent == 0xF && mantissa == 0x7)
        {
            return float.NaN;
        }

        return exponent == 0
            ? sign * (mantissa / 8f) * MathF.Pow(2, -6)
            : sign * (1 + (mantissa / 8f)) * MathF.Pow(2, exponent - 7);
    }

    private static float[] BuildFp8Table()
    {
        var table = new float[256];
        for (var b = 0; b < 256; b++)
        {
            table[b] = Fp8E4M3ToSingle((byte)b);
        }

        return table;
    }

    private static SafetensorsEntry ParseEntry(string path, string name, JsonElement value, long bufferLength)
    {
        string Where(string what) => $"{path}: tensor '{name}': {what}";
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new SafetensorsException(Where("expected an object with dtype, shape, data_offsets"));
        }

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw new SafetensorsException(Where("dtype is missing or not a string"));
        }

        if (!Enum.TryParse<SafetensorsDtype>(dtypeElement.GetString(), ignoreCase: false, out var dtype) || !Enum.IsDefined(dtype))
        {
            throw new SafetensorsException(Where($"dtype '{dtypeElement.GetString()}' is not supported (F32, BF16, F16, F8_E4M3, F64, I64, I32, U8)"));
        }

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array || shapeElement.GetArrayLength() > 8)
        {
            throw new SafetensorsException(Where("shape is missing or not an array of at most 8 dimensions"));
        }

        var shape = new long[shapeElement.GetArrayLength()];
        var k = 0;
        long count = 1;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0 || dim > bufferLength + 1)
            {
                throw new SafetensorsException(Where($"shape[{k}] = {d.GetRawText()} is not a plausible dimension"));
            }

            shape[k++] = dim;
            count = dim == 0 ? 0 : (count > long.MaxValue / dim ? long.MaxValue : count * dim);
        }

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end))
        {
            throw new SafetensorsException(Where("data_offsets must be [begin, end]"));
        }

        if (begin < 0 || end < begin || end > bufferLength)
        {
            throw new SafetensorsException(Where($"data_offsets [{begin}, {end}] lie outside the {bufferLength}-byte data buffer"));
        }

        var size = ElementSize(dtype);
        if (count > (end - begin) || count * size != end - begin)
        {
            throw new SafetensorsException(Where($"shape [{string.Join(',', shape)}] of {dtype} needs {(count > long.MaxValue / size ? "too many" : (count * size).ToString(CultureInfo.InvariantCulture))} bytes but data_offsets span {end - begin}"));
        }

        if (count > int.MaxValue)
        {
            throw new SafetensorsException(Where($"{count} elements exceed the 2^31 elements one tensor may hold here"));
        }

        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }
}
