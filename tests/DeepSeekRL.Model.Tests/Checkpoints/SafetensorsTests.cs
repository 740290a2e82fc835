using System.Buffers.Binary;
using System.Text;
using DeepSeekRL.Model.Checkpoints;

namespace DeepSeekRL.Model.Tests.Checkpoints;

public sealed class SafetensorsTests
{
    [Fact]
    public void Write_F32_RoundTripsExactly()
    {
        using var dir = new TempDirectory();
        float[] a = [1f, -2.5f, float.Epsilon, float.MaxValue, -0f, 3.14159265f];
        float[] b = [42f];
        Safetensors.Write(dir.File("x.safetensors"), [("b", [1], b), ("a", [2, 3], a)], SafetensorsDtype.F32, new Dictionary<string, string> { ["format"] = "pt" });

        var all = Safetensors.ReadAll(dir.File("x.safetensors"));
        Safetensors.ReadHeader(dir.File("x.safetensors"), out var metadata);

        Assert.Equal(a, all["a"].Data);
        Assert.Equal([2L, 3L], all["a"].Shape);
        Assert.Equal(b, all["b"].Data);
        Assert.Equal("pt", metadata["format"]);
    }

    [Fact]
    public void Write_BF16_RoundsToNearestEven()
    {
        using var dir = new TempDirectory();
        // 1 + 2^-8 is exactly half-way between bf16 1 and 1 + 2^-7: ties go to the even mantissa (1).
        // 1 + 3·2^-8 is half-way between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up to 1 + 2^-6.
        float[] values = [1f + (1f / 256), 1f + (3f / 256), 1f + (1f / 256) + (1f / 65536), -3.0f, float.PositiveInfinity];
        float[] expected = [1f, 1f + (1f / 64), 1f + (1f / 128), -3.0f, float.PositiveInfinity];
        Safetensors.Write(dir.File("x.safetensors"), [("t", [5], values)], SafetensorsDtype.BF16);

        var read = Safetensors.ReadAll(dir.File("x.safetensors"))["t"].Data;

        Assert.Equal(expected, read);
        Assert.True(float.IsNaN(BitConverter.Int32BitsToSingle(Safetensors.SingleToBFloat16(float.NaN) << 16)));
    }

