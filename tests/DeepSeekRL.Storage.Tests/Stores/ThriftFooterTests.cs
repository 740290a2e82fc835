using System.Buffers.Binary;
using DeepSeekRL.Storage.Parquet;

namespace DeepSeekRL.Storage.Tests.Stores;

public sealed class ThriftFooterTests
{
    [Fact]
    public async Task Check_FooterWrittenByParquetNet_IsWellFormed()
    {
        using var stream = new MemoryStream();
        var field = new global::Parquet.Schema.DataField<string>("prompt");
        await using (var writer = await global::Parquet.ParquetWriter.CreateAsync(new global::Parquet.Schema.ParquetSchema(field), stream, cancellationToken: TestContext.Current.CancellationToken))
        {
            using var group = writer.CreateRowGroup();
            await group.WriteAsync(field, new string?[] { "What is 1 + 1?", "What is 2 + 2?" });
        }

        var bytes = stream.ToArray();
        var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(bytes.Length - 8));

        Assert.Null(ThriftFooter.Check(bytes.AsSpan(bytes.Length - 8 - length, length)));
    }

    [Theory]
    [InlineData(new byte[] { 0x19, 0xF3, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x00 }, "list of 2147483647 elements at byte 7 runs past the footer's end")]
    [InlineData(new byte[] { 0x18, 0x90, 0x4E, 0x41, 0x00 }, "string of 10000 bytes at byte 3 runs past the footer's end")]
    [InlineData(new byte[] { 0x1B, 0xE8, 0x07, 0x33, 0x00 }, "map at byte 3 runs past the footer's end")]
    [InlineData(new byte[] { 0x15, 0x80, 0x80 }, "integer cut short at byte 3")]
    [InlineData(new byte[] { 0x15, 0x02 }, "struct not terminated at byte 2")]
    [InlineData(new byte[] { 0x1E, 0x00 }, "unknown type 14 at byte 1")]
    [InlineData(new byte[] { 0x17, 0x01, 0x02 }, "value of 8 bytes at byte 1 runs past the footer's end")]
    [InlineData(new byte[] { }, "struct not terminated at byte 0")]
    public void Check_MalformedFooter_SaysWhatAndWhere(byte[] footer, string expected) =>
        Assert.Equal(expected, ThriftFooter.Check(footer));

    [Fact]
    public void Check_StructsNestedTooDeep_StopsAtTheLimit()
    {
        // Field 1 of type struct, ThriftFooter.MaxDepth + 1 times, then the STOPs.
        var footer = Enumerable.Repeat((byte)0x1C, ThriftFooter.MaxDepth + 1).Concat(Enumerable.Repeat((byte)0, ThriftFooter.MaxDepth + 2)).ToArray();

        Assert.StartsWith($"structs nested deeper than {ThriftFooter.MaxDepth}", ThriftFooter.Check(footer), StringComparison.Ordinal);
        Assert.Null(ThriftFooter.Check(footer.AsSpan(1, footer.Length - 2)));
    }

    [Fact]
    public void Check_RandomBytes_AlwaysReturns()
    {
        var random = new Random(7);
        for (var i = 0; i < 2000; i++)
        {
            var footer = new byte[random.Next(0, 256)];
            random.NextBytes(footer);
            _ = ThriftFooter.Check(footer);
        }
    }
}
