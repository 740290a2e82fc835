namespace DeepSeekRL.Tokenizers.Tests;

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
    // Issue 19 D3: ids index tables, so a lying id must be refused, naming file, token and id, before any allocation.
    [Theory]
    [InlineData(2147483647)]
    [InlineData(200000000)]
    [InlineData(520)]
    public void Load_D3LyingVocabId_IsRefusedBeforeAllocating(int id)
    {
        var path = TestData.WriteTemp("lying.json", Minimal(extraVocab: $", \"xyz\": {id}"));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<TokenizerFormatException>(() => TokenizerJson.Load(path));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal($"{path}: $.model.vocab[\"xyz\"]: id {id} is out of range; expected an id below 520 (twice the 260 tokens this file defines)", ex.Message);
        Assert.True(allocated < 4 << 20, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Load_D3LyingAddedTokenId_IsRefused()
    {
        var ex = LoadFails(Minimal(addedTokens: "[{\"id\": 200000000, \"content\": \"<s>\", \"special\": true}]"), "added.json");
        Assert.Equal("$.added_tokens[0].id", ex.JsonPath);
        Assert.EndsWith("added.json: $.added_tokens[0].id: id 200000000 for \"<s>\" is out of range; expected an id below 518 (twice the 259 tokens this file defines)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_D3IdsWithGapsBelowTheBound_AreAccepted()
    {
        var path = TestData.WriteTemp("gaps.json", Minimal(extraVocab: ", \"xyz\": 519"));
        Assert.Equal(520, TokenizerJson.Load(path).VocabSize);
    }

    [Theory]
    [InlineData(", \"xyz\": -1", "$.model.vocab[\"xyz\"]", "expected a non-negative integer id, got -1")]
    [InlineData(", \"xyz\": 2147483648", "$.model.vocab[\"xyz\"]", "expected a non-negative integer id, got 2147483648")]
    [InlineData(", \"xyz\": \"7\"", "$.model.vocab[\"xyz\"]", "expected a non-negative integer id, got \"7\"")]
    [InlineData(", \"xyz\": 257", "$.model.vocab[\"xyz\"]", "duplicate id 257 (also used by \"abc\")")]
    public void Load_D3BadVocabIds_AreOneLineErrors(string extraVocab, string path, string problem)
    {
        var ex = LoadFails(Minimal(extraVocab: extraVocab), "ids.json");
        Assert.Equal(path, ex.JsonPath);
        Assert.EndsWith($"ids.json: {path}: {problem}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[{\"id\": -3, \"content\": \"<s>\"}]", "$.added_tokens[0].id", "missing or not a non-negative integer")]
    [InlineData("[{\"id\": \"3\", \"content\": \"<s>\"}]", "$.added_tokens[0].id", "missing or not a non-negative integer")]
    [InlineData("[{\"id\": 300, \"content\": \"<s>\"}, {\"id\": 300, \"content\": \"</s>\"}]", "$.added_tokens[1].id", "duplicate id 300 (also used by \"<s>\")")]
    public void Load_D3BadAddedTokenIds_AreOneLineErrors(string addedTokens, string path, string problem)
    {
        var ex = LoadFails(Minimal(addedTokens: addedTokens), "added.json");
        Assert.Equal(path, ex.JsonPath);
        Assert.EndsWith($"added.json: {path}: {problem}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\u0000\u0001garbage")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0")]
    [InlineData("[1, 2]")]
    [InlineData("{\"model\": {\"type\": 5}}")]
    public void Load_D3GarbageOrTruncatedFile_IsAOneLineErrorNamingTheFile(string content)
    {
        var ex = LoadFails(content, "garbage.json");
        var dir = Path.Combine(Path.GetTempPath(), "deepseekrl-tok-tests-" + Environment.ProcessId);
        Assert.Matches("^" + System.Text.RegularExpressions.Regex.Escape(dir) + "/[0-9a-f]{32}/garbage\\.json: \\$", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void Load_D1LoneSurrogateInAddedToken_DecodesToU_FFFD()
    {
        var path = TestData.WriteTemp("lone.json", Minimal(addedTokens: "[{\"id\": 300, \"content\": \"<s\\ud800>\", \"special\": true}]"));
        Assert.Equal(300, TokenizerJson.Load(path).TokenToId("<s\uFFFD>"));
    }
}
