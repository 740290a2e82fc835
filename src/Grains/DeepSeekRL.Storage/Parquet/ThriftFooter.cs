namespace DeepSeekRL.Storage.Parquet;

/// <summary>
/// A structural check of a Parquet footer (Thrift compact protocol) before Parquet.Net decodes it: every field, list,
/// set, map and string fits in the bytes that remain and structs nest at most <see cref="MaxDepth"/> deep. Parquet.Net's
/// decoder trusts the counts it reads: a list header claiming two billion elements in a garbage footer made it skip
/// for ever (a test writing random bytes between intact magics hung for 14 minutes at 100 % CPU). Every element takes
/// at least one byte in the compact protocol, so a count larger than the bytes left is a lie.
/// </summary>
internal static class ThriftFooter
{
    /// <summary>The deepest nesting of structs and containers accepted (Parquet's metadata nests about six deep).</summary>
    public const int MaxDepth = 64;

    private const int BoolTrue = 1, BoolFalse = 2, Byte = 3, I16 = 4, I32 = 5, I64 = 6, Double = 7, Binary = 8, List = 9, Set = 10, Map = 11, Struct = 12, Uuid = 13;

    /// <summary>Checks that <paramref name="footer"/> holds one well-formed compact-protocol struct.</summary>
    /// <param name="footer">The footer bytes (between the data and the footer length).</param>
    /// <returns>Null when well formed, else what is wrong, with its byte offset.</returns>
    public static string? Check(ReadOnlySpan<byte> footer)
    {
        var position = 0;
        return SkipStruct(footer, ref position, 0);
    }

    private static string? SkipStruct(ReadOnlySpan<byte> data, ref int position, int depth)
    {
        if (depth > MaxDepth)
        {
            return $"structs nested deeper than {MaxDepth} at byte {position}";
        }

        while (true)
        {
            if (position >= data.Length)
            {
                return $"struct not terminated at byte {position}";
            }

            var header = data[position++];
            if (header == 0)
            {
                return null; // STOP
            }

            if (header >> 4 == 0 && ReadVarint(data, ref position) is null)
            {
                return $"field id cut short at byte {position}";
            }

            var type = header & 0x0F;
            if (type is BoolTrue or BoolFalse)
            {
                continue; // a field's boolean is its type
            }

            if (SkipValue(data, ref position, type, depth) is string problem)
            {
                return problem;
            }
        }
    }

    private static string? SkipValue(ReadOnlySpan<byte> data, ref int position, int type, int depth)
    {
        switch (type)
        {
            case BoolTrue or BoolFalse or Byte:
                return Advance(data, ref position, 1);
            case I16 or I32 or I64:
                return ReadVarint(data, ref position) is null ? $"integer cut short at byte {position}" : null;
            case Double:
                return Advance(data, ref position, 8);
            case Uuid:
                return Advance(data, ref position, 16);
            case Binary:
                var length = ReadVarint(data, ref position);
                return length is null ? $"string length cut short at byte {position}"
                    : length.Value > (ulong)(data.Length - position) ? $"string of {length} bytes at byte {position} runs past the footer's end"
                    : Advance(data, ref position, (int)length.Value);
            case List or Set:
                return SkipList(data, ref position, depth);
            case Map:
                return SkipMap(data, ref position, depth);
            case Struct:
                return SkipStruct(data, ref position, depth + 1);
            default:
                return $"unknown type {type} at byte {position}";
        }
    }

    private static string? SkipList(ReadOnlySpan<byte> data, ref int position, int depth)
    {
        if (position >= data.Length)
        {
            return $"list header cut short at byte {position}";
        }

        var header = data[position++];
        var elementType = header & 0x0F;
        ulong? count = (ulong)(header >> 4);
        if (count == 15)
        {
            count = ReadVarint(data, ref position);
        }

        if (count is null || count.Value > (ulong)(data.Length - position))
        {
            return $"list of {(count is null ? "?" : count.Value.ToString(System.Globalization.CultureInfo.InvariantCulture))} elements at byte {position} runs past the footer's end";
        }

        if (depth + 1 > MaxDepth)
        {
            return $"containers nested deeper than {MaxDepth} at byte {position}";
        }

        for (var i = 0UL; i < count.Value; i++)
        {
            if (SkipValue(data, ref position, elementType, depth + 1) is string problem)
            {
                return problem;
            }
        }

        return null;
    }

    private static string? SkipMap(ReadOnlySpan<byte> data, ref int position, int depth)
    {
        var count = ReadVarint(data, ref position);
        if (count is null || count.Value > (ulong)(data.Length - position))
        {
            return $"map at byte {position} runs past the footer's end";
        }

        if (count.Value == 0)
        {
            return null;
        }

        if (position >= data.Length)
        {
            return $"map types cut short at byte {position}";
        }

        var types = data[position++];
        if (depth + 1 > MaxDepth)
        {
            return $"containers nested deeper than {MaxDepth} at byte {position}";
        }

        for (var i = 0UL; i < count.Value; i++)
        {
            if ((SkipValue(data, ref position, types >> 4, depth + 1) ?? SkipValue(data, ref position, types & 0x0F, depth + 1)) is string problem)
            {
                return problem;
            }
        }

        return null;
    }

    private static string? Advance(ReadOnlySpan<byte> data, ref int position, int bytes)
    {
        if (bytes > data.Length - position)
        {
            return $"value of {bytes} bytes at byte {position} runs past the footer's end";
        }

        position += bytes;
        return null;
    }

    // An unsigned LEB128 varint of at most 10 bytes; null when cut short or longer.
    private static ulong? ReadVarint(ReadOnlySpan<byte> data, ref int position)
    {
        ulong value = 0;
        for (var shift = 0; shift < 70 && position < data.Length; shift += 7)
        {
            var b = data[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        return null;
    }
}
