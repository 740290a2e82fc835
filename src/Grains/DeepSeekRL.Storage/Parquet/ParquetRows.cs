using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace DeepSeekRL.Storage.Parquet;

// Reads an untrusted Parquet file row group by row group and hands each row on as a JSON object text, so that the
// JSONL readers' field mapping and bad-row accounting apply unchanged. Flat columns of any primitive type and a
// `messages` list of {role, content} structs (the export's chat layout) are read; other nested columns are skipped.
// Not a general Parquet-to-JSON converter.

/// <summary>One row as a JSON object, with where it came from.</summary>
/// <param name="RowGroup">The 0-based row group.</param>
/// <param name="Row">The 0-based row within the row group.</param>
/// <param name="Json">The row as a JSON object text.</param>
internal readonly record struct ParquetJsonRow(int RowGroup, int Row, string Json)
{
    /// <summary>Where the row is, as errors name it: <c>row group 0, row 5</c>.</summary>
    public string Where => string.Create(CultureInfo.InvariantCulture, $"row group {RowGroup}, row {Row}");
}

/// <summary>A validated Parquet file opened for reading.</summary>
internal sealed class ParquetRows : IAsyncDisposable
{
    /// <summary>The most rows a row group may claim (pyarrow writes at most 1,048,576 per group by default).</summary>
    public const long MaxRowGroupRows = 1 << 20;

    /// <summary>The most values a column chunk may claim (a list column has several values per row).</summary>
    public const long MaxColumnValues = 16L << 20;

    /// <summary>The largest footer read (bytes).</summary>
    public const int MaxFooterBytes = 64 << 20;

    private static readonly byte[] Magic = "PAR1"u8.ToArray();
    private readonly FileStream _file;
    private readonly ParquetReader _reader;
    private readonly string _name;

    private ParquetRows(FileStream file, ParquetReader reader, string name, List<string> skippedColumns)
    {
        _file = file;
        _reader = reader;
        _name = name;
        SkippedColumns = skippedColumns;
    }

    /// <summary>Each row group's row count, in file order.</summary>
    public IReadOnlyList<long> RowGroupRows => _reader.RowGroups.Select(g => g.RowCount).ToArray();

    /// <summary>Where the <paramref name="index"/>-th row (0-based over the file) is: <c>row group 1, row 5</c>.</summary>
    /// <param name="index">The row's position in the file.</param>
    /// <returns>Its row group and row.</returns>
    public string Where(long index)
    {
        var rows = RowGroupRows;
        var g = 0;
        while (g < rows.Count - 1 && index >= rows[g])
        {
            index -= rows[g++];
        }

        return new ParquetJsonRow(g, (int)index, string.Empty).Where;
    }

    /// <summary>Nested columns that are not read (named for a warning).</summary>
    public IReadOnlyList<string> SkippedColumns { get; }

