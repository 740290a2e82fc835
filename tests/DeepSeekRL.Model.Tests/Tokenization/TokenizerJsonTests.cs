using DeepSeekRL.Model.Tokenization;

namespace DeepSeekRL.Model.Tests.Tokenization;

public sealed class TokenizerJsonTests
{
    // A minimal valid byte-level BPE: the 256 byte tokens, "ab" and "abc", and an added special token.
    internal static string Minimal(string merges = "[\"a b\", [\"ab\", \"c\"]]", string extraVocab = "", string addedTokens = "[{\"id\": 300, \"content\": \"<s>\", \"special\": true}]", string preTokenizer = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}", string normalizer = "null")
    {
        var vocab = string.Join(", ", Enumerable.Range(0, 256).Select(b => $"{System.Text.Json.JsonSerializer.Serialize(ByteLevel.ByteToChar((byte)b).ToString())}: {b}"));
        return "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": " + addedTokens
            + ", \"normalizer\": " + normalizer + ", \"pre_tokenizer\": " + preTokenizer
            + ", \"post_processor\": null, \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {"
            + vocab + ", \"ab\": 256, \"abc\": 257" + extraVocab + "}, \"merges\": " + merges + "}}";
    }

    private static TokenizerFormatException LoadFails(string json, string name = "bad.json")
    {
        var path = TestData.WriteTemp(name, json);
        return Assert.Throws<TokenizerFormatException>(() => TokenizerJson.Load(path));
    }

    [Fact]
    public void Load_DeepSeekV3_HasItsVocabularyAndSpecialTokens()
    {
        var tok = TestData.DeepSeekV3;
        Assert.Equal(128815, tok.VocabSize);
        Assert.Equal(0, tok.TokenToId("<｜begin▁of▁sentence｜>"));
        Assert.Equal(128803, tok.TokenToId("<｜User｜>"));
        Assert.Equal(127741, tok.Model.Merges.Count);
    }

    [Fact]
    public void Load_BothMergeEncodings_AreAccepted()
    {
        var path = TestData.WriteTemp("both.json", Minimal());
        var tok = TokenizerJson.Load(path);
        Assert.Equal([257, 300, 256], tok.Encode("abc<s>ab"));
    }

    [Fact]
    public void Load_MissingFile_NamesTheFile()
    {
        var ex = Assert.Throws<TokenizerFormatException>(() => TokenizerJson.Load("/nonexistent/tokenizer.json"));
        Assert.Contains("/nonexistent/tokenizer.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains("not found", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_InvalidJson_NamesFileAndPosition()
    {
        var ex = LoadFails("{\"model\": [1, 2", "invalid.json");
        Assert.Contains("invalid.json: $: invalid JSON", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MergeWithUnknownToken_NamesTheMergeIndex()
    {
        var ex = LoadFails(Minimal(merges: "[\"a b\", \"ab zz\"]"));
        Assert.Equal("$.model.merges[1]", ex.JsonPath);
        Assert.Contains("unknown token \"zz\"", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MergeWithoutMergedToken_IsRejected()
    {
        var ex = LoadFails(Minimal(merges: "[\"b c\"]"));
        Assert.Equal("$.model.merges[0]", ex.JsonPath);
        Assert.Contains("\"bc\" is not in $.model.vocab", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_DuplicateIds_NamesBothTokens()
    {
        var ex = LoadFails(Minimal(extraVocab: ", \"xyz\": 256"));
        Assert.Equal("$.model.vocab[\"xyz\"]", ex.JsonPath);
        Assert.Contains("duplicate id 256", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_FileOverTheLimit_IsRejectedBeforeReading()
    {
        var path = TestData.WriteTemp("huge.json", Minimal());
        var ex = Assert.Throws<TokenizerFormatException>(() => TokenizerJson.Load(path, maxBytes: 100));
        Assert.Contains("more than the limit of 100 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Contains("huge.json", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"type\": \"Metaspace\"}", "$.pre_tokenizer.type")]
    [InlineData("{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Sideways\"}", "$.pre_tokenizer.behavior")]
    [InlineData("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"ByteLevel\"}, {\"type\": \"Split\", \"pattern\": {\"String\": \"x\"}, \"behavior\": \"Isolated\"}]}", "$.pre_tokenizer.pretokenizers[0]")]
    public void Load_UnsupportedPreTokenizer_IsAClearError(string preTokenizer, string path)
    {
        var ex = LoadFails(Minimal(preTokenizer: preTokenizer));
        Assert.Equal(path, ex.JsonPath);
    }

    [Fact]
    public void Load_UnsupportedNormalizer_IsAClearError()
    {
        var ex = LoadFails(Minimal(normalizer: "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Lowercase\"}]}"));
        Assert.Equal("$.normalizer.normalizers[0].type", ex.JsonPath);
        Assert.Contains("\"Lowercase\" is not supported", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NfcNormalizerWithoutIcu_IsRefusedNotIgnored()
    {
        // This build runs with InvariantGlobalization, where string.Normalize cannot compose: NFC must be refused.
        var ex = LoadFails(Minimal(normalizer: "{\"type\": \"NFC\"}"));
        Assert.Equal("$.normalizer.type", ex.JsonPath);
        Assert.Contains("needs ICU", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_EmptyNormalizerSequence_IsTheIdentity()
    {
        var path = TestData.WriteTemp("seq.json", Minimal(normalizer: "{\"type\": \"Sequence\", \"normalizers\": []}"));
        Assert.True(TokenizerJson.Load(path).Normalizer.IsIdentity);
    }

    [Fact]
    public void Load_ModelNotBpe_IsAClearError()
    {
        var ex = LoadFails(Minimal().Replace("\"type\": \"BPE\"", "\"type\": \"WordPiece\"", StringComparison.Ordinal));
        Assert.Equal("$.model.type", ex.JsonPath);
    }
}