    [Fact]
    public void Decode_F16_NormalsSubnormalsInfinities()
    {
        ushort[] bits = [0x3C00, 0xC000, 0x0001, 0x03FF, 0x7BFF, 0x7C00, 0xFC00, 0x8000];
        float[] expected = [1f, -2f, MathF.Pow(2, -24), 1023f / 1024 * MathF.Pow(2, -14), 65504f, float.PositiveInfinity, float.NegativeInfinity, -0f];
        var bytes = new byte[bits.Length * 2];
        for (var i = 0; i < bits.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), bits[i]);
        }

        var values = new float[bits.Length];
        Safetensors.Decode(bytes, SafetensorsDtype.F16, values);

        Assert.Equal(expected, values);
        Safetensors.Decode([0x01, 0x7E], SafetensorsDtype.F16, values.AsSpan(0, 1));
        Assert.True(float.IsNaN(values[0]));
    }

    [Fact]
    public void Fp8E4M3ToSingle_Table_MaxSubnormalsNaN()
    {
        Assert.Equal(448f, Safetensors.Fp8E4M3ToSingle(0x7E));
        Assert.Equal(-448f, Safetensors.Fp8E4M3ToSingle(0xFE));
        Assert.Equal(1f, Safetensors.Fp8E4M3ToSingle(0x38));
        Assert.Equal(MathF.Pow(2, -9), Safetensors.Fp8E4M3ToSingle(0x01));
        Assert.Equal(7 * MathF.Pow(2, -9), Safetensors.Fp8E4M3ToSingle(0x07));
        Assert.Equal(MathF.Pow(2, -6), Safetensors.Fp8E4M3ToSingle(0x08));
        Assert.Equal(0f, Safetensors.Fp8E4M3ToSingle(0x00));
        Assert.True(float.IsNegative(Safetensors.Fp8E4M3ToSingle(0x80)));
        Assert.True(float.IsNaN(Safetensors.Fp8E4M3ToSingle(0x7F)));
        Assert.True(float.IsNaN(Safetensors.Fp8E4M3ToSingle(0xFF)));
        Assert.Equal(2, Enumerable.Range(0, 256).Count(b => float.IsNaN(Safetensors.Fp8E4M3ToSingle((byte)b))));
        Assert.DoesNotContain(Enumerable.Range(0, 256), b => float.IsInfinity(Safetensors.Fp8E4M3ToSingle((byte)b)));
        Assert.Equal(448f, Enumerable.Range(0, 256).Select(b => Safetensors.Fp8E4M3ToSingle((byte)b)).Where(v => !float.IsNaN(v)).Max());
    }

    [Fact]
    public void Decode_Fp8_UsesTheTable()
    {
        var bytes = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();
        var values = new float[256];

        Safetensors.Decode(bytes, SafetensorsDtype.F8_E4M3, values);

        for (var b = 0; b < 256; b++)
        {
            Assert.Equal(Safetensors.Fp8E4M3ToSingle((byte)b), values[b]);
        }
    }

    [Fact]
    public void ReadHeader_ScalarsAndEmptyTensors_Accepted()
    {
        using var dir = new TempDirectory();
        RawSafetensors.Write(dir.File("x.safetensors"), [RawTensor.F32("s", [], [5f]), RawTensor.F32("e", [0, 3], []), RawTensor.F32("v", [2], [1f, 2f])]);

        var all = Safetensors.ReadAll(dir.File("x.safetensors"));

        Assert.Equal([5f], all["s"].Data);
        Assert.Empty(all["e"].Data);
    }

    public static TheoryData<string, string, string> BrokenHeaders => new()
    {
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", "u", "overlaps" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[2],"data_offsets":[8,4000]}}""", "u", "outside" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}""", "u", "hole" },
        { """{"t":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "t", "Q4_K" },
        { """{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "t", "needs 12 bytes" },
        { """{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "t", "shape[0]" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":["0",8]},"u":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "t", "data_offsets" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "t", "twice" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[8,16]}}""", "u", "shape[0]" },
        { """{"t":[1,2],"u":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "t", "expected an object" },
    };

    [Theory]
    [MemberData(nameof(BrokenHeaders))]
    public void ReadHeader_BrokenEntry_SafetensorsExceptionNamingFileAndTensor(string header, string tensor, string problem)
    {
        using var dir = new TempDirectory();
        var path = dir.File("x.safetensors");
        RawSafetensors.WriteHeaderAndData(path, Encoding.UTF8.GetBytes(header), new byte[16]);

        var ex = Assert.Throws<SafetensorsException>(() => Safetensors.ReadHeader(path, out _));

        Assert.StartsWith(path + ": ", ex.Message);
        Assert.Contains($"'{tensor}'", ex.Message);
        Assert.Contains(problem, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void ReadHeader_HeaderLengthBeyondTheFile_Throws()
    {
        using var dir = new TempDirectory();
        var path = dir.File("x.safetensors");
        RawSafetensors.Write(path, [RawTensor.F32("t", [2], [1f, 2f])], headerLengthOverride: 1L << 40);

        var ex = Assert.Throws<SafetensorsException>(() => Safetensors.ReadHeader(path, out _));

        Assert.Contains("header length 1099511627776 exceeds the file", ex.Message);
    }

    [Fact]
    public void ReadHeader_TruncatedData_NamesTheLastTensor()
    {
        using var dir = new TempDirectory();
        var path = dir.File("x.safetensors");
        RawSafetensors.Write(path, [RawTensor.F32("a", [2], [1f, 2f]), RawTensor.F32("b", [2], [3f, 4f])]);
        using (var file = File.OpenWrite(path))
        {
            file.SetLength(file.Length - 3);
        }

        var ex = Assert.Throws<SafetensorsException>(() => Safetensors.ReadHeader(path, out _));

        Assert.Contains("'b'", ex.Message);
    }

    [Fact]
    public void ReadHeader_PaddedData_Throws()
    {
        using var dir = new TempDirectory();
        var path = dir.File("x.safetensors");
        RawSafetensors.Write(path, [RawTensor.F32("a", [2], [1f, 2f])]);
        File.AppendAllText(path, "junk");

        var ex = Assert.Throws<SafetensorsException>(() => Safetensors.ReadHeader(path, out _));

        Assert.Contains("'a' ends at byte 8 but the data buffer holds 12", ex.Message);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "too short")]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, (byte)'[', (byte)']' }, "must be a JSON object")]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'x' }, "not valid JSON")]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, 0xC3, 0x28 }, "not valid UTF-8")]
    public void ReadHeader_NotAHeader_Throws(byte[] content, string problem)
    {
        using var dir = new TempDirectory();
        var path = dir.File("x.safetensors");
        File.WriteAllBytes(path, content);

        var ex = Assert.Throws<SafetensorsException>(() => Safetensors.ReadHeader(path, out _));

        Assert.Contains(problem, ex.Message);
    }
}
