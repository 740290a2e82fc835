using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using DeepSeekRL.Model.Checkpoints;

namespace DeepSeekRL.Model.Tests.Checkpoints;

/// <summary>
/// Thousands of seeded corruptions of a valid micro checkpoint's header: every one must load or throw a
/// <see cref="SafetensorsException"/> (never another exception type) without a large managed allocation.
/// </summary>
public sealed class SafetensorsFuzzTests
{
    private const int Cases = 3000;

    // A load of the micro model allocates its 268 KB store plus the parsed header; a corrupted size must never make
    // the loader allocate anything near what the header claims.
    private const long AllocationBound = 16L << 20;

    private static readonly string[] BigNumbers =
    [
        "18446744073709551615", "9223372036854775807", "9223372036854775808", "-1", "-9223372036854775808", "1e300",
        "4294967296", "2147483648", "1.5", "0", "99999999999999999999999999", "-0", "1E+20",
    ];

    private static readonly string[] WrongValues = ["\"x\"", "[]", "{}", "null", "true", "[1]", "[[0,1]]", "\"F32\"", "[0,1,2]", "-5"];

    [Fact]
    public void Load_CorruptedHeaders_LoadOrThrowSafetensorsExceptionOnly()
    {
        using var dir = new TempDirectory();
        var store = ModelInit.Create(TestModels.Micro(), 1);
        ModelCheckpoint.Save(store, dir.Path);
        var path = dir.File(ModelCheckpoint.WeightsFileName);
        var original = File.ReadAllBytes(path);
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        var header = original.AsSpan(8, headerLength).ToArray();
        var data = original.AsSpan(8 + headerLength).ToArray();
        var random = new Random(20251123);
        int loaded = 0, rejected = 0;
        var kinds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < Cases; i++)
        {
            var (kind, bytes) = Mutate(random, header, data);
            kinds[kind] = kinds.GetValueOrDefault(kind) + 1;
            File.WriteAllBytes(path, bytes);
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                ModelCheckpoint.Load(dir.Path);
                loaded++;
            }
            catch (SafetensorsException ex)
            {
                Assert.False(ex.Message.Contains('\n', StringComparison.Ordinal), $"case {i} ({kind}): multi-line message {ex.Message}");
                rejected++;
            }
            catch (Exception ex)
            {
                Assert.Fail($"case {i} ({kind}): {ex.GetType().Name}: {ex.Message}\nheader: {Preview(bytes)}");
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < AllocationBound, $"case {i} ({kind}): allocated {allocated} bytes");
        }

        Assert.Equal(Cases, loaded + rejected);
        Assert.True(rejected > Cases / 2, $"only {rejected} of {Cases} corruptions were rejected");
        Assert.True(kinds.Count >= 7, string.Join(", ", kinds));
    }

    private static (string Kind, byte[] Bytes) Mutate(Random random, byte[] header, byte[] data)
    {
        var h = (byte[])header.Clone();
        var text = Encoding.UTF8.GetString(header);
        long? prefix = null;
        var body = data;
        string kind;
        switch (random.Next(9))
        {
            case 0:
                kind = "bit flips";
                for (var k = 1 + random.Next(4); k > 0; k--)
                {
                    h[random.Next(h.Length)] ^= (byte)(1 << random.Next(8));
                }

                break;
            case 1:
                kind = "truncated file";
                var all = Assemble(h, data, null);
                return (kind, all.AsSpan(0, random.Next(all.Length)).ToArray());
            case 2:
                kind = "big number";
                h = Encoding.UTF8.GetBytes(ReplaceNumber(random, text, BigNumbers[random.Next(BigNumbers.Length)]));
                break;
            case 3:
                kind = "wrong type";
                h = Encoding.UTF8.GetBytes(ReplaceValue(random, text, WrongValues[random.Next(WrongValues.Length)]));
                break;
            case 4:
                kind = "header length";
                prefix = random.Next(3) switch
                {
                    0 => header.Length + random.Next(-16, 17),
                    1 => long.MaxValue - random.Next(100),
                    _ => random.NextInt64(0, 1L << 40),
                };
                break;
            case 5:
                kind = "deleted span";
                var at = random.Next(h.Length);
                h = [.. h.AsSpan(0, at), .. h.AsSpan(Math.Min(h.Length, at + 1 + random.Next(40)))];
                break;
            case 6:
                kind = "dtype";
                h = Encoding.UTF8.GetBytes(ReplaceOnce(random, text, "\"F32\"", random.Next(5) switch
                {
                    0 => "\"BF16\"",
                    1 => "\"F8_E4M3\"",
                    2 => "\"I64\"",
                    3 => "\"F8_E5M2\"",
                    _ => "\"f32\"",
                }));
                break;
            case 7:
                kind = "data size";
                body = random.Next(2) == 0 ? data.AsSpan(0, Math.Max(0, data.Length - 1 - random.Next(200))).ToArray() : [.. data, .. new byte[1 + random.Next(64)]];
                break;
            default:
                kind = "random bytes";
                var start = random.Next(h.Length);
                for (var k = 0; k < 1 + random.Next(8) && start + k < h.Length; k++)
                {
                    h[start + k] = (byte)random.Next(256);
                }

                break;
        }

        return (kind, Assemble(h, body, prefix));
    }

    private static byte[] Assemble(byte[] header, byte[] data, long? prefix)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, prefix ?? header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    /// <summary>Replaces one number token (a shape dimension or an offset) with <paramref name="replacement"/>.</summary>
    private static string ReplaceNumber(Random random, string text, string replacement)
    {
        var starts = new List<int>();
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsAsciiDigit(text[i]) && (text[i - 1] is '[' or ','))
            {
                starts.Add(i);
            }
        }

        var s = starts[random.Next(starts.Count)];
        var e = s;
        while (e < text.Length && char.IsAsciiDigit(text[e]))
        {
            e++;
        }

        return string.Concat(text.AsSpan(0, s), replacement, text.AsSpan(e));
    }

    /// <summary>Replaces the value of one "dtype", "shape" or "data_offsets" key, or a whole tensor entry.</summary>
    private static string ReplaceValue(Random random, string text, string replacement)
    {
        var key = random.Next(4) switch
        {
            0 => "\"dtype\":",
            1 => "\"shape\":",
            2 => "\"data_offsets\":",
            _ => "\"format\":",
        };
        var positions = new List<int>();
        for (var i = text.IndexOf(key, StringComparison.Ordinal); i >= 0; i = text.IndexOf(key, i + 1, StringComparison.Ordinal))
        {
            positions.Add(i + key.Length);
        }

        if (positions.Count == 0)
        {
            return text;
        }

        var s = positions[random.Next(positions.Count)];
        var e = s;
        var depth = 0;
        do
        {
            depth += text[e] switch { '[' or '{' => 1, ']' or '}' => -1, _ => 0 };
            e++;
        }
        while (e < text.Length && (depth > 0 || (text[e] != ',' && text[e] != '}')));

        return string.Concat(text.AsSpan(0, s), replacement, text.AsSpan(e));
    }

    private static string ReplaceOnce(Random random, string text, string what, string replacement)
    {
        var positions = new List<int>();
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + 1, StringComparison.Ordinal))
        {
            positions.Add(i);
        }

        var s = positions[random.Next(positions.Count)];
        return string.Concat(text.AsSpan(0, s), replacement, text.AsSpan(s + what.Length));
    }

    private static string Preview(byte[] bytes) =>
        Encoding.UTF8.GetString(bytes.AsSpan(0, Math.Min(bytes.Length, 400))).ReplaceLineEndings(" ") + " ... " + bytes.Length.ToString(CultureInfo.InvariantCulture);
}