    /// <summary>Whether a file is Parquet: its name ends in <c>.parquet</c> or it starts with the magic <c>PAR1</c>.</summary>
    /// <param name="path">The file.</param>
    /// <returns>Whether to read it as Parquet.</returns>
    public static bool IsParquet(string path)
    {
        if (path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        try
        {
            using var file = File.OpenRead(path);
            Span<byte> head = stackalloc byte[4];
            return file.ReadAtLeast(head, 4, throwOnEndOfStream: false) == 4 && head.SequenceEqual(Magic);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Opens a file after checking its frame (magic at both ends, a footer length that fits the file) and every row
    /// group's claims (rows, values and sizes within bounds and within the file), so that a garbage or truncated file
    /// is a one-line error naming it and a lying header never makes the reader allocate what it asks for.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The open file, or a one-line error naming it.</returns>
    public static async Task<Outcome<ParquetRows>> OpenAsync(string path, CancellationToken cancellationToken)
    {
        var name = Path.GetFileName(path);
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Outcome<ParquetRows>.Failure($"{name}: {ex.Message}");
        }

        try
        {
            var length = file.Length;
            var frame = new byte[8];
            if (length < 12)
            {
                return Fail($"{length} bytes; too short for a Parquet file");
            }

            await file.ReadExactlyAsync(frame.AsMemory(0, 4), cancellationToken);
            if (!frame.AsSpan(0, 4).SequenceEqual(Magic))
            {
                return Fail("does not start with PAR1");
            }

            file.Position = length - 8;
            await file.ReadExactlyAsync(frame, cancellationToken);
            if (!frame.AsSpan(4, 4).SequenceEqual(Magic))
            {
                return Fail("does not end with PAR1 (truncated?)");
            }

            var footer = BinaryPrimitives.ReadInt32LittleEndian(frame);
            if (footer <= 0 || footer > length - 12 || footer > MaxFooterBytes)
            {
                return Fail(string.Create(CultureInfo.InvariantCulture, $"footer length {footer} does not fit a {length}-byte file"));
            }

            // The footer's structure is checked before Parquet.Net decodes it: its decoder trusts the counts it reads.
            var footerBytes = new byte[footer];
            file.Position = length - 8 - footer;
            await file.ReadExactlyAsync(footerBytes, cancellationToken);
            if (ThriftFooter.Check(footerBytes) is string malformed)
            {
                return Fail($"not a readable Parquet file (footer: {malformed})");
            }

            file.Position = 0;
            var reader = await ParquetReader.CreateAsync(file, new ParquetOptions(), leaveStreamOpen: true, cancellationToken);
            var problem = Check(reader, length);
            if (problem is not null)
            {
                await reader.DisposeAsync();
                return Fail(problem);
            }

            var skipped = reader.Schema.Fields.Where(f => f is not DataField && !(f.Name == "messages" && MessageFields(f) is not null)).Select(f => f.Name).ToList();
            return Outcome<ParquetRows>.Success(new ParquetRows(file, reader, name, skipped));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Parquet.Net reports a malformed footer with whatever its decoder hit; all of it is "not readable".
            return Fail($"not a readable Parquet file ({OneLine(ex)})");
        }

        Outcome<ParquetRows> Fail(string message)
        {
            file.Dispose();
            return Outcome<ParquetRows>.Failure($"{name}: {message}");
        }
    }

    /// <summary>
    /// The rows in file order, row group by row group (one group's columns in memory at a time). A row group whose
    /// pages cannot be decoded throws <see cref="InvalidDataException"/> with a one-line message naming the file and
    /// the row group.
    /// </summary>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The rows.</returns>
    public async IAsyncEnumerable<ParquetJsonRow> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(1 << 12);
        for (var g = 0; g < _reader.RowGroupCount; g++)
        {
            var columns = new List<(string Name, object?[] Values)>();
            int rows;
            using (var group = _reader.OpenRowGroupReader(g))
            {
                rows = (int)group.RowCount;
                try
                {
                    foreach (var field in _reader.Schema.Fields)
                    {
                        if (field is DataField data)
                        {
                            columns.Add((data.Name, await ReadFlatAsync(group, data, rows, cancellationToken)));
                        }
                        else if (field.Name == "messages" && MessageFields(field) is { } leaves)
                        {
                            columns.Add((field.Name, await ReadMessagesAsync(group, leaves.Role, leaves.Content, rows, cancellationToken)));
                        }
                    }
                }
                catch (Exception ex) when (ex is not (OperationCanceledException or InvalidDataException))
                {
                    throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{_name} row group {g}: not readable ({OneLine(ex)})"), ex);
                }
                catch (InvalidDataException ex)
                {
                    throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{_name} row group {g}: {ex.Message}"), ex);
                }
            }

            for (var r = 0; r < rows; r++)
            {
                buffer.ResetWrittenCount();
                using (var json = new Utf8JsonWriter(buffer))
                {
                    json.WriteStartObject();
                    foreach (var (name, values) in columns)
                    {
                        json.WritePropertyName(name);
                        WriteValue(json, values[r]);
                    }

                    json.WriteEndObject();
                }

                yield return new ParquetJsonRow(g, r, Encoding.UTF8.GetString(buffer.WrittenSpan));
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _reader.DisposeAsync();
        await _file.DisposeAsync();
    }

    private static string? Check(ParquetReader reader, long length)
    {
        for (var g = 0; g < reader.RowGroups.Count; g++)
        {
            var group = reader.RowGroups[g];
            if (group.RowCount is < 0 or > MaxRowGroupRows)
            {
                return string.Create(CultureInfo.InvariantCulture, $"row group {g} claims {group.RowCount} rows; at most {MaxRowGroupRows} are read");
            }
        }

        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            foreach (var field in reader.Schema.GetDataFields())
            {
                var chunk = group.GetMetadata(field)?.MetaData;
                if (chunk is null)
                {
                    return $"row group {g} has no column chunk for \"{field.Path}\"";
                }

                if (chunk.NumValues < 0 || chunk.NumValues > MaxColumnValues || (field.MaxRepetitionLevel == 0 && chunk.NumValues != group.RowCount))
                {
                    return string.Create(CultureInfo.InvariantCulture, $"row group {g}, column \"{field.Path}\" claims {chunk.NumValues} values for {group.RowCount} rows");
                }

                if (chunk.TotalCompressedSize < 0 || chunk.TotalCompressedSize > length
                    || chunk.DataPageOffset < 0 || chunk.DataPageOffset + chunk.TotalCompressedSize > length
                    || chunk.TotalUncompressedSize is < 0 or > int.MaxValue)
                {
                    return string.Create(CultureInfo.InvariantCulture, $"row group {g}, column \"{field.Path}\" claims {chunk.TotalCompressedSize} bytes at offset {chunk.DataPageOffset} ({chunk.TotalUncompressedSize} uncompressed) in a {length}-byte file");
                }
            }
        }

        return null;
    }

    /// <summary>The role and content leaves of a <c>messages</c> list of <c>{role, content}</c> string structs, or null.</summary>
    private static (DataField Role, DataField Content)? MessageFields(Field field)
    {
        if (field is not ListField { Item: StructField item })
        {
            return null;
        }

        var role = item.Fields.OfType<DataField>().FirstOrDefault(f => f.Name == "role");
        var content = item.Fields.OfType<DataField>().FirstOrDefault(f => f.Name == "content");
        return role is not null && content is not null && IsString(role) && IsString(content) && role.MaxRepetitionLevel == 1 && content.MaxRepetitionLevel == 1
            ? (role, content)
            : null;

        static bool IsString(DataField f) => f.ClrType == typeof(string) || f.ClrType == typeof(ReadOnlyMemory<char>);
    }

    /// <summary>
    /// Reassembles each row's list from the two leaf columns' levels (Dremel): repetition level 0 starts a row;
    /// a definition level below the leaf's maximum is a null field, or no element at all when it is below the
    /// element's own level (an empty or null list). Values come back dense (only the defined ones).
    /// </summary>
    private static async Task<object?[]> ReadMessagesAsync(ParquetRowGroupReader group, DataField role, DataField content, int rows, CancellationToken cancellationToken)
    {
        var roles = await ReadLeafAsync(group, role, cancellationToken);
        var contents = await ReadLeafAsync(group, content, cancellationToken);
        if (roles.Levels.Length != contents.Levels.Length)
        {
            throw new InvalidDataException($"column \"messages\": {roles.Levels.Length} roles and {contents.Levels.Length} contents");
        }

        var lists = new object?[rows];
        int row = -1, ri = 0, ci = 0;
        List<(string? Role, string? Content)>? current = null;
        for (var i = 0; i < roles.Levels.Length; i++)
        {
            var (rdef, rrep) = roles.Levels[i];
            var cdef = contents.Levels[i].Definition;
            if (rrep == 0)
            {
                row++;
                if (row >= rows)
                {
                    throw new InvalidDataException($"column \"messages\" holds more lists than the row group's {rows} rows");
                }

                current = null;
                lists[row] = null;
            }

            string? r = rdef == role.MaxDefinitionLevel ? Value(roles.Values, ref ri) : null;
            string? c = cdef == content.MaxDefinitionLevel ? Value(contents.Values, ref ci) : null;

            // The element exists when the levels reach the struct (one below a nullable leaf's maximum); below
            // that, a level above 0 is an empty list and 0 a null one.
            var elementLevel = role.MaxDefinitionLevel - (role.IsNullable ? 1 : 0);
            if (rdef >= elementLevel)
            {
                current ??= [];
                lists[row] = current;
                current.Add((r, c));
            }
            else if (rdef > 0)
            {
                current ??= [];
                lists[row] = current;
            }
        }

        return lists;

        static string Value(string?[] values, ref int index) =>
            index < values.Length ? values[index++] ?? string.Empty : throw new InvalidDataException("column \"messages\": fewer values than its levels say");
    }

    private static async Task<(string?[] Values, (int Definition, int Repetition)[] Levels)> ReadLeafAsync(ParquetRowGroupReader group, DataField field, CancellationToken cancellationToken)
    {
        // NumValues was bounded when the file was opened.
        var n = (int)group.GetMetadata(field)!.MetaData!.NumValues;
        var values = new ReadOnlyMemory<char>[n];
        var definitions = new int[n];
        var repetitions = new int[n];
        await group.ReadRawAsync<ReadOnlyMemory<char>>(field, values.AsMemory(), definitions.AsMemory(), repetitions.AsMemory(), cancellationToken);
        var defined = 0;
        var levels = new (int, int)[n];
        for (var i = 0; i < n; i++)
        {
            levels[i] = (definitions[i], repetitions[i]);
            defined += definitions[i] == field.MaxDefinitionLevel ? 1 : 0;
        }

        var strings = new string?[defined];
        for (var i = 0; i < defined; i++)
        {
            strings[i] = values[i].ToString();
        }

        return (strings, levels);
    }

    private static async Task<object?[]> ReadFlatAsync(ParquetRowGroupReader group, DataField field, int rows, CancellationToken cancellationToken)
    {
        var type = field.ClrType;
        if (type == typeof(string) || type == typeof(ReadOnlyMemory<char>))
        {
            var strings = new string?[rows];
            await group.ReadAsync(field, strings.AsMemory(), null, cancellationToken);
            return strings;
        }

        if (type == typeof(byte[]))
        {
            var bytes = new byte[]?[rows];
            await group.ReadAsync(field, bytes.AsMemory(), null, cancellationToken);
            return bytes;
        }

        return type switch
        {
            _ when type == typeof(bool) => await ReadAsync<bool>(group, field, rows, cancellationToken),
            _ when type == typeof(sbyte) => await ReadAsync<sbyte>(group, field, rows, cancellationToken),
            _ when type == typeof(byte) => await ReadAsync<byte>(group, field, rows, cancellationToken),
            _ when type == typeof(short) => await ReadAsync<short>(group, field, rows, cancellationToken),
            _ when type == typeof(ushort) => await ReadAsync<ushort>(group, field, rows, cancellationToken),
            _ when type == typeof(int) => await ReadAsync<int>(group, field, rows, cancellationToken),
            _ when type == typeof(uint) => await ReadAsync<uint>(group, field, rows, cancellationToken),
            _ when type == typeof(long) => await ReadAsync<long>(group, field, rows, cancellationToken),
            _ when type == typeof(ulong) => await ReadAsync<ulong>(group, field, rows, cancellationToken),
            _ when type == typeof(float) => await ReadAsync<float>(group, field, rows, cancellationToken),
            _ when type == typeof(double) => await ReadAsync<double>(group, field, rows, cancellationToken),
            _ when type == typeof(decimal) => await ReadAsync<decimal>(group, field, rows, cancellationToken),
            _ when type == typeof(DateTime) => await ReadAsync<DateTime>(group, field, rows, cancellationToken),
            _ when type == typeof(DateOnly) => await ReadAsync<DateOnly>(group, field, rows, cancellationToken),
            _ when type == typeof(TimeOnly) => await ReadAsync<TimeOnly>(group, field, rows, cancellationToken),
            _ when type == typeof(TimeSpan) => await ReadAsync<TimeSpan>(group, field, rows, cancellationToken),
            _ when type == typeof(Guid) => await ReadAsync<Guid>(group, field, rows, cancellationToken),
            _ => throw new InvalidDataException($"column \"{field.Name}\" has the unsupported type {type.Name}"),
        };
    }

    private static async Task<object?[]> ReadAsync<T>(ParquetRowGroupReader group, DataField field, int rows, CancellationToken cancellationToken)
        where T : struct
    {
        var boxed = new object?[rows];
        if (!field.IsNullable)
        {
            // A required column is read as such: read into nullable slots, Parquet.Net 6.1 now and then left a value
            // of a required column null (the same file read again gave the right value; DuckDB read it right).
            var required = new T[rows];
            await group.ReadAsync<T>(field, required.AsMemory(), null, cancellationToken);
            for (var i = 0; i < rows; i++)
            {
                boxed[i] = required[i];
            }

            return boxed;
        }

        var values = new T?[rows];
        await group.ReadAsync<T>(field, values.AsMemory(), null, cancellationToken);
        for (var i = 0; i < rows; i++)
        {
            boxed[i] = values[i];
        }

        return boxed;
    }

    private static void WriteValue(Utf8JsonWriter json, object? value)
    {
        switch (value)
        {
            case null:
                json.WriteNullValue();
                break;
            case List<(string? Role, string? Content)> messages:
                json.WriteStartArray();
                foreach (var (role, content) in messages)
                {
                    json.WriteStartObject();
                    WriteNullableString(json, "role", role);
                    WriteNullableString(json, "content", content);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                break;
            case string s:
                json.WriteStringValue(s);
                break;
            case bool b:
                json.WriteBooleanValue(b);
                break;
            case byte[] bytes:
                json.WriteBase64StringValue(bytes);
                break;
            case float f when !float.IsFinite(f):
            case double d when !double.IsFinite(d):
                json.WriteNullValue();
                break;
            case sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal:
                json.WriteRawValue(Convert.ToString(value, CultureInfo.InvariantCulture)!, skipInputValidation: true);
                break;
            case DateTime t:
                json.WriteStringValue(t.ToString("O", CultureInfo.InvariantCulture));
                break;
            case DateOnly d:
                json.WriteStringValue(d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                break;
            default:
                json.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }

    private static void WriteNullableString(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }

    private static string OneLine(Exception ex) => ex.Message.ReplaceLineEndings(" ");
}
