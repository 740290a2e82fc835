using System.Text;
using System.Text.Json;
using DeepSeekRL.Text;

namespace DeepSeekRL.Model.Tests.Shared;

/// <summary>Issue 19 D1: the one rule for untrusted JSON, a lone surrogate decodes to U+FFFD (src/Shared/JsonText.cs).</summary>
public sealed class JsonTextTests
{
    [Theory]
    [InlineData("""["\ud800"]""", "\uFFFD")]
    [InlineData("""["\udc00"]""", "\uFFFD")]
    [InlineData("""["\uDBFF x"]""", "\uFFFD x")]
    [InlineData("""["\udc00\ud800"]""", "\uFFFD\uFFFD")]
    [InlineData("""["\ud800\u0041"]""", "\uFFFDA")]
    [InlineData("""["\ud800\ud800\udc00"]""", "\uFFFD\U00010000")]
    [InlineData("""["\ud83d\ude00"]""", "\U0001F600")]
    [InlineData("""["ok \ud800"]""", "ok \uFFFD")]
    [InlineData("""["\\ud800"]""", "\\ud800")]
    [InlineData("""["\\\ud800"]""", "\\\uFFFD")]
    [InlineData("""["\u00e9\n"]""", "\u00e9\n")]
    public void Parse_EscapedSurrogates_LoneOnesDecodeToReplacementCharacter(string json, string expected)
    {
        using var fromText = JsonText.Parse(json);
        using var fromUtf8 = JsonText.Parse(Encoding.UTF8.GetBytes(json));

        Assert.Equal(expected, fromText.RootElement[0].GetString());
        Assert.Equal(expected, fromUtf8.RootElement[0].GetString());
    }

    [Fact]
    public void Parse_RawSurrogatesInText_LoneOnesDecodeToReplacementCharacter()
    {
        // Not theory data: xunit cannot serialize strings holding lone surrogates.
        (string Json, string Expected)[] cases =
        [
            ("[\"\ud800\"]", "\uFFFD"), ("[\"a\udc00\"]", "a\uFFFD"), ("[\"\udc00\ud800\"]", "\uFFFD\uFFFD"), ("[\"\ud83d\ude00\"]", "\U0001F600"),
            ("[\"\ud800", "[\"\uFFFD"),
        ];
        foreach (var (json, expected) in cases[..4])
        {
            using var document = JsonText.Parse(json);
            Assert.Equal(expected, document.RootElement[0].GetString());
        }

        Assert.Equal(cases[4].Expected, JsonText.ReplaceLoneSurrogates(cases[4].Json));
    }

    [Fact]
    public void Parse_EncodedSurrogateInUtf8_DecodesToReplacementCharacters()
    {
        // ED A0 80 is a surrogate encoded as UTF-8, which UTF-8 forbids; each invalid byte becomes U+FFFD.
        using var document = JsonText.Parse(new byte[] { (byte)'[', (byte)'"', (byte)'a', 0xED, 0xA0, 0x80, (byte)'"', (byte)']' });
        Assert.StartsWith("a\uFFFD", document.RootElement[0].GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(document.RootElement[0].GetString()!, c => char.IsSurrogate(c));
    }

    [Fact]
    public void Parse_LoneSurrogateInPropertyName_DecodesToReplacementCharacter()
    {
        using var document = JsonText.Parse("""{"k\ud800": 1}""");
        Assert.Equal("k\uFFFD", document.RootElement.EnumerateObject().Single().Name);
    }

    [Fact]
    public void ReplaceLoneSurrogates_CleanText_ReturnsTheSameInstance()
    {
        const string Json = """{"a": "\n\u00e9\ud83d\ude00", "b": "😀"}""";
        Assert.Same(Json, JsonText.ReplaceLoneSurrogates(Json));
        var utf8 = new ReadOnlyMemory<byte>(Encoding.UTF8.GetBytes(Json));
        Assert.True(JsonText.ReplaceLoneSurrogates(utf8).Span == utf8.Span);
    }

    [Theory]
    [InlineData("""["\ud800""", """["\ufffd""")]
    [InlineData("""["\ud8""", """["\ud8""")]
    [InlineData("""["\ud800\udc""", """["\ufffd\udc""")]
    public void ReplaceLoneSurrogates_AtTheEndOfTheText_KeepsLengthsAndLeavesBrokenEscapesToTheParser(string json, string expected)
    {
        Assert.Equal(expected, JsonText.ReplaceLoneSurrogates(json));
        Assert.ThrowsAny<JsonException>(() => JsonText.Parse(json));
    }

    [Fact]
    public async Task ParseAsync_Stream_AppliesTheSameRule()
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes("""{"content": "lone \ud800"}"""));
        using var document = await JsonText.ParseAsync(stream, default, TestContext.Current.CancellationToken);
        Assert.Equal("lone \uFFFD", document.RootElement.GetProperty("content").GetString());
    }
}
