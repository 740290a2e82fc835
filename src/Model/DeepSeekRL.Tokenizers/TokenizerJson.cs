using System.Globalization;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Text;

namespace DeepSeekRL.Tokenizers;

/// <summary>
/// Reads and writes Hugging Face tokenizer.json files for byte-level BPE. Supported: model <c>BPE</c> (merges as
/// <c>"a b"</c> strings or <c>["a", "b"]</c> pairs, <c>ignore_merges</c>), added tokens, normalizers <c>null</c>,
/// <c>Sequence</c> (DeepSeek-V3's is empty), and the Unicode normal forms where ICU is loaded (not in this
/// InvariantGlobalization build, so they are refused), pre-tokenizers <c>ByteLevel</c>, <c>Split</c>
/// (all behaviours, <c>invert</c>) and <c>Sequence</c>, decoder <c>ByteLevel</c>. Anything else is a
/// <see cref="TokenizerFormatException"/> naming the file and the JSON path, never a silent fallback.
/// </summary>
public static class TokenizerJson
{
    /// <summary>The largest file read by default: 512 MiB (DeepSeek-V3's is 7.5 MiB).</summary>
    public const long DefaultMaxBytes = 512L << 20;

    /// <summary>Loads a tokenizer.json file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="maxBytes">The largest file accepted.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="TokenizerFormatException">The file is missing, too large, not JSON or not supported.</exception>
    public static BpeTokenizer Load(string path, long maxBytes = DefaultMaxBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new TokenizerFormatException(path, "$", "file not found");
        }

        if (info.Length > maxBytes)
        {
            throw new TokenizerFormatException(path, "$", $"file is {info.Length} bytes, more than the limit of {maxBytes} bytes");
        }

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException ex)
        {
            throw new TokenizerFormatException(path, "$", "cannot read: " + ex.Message, ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new TokenizerFormatException(path, "$", "cannot read: " + ex.Message, ex);
        }

        return Parse(bytes, path);
    }

    /// <summary>Parses tokenizer.json content.</summary>
    /// <param name="utf8Json">The JSON.</param>
    /// <param name="source">The name used in error messages.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="TokenizerFormatException">The JSON is invalid or not supported.</exception>
    public static BpeTokenizer Parse(ReadOnlySpan<byte> utf8Json, string source)
    {
        JsonDocument document;
        try
        {
            document = JsonText.Parse(utf8Json.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException ex)
        {
            var where = ex.LineNumber is { } line ? $" at line {line + 1}, byte {ex.BytePositionInLine + 1}" : string.Empty;
            throw new TokenizerFormatException(source, "$", "invalid JSON" + where + ": " + ex.Message.Split(" Path:", 2)[0].Split(" LineNumber", 2)[0], ex);
        }

        using (document)
        {
            return new Reader(source).Read(document.RootElement);
        }
    }

    /// <summary>Writes a byte-level BPE tokenizer.json that Hugging Face tokenizers and transformers.js load.</summary>
    /// <param name="stream">The destination.</param>
    /// <param name="vocab">Token to id, the tokens being byte-level strings.</param>
    /// <param name="merges">The merges in rank order.</param>
    /// <param name="addedTokens">The added tokens.</param>
    /// <param name="preTokenizer">The pre-tokenizer JSON, written as is.</param>
    public static void Write(Stream stream, IReadOnlyList<KeyValuePair<string, int>> vocab, IReadOnlyList<(string Left, string Right)> merges, IReadOnlyList<AddedToken> addedTokens, JsonElement preTokenizer)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(vocab);
        ArgumentNullException.ThrowIfNull(merges);
        ArgumentNullException.ThrowIfNull(addedTokens);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        foreach (var t in addedTokens)
        {
            w.WriteStartObject();
            w.WriteNumber("id", t.Id);
            w.WriteString("content", t.Content);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", t.LStrip);
            w.WriteBoolean("rstrip", t.RStrip);
            w.WriteBoolean("normalized", t.Normalized);
            w.WriteBoolean("special", t.Special);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteNull("normalizer");
        w.WritePropertyName("pre_tokenizer");
        preTokenizer.WriteTo(w);
        w.WriteStartObject("post_processor");
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", false);
        w.WriteBoolean("use_regex", true);
        w.WriteEndObject();
        w.WriteStartObject("decoder");
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", true);
        w.WriteBoolean("use_regex", true);
        w.WriteEndObject();
        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteNull("unk_token");
        w.WriteNull("continuing_subword_prefix");
        w.WriteNull("end_of_word_suffix");
        w.WriteBoolean("fuse_unk", false);
        w.WriteBoolean("byte_fallback", false);
        w.WriteBoolean("ignore_merges", false);
        w.WriteStartObject("vocab");
        foreach (var (token, id) in vocab)
        {
            w.WriteNumber(token, id);
        }

        w.WriteEndObject();
        w.WriteStartArray("merges");
        foreach (var (left, right) in merges)
        {
            w.WriteStartArray();
            w.WriteStringValue(left);
            w.WriteStringValue(right);
            w.WriteEndArray();
        }

        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>Reads a pre-tokenizer JSON object (as in tokenizer.json's <c>pre_tokenizer</c>).</summary>
    internal static PreTokenizer ReadPreTokenizer(JsonElement element) =>
        new Reader("(pre-tokenizer)").ReadPreTokenizer(element, "$.pre_tokenizer", top: false)!;

    private sealed class Reader(string source)
    {
        public BpeTokenizer Read(JsonElement root)
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Fail("$", $"expected an object, got {root.ValueKind}");
            }

            foreach (var name in (string[])["truncation", "padding"])
            {
                if (root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null)
                {
                    throw Fail("$." + name, "not supported (must be null): encode never truncates or pads");
                }
            }

            if (!root.TryGetProperty("model", out var model))
            {
                throw Fail("$.model", "missing");
            }

            var (vocab, mergeIds, ignoreMerges) = ReadModel(model);
            var added = ReadAddedTokens(root, vocab);
            CheckIdBound(vocab, added);
            var bpe = new BpeModel(vocab, mergeIds, ignoreMerges);
            var normalizer = root.TryGetProperty("normalizer", out var n) ? ReadNormalizer(n, "$.normalizer") : Normalizer.Identity;
            var preTokenizer = root.TryGetProperty("pre_tokenizer", out var p) ? ReadPreTokenizer(p, "$.pre_tokenizer", top: true) : null;
            if (root.TryGetProperty("post_processor", out var post))
            {
                CheckPostProcessor(post, "$.post_processor");
            }

            if (!root.TryGetProperty("decoder", out var decoder) || decoder.ValueKind == JsonValueKind.Null)
            {
                throw Fail("$.decoder", "missing: byte-level BPE needs the ByteLevel decoder");
            }

            var decoderType = TypeOf(decoder, "$.decoder");
            if (decoderType != "ByteLevel")
            {
                throw Fail("$.decoder.type", $"decoder \"{decoderType}\" is not supported (ByteLevel is)");
            }

            var missing = bpe.MissingBytes.ToList();
            if (missing.Count > 0)
            {
                throw Fail("$.model.vocab", $"byte-level BPE needs a token for each of the 256 bytes; {missing.Count} are missing (first: byte 0x{missing[0]:X2}, token \"{ByteLevel.ByteToChar((byte)missing[0])}\")");
            }

            return new BpeTokenizer(bpe, added, normalizer, preTokenizer);
        }

        private (Dictionary<string, int> Vocab, List<(int, int, int)> Merges, bool IgnoreMerges) ReadModel(JsonElement model)
        {
            const string path = "$.model";
            if (model.ValueKind != JsonValueKind.Object)
            {
                throw Fail(path, $"expected an object, got {model.ValueKind}");
            }

            var type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (type != "BPE")
            {
                throw Fail(path + ".type", $"model \"{type ?? "(none)"}\" is not supported (BPE is)");
            }

            if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
            {
                throw Fail(path + ".dropout", "BPE dropout is not supported (encoding must be deterministic)");
            }

            foreach (var name in (string[])["continuing_subword_prefix", "end_of_word_suffix"])
            {
                if (model.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()!.Length > 0)
                {
                    throw Fail($"{path}.{name}", "not supported by byte-level BPE");
                }
            }

            if (model.TryGetProperty("byte_fallback", out var fallback) && fallback.ValueKind == JsonValueKind.True)
            {
                throw Fail(path + ".byte_fallback", "byte fallback (SentencePiece-style BPE) is not supported");
            }

            var ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
            if (!model.TryGetProperty("vocab", out var vocabElement) || vocabElement.ValueKind != JsonValueKind.Object)
            {
                throw Fail(path + ".vocab", "missing or not an object");
            }

            var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
            var owners = new Dictionary<int, string>();
            foreach (var property in vocabElement.EnumerateObject())
            {
                var here = $"{path}.vocab[{Quote(property.Name)}]";
                if (property.Value.ValueKind != JsonValueKind.Number || !property.Value.TryGetInt32(out var id) || id < 0)
                {
                    throw Fail(here, $"expected a non-negative integer id, got {property.Value.GetRawText()}");
                }

                if (!vocab.TryAdd(property.Name, id))
                {
                    throw Fail(here, "token appears twice in the vocabulary");
                }

                if (!owners.TryAdd(id, property.Name))
                {
                    throw Fail(here, $"duplicate id {id} (also used by {Quote(owners[id])})");
                }
            }

            if (!model.TryGetProperty("merges", out var mergesElement) || mergesElement.ValueKind != JsonValueKind.Array)
            {
                throw Fail(path + ".merges", "missing or not an array");
            }

            var merges = new List<(int, int, int)>(mergesElement.GetArrayLength());
            var index = 0;
            var buffer = new StringBuilder();
            foreach (var merge in mergesElement.EnumerateArray())
            {
                var here = $"{path}.merges[{index}]";
                string left, right;
                if (merge.ValueKind == JsonValueKind.String)
                {
                    var s = merge.GetString()!;
                    var space = s.IndexOf(' ', StringComparison.Ordinal);
                    if (space < 0 || s.IndexOf(' ', space + 1) >= 0)
                    {
                        throw Fail(here, $"expected \"left right\" (one space), got {Quote(s)}");
                    }

                    left = s[..space];
                    right = s[(space + 1)..];
                }
                else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                    && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
                {
                    left = merge[0].GetString()!;
                    right = merge[1].GetString()!;
                }
                else
                {
                    throw Fail(here, $"expected \"left right\" or [\"left\", \"right\"], got {merge.GetRawText()}");
                }

                if (!vocab.TryGetValue(left, out var l))
                {
                    throw Fail(here, $"unknown token {Quote(left)} (not in $.model.vocab)");
                }

                if (!vocab.TryGetValue(right, out var r))
                {
                    throw Fail(here, $"unknown token {Quote(right)} (not in $.model.vocab)");
                }

                buffer.Clear().Append(left).Append(right);
                var mergedText = buffer.ToString();
                if (!vocab.TryGetValue(mergedText, out var m))
                {
                    throw Fail(here, $"the merged token {Quote(mergedText)} is not in $.model.vocab");
                }

                merges.Add((l, r, m));
                index++;
            }

            return (vocab, merges, ignoreMerges);
        }

        /// <summary>
        /// Ids index tables (<see cref="BpeModel"/>'s and <see cref="BpeTokenizer"/>'s) sized by the largest id, so a
        /// lying id (2147483647, or 200000000 in a 37 KB file) must be refused before anything is allocated. Ids may
        /// leave gaps, but every id must be below twice the number of tokens the file defines (vocabulary entries plus
        /// added tokens that are not in it): the tables then stay proportional to the file.
        /// </summary>
        private void CheckIdBound(Dictionary<string, int> vocab, List<AddedToken> added)
        {
            long tokens = vocab.Count;
            foreach (var token in added)
            {
                if (!vocab.ContainsKey(token.Content))
                {
                    tokens++;
                }
            }

            var limit = 2 * tokens;
            var expected = $"expected an id below {limit} (twice the {tokens} tokens this file defines)";
            foreach (var (token, id) in vocab)
            {
                if (id >= limit)
                {
                    throw Fail($"$.model.vocab[{Quote(token)}]", $"id {id} is out of range; {expected}");
                }
            }

            for (var i = 0; i < added.Count; i++)
            {
                if (added[i].Id >= limit)
                {
                    throw Fail($"$.added_tokens[{i}].id", $"id {added[i].Id} for {Quote(added[i].Content)} is out of range; {expected}");
                }
            }
        }

        private List<AddedToken> ReadAddedTokens(JsonElement root, Dictionary<string, int> vocab)
        {
            var result = new List<AddedToken>();
            if (!root.TryGetProperty("added_tokens", out var array) || array.ValueKind == JsonValueKind.Null)
            {
                return result;
            }

            if (array.ValueKind != JsonValueKind.Array)
            {
                throw Fail("$.added_tokens", "expected an array");
            }

            var index = 0;
            var ids = new Dictionary<int, string>();
            foreach (var item in array.EnumerateArray())
            {
                var here = $"$.added_tokens[{index++}]";
                if (item.ValueKind != JsonValueKind.Object)
                {
                    throw Fail(here, "expected an object");
                }

                if (!item.TryGetProperty("id", out var idElement) || idElement.ValueKind != JsonValueKind.Number || !idElement.TryGetInt32(out var id) || id < 0)
                {
                    throw Fail(here + ".id", "missing or not a non-negative integer");
                }

                if (!item.TryGetProperty("content", out var contentElement) || contentElement.ValueKind != JsonValueKind.String || contentElement.GetString()!.Length == 0)
                {
                    throw Fail(here + ".content", "missing, empty or not a string");
                }

                var content = contentElement.GetString()!;
                if (Flag(item, "single_word", here))
                {
                    throw Fail(here + ".single_word", "single_word added tokens are not supported");
                }

                if (!ids.TryAdd(id, content) && ids[id] != content)
                {
                    throw Fail(here + ".id", $"duplicate id {id} (also used by {Quote(ids[id])})");
                }

                if (vocab.TryGetValue(content, out var vocabId) && vocabId != id)
                {
                    throw Fail(here + ".id", $"id {id} differs from the vocabulary's id {vocabId} for {Quote(content)}");
                }

                result.Add(new AddedToken(id, content, Flag(item, "special", here), Flag(item, "lstrip", here), Flag(item, "rstrip", here), Flag(item, "normalized", here)));
            }

            return result;
        }

        private bool Flag(JsonElement item, string name, string here) =>
            !item.TryGetProperty(name, out var v) ? false : v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False or JsonValueKind.Null => false,
                _ => throw Fail($"{here}.{name}", "expected true or false"),
            };

        private Normalizer ReadNormalizer(JsonElement element, string path)
        {
            if (element.ValueKind == JsonValueKind.Null)
            {
                return Normalizer.Identity;
            }

            var forms = new List<NormalizationForm>();
            Collect(element, path, forms);
            return forms.Count == 0 ? Normalizer.Identity : new Normalizer(forms);
        }

        private void Collect(JsonElement element, string path, List<NormalizationForm> forms)
        {
            var type = TypeOf(element, path);
            switch (type)
            {
                case "Sequence":
                    if (!element.TryGetProperty("normalizers", out var list) || list.ValueKind != JsonValueKind.Array)
                    {
                        throw Fail(path + ".normalizers", "missing or not an array");
                    }

                    var i = 0;
                    foreach (var item in list.EnumerateArray())
                    {
                        Collect(item, $"{path}.normalizers[{i++}]", forms);
                    }

                    break;
                case "NFC" or "NFD" or "NFKC" or "NFKD":
                    // Unicode normalization needs ICU, which this InvariantGlobalization build does not load:
                    // string.Normalize would silently change nothing, so refuse rather than encode differently.
                    var form = type switch { "NFC" => NormalizationForm.FormC, "NFD" => NormalizationForm.FormD, "NFKC" => NormalizationForm.FormKC, _ => NormalizationForm.FormKD };
                    if (!NormalizationWorks(form))
                    {
                        throw Fail(path + ".type", $"normalizer \"{type}\" needs ICU, which this process does not load (InvariantGlobalization)");
                    }

                    forms.Add(form);
                    break;
                default:
                    throw Fail(path + ".type", $"normalizer \"{type}\" is not supported (Sequence, NFC, NFD, NFKC, NFKD are)");
            }
        }

        public PreTokenizer? ReadPreTokenizer(JsonElement element, string path, bool top)
        {
            if (element.ValueKind == JsonValueKind.Null && top)
            {
                return null;
            }

            var type = TypeOf(element, path);
            switch (type)
            {
                case "Sequence":
                    if (!element.TryGetProperty("pretokenizers", out var list) || list.ValueKind != JsonValueKind.Array)
                    {
                        throw Fail(path + ".pretokenizers", "missing or not an array");
                    }

                    var steps = new List<PreTokenizer>();
                    var count = list.GetArrayLength();
                    var i = 0;
                    foreach (var item in list.EnumerateArray())
                    {
                        var here = $"{path}.pretokenizers[{i}]";
                        var step = ReadPreTokenizer(item, here, top: false)!;
                        // After ByteLevel the pieces are byte-level strings; a later Split would see those, which we do not model.
                        if (step is ByteLevelPreTokenizer && i != count - 1)
                        {
                            throw Fail(here, "a ByteLevel pre-tokenizer must be the last of a Sequence here");
                        }

                        steps.Add(step);
                        i++;
                    }

                    return new SequencePreTokenizer(steps);
                case "ByteLevel":
                    return new ByteLevelPreTokenizer(Bool(element, "add_prefix_space", path, true), Bool(element, "use_regex", path, true));
                case "Split":
                    return ReadSplit(element, path);
                default:
                    throw Fail(path + ".type", $"pre-tokenizer \"{type}\" is not supported (Sequence, Split, ByteLevel are)");
            }
        }

        private SplitPreTokenizer ReadSplit(JsonElement element, string path)
        {
            if (!element.TryGetProperty("pattern", out var pattern) || pattern.ValueKind != JsonValueKind.Object)
            {
                throw Fail(path + ".pattern", "missing or not an object");
            }

            string text;
            bool isRegex;
            if (pattern.TryGetProperty("Regex", out var regex) && regex.ValueKind == JsonValueKind.String)
            {
                text = regex.GetString()!;
                isRegex = true;
            }
            else if (pattern.TryGetProperty("String", out var literal) && literal.ValueKind == JsonValueKind.String)
            {
                text = literal.GetString()!;
                isRegex = false;
            }
            else
            {
                throw Fail(path + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
            }

            var behaviorName = element.TryGetProperty("behavior", out var b) && b.ValueKind == JsonValueKind.String ? b.GetString()! : "(missing)";
            if (!Enum.TryParse<SplitBehavior>(behaviorName, ignoreCase: false, out var behavior) || !Enum.IsDefined(behavior) || char.IsDigit(behaviorName[0]))
            {
                throw Fail(path + ".behavior", $"unknown behavior \"{behaviorName}\" (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
            }

            try
            {
                return new SplitPreTokenizer(text, isRegex, behavior, Bool(element, "invert", path, false));
            }
            catch (ArgumentException ex)
            {
                throw Fail(path + ".pattern.Regex", "invalid regex: " + ex.Message, ex);
            }
        }

        private void CheckPostProcessor(JsonElement element, string path)
        {
            if (element.ValueKind == JsonValueKind.Null)
            {
                return;
            }

            // Post-processors only add special tokens and offsets; encode adds no special tokens, so they are not applied.
            var type = TypeOf(element, path);
            if (type is not ("ByteLevel" or "TemplateProcessing" or "RobertaProcessing" or "BertProcessing" or "Sequence"))
            {
                throw Fail(path + ".type", $"post-processor \"{type}\" is not supported");
            }
        }

        private bool Bool(JsonElement element, string name, string path, bool defaultValue) =>
            !element.TryGetProperty(name, out var v) ? defaultValue : v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Fail($"{path}.{name}", "expected true or false"),
            };

        private string TypeOf(JsonElement element, string path)
        {
            if (element.ValueKind != JsonValueKind.Object)
            {
                throw Fail(path, $"expected an object, got {element.ValueKind}");
            }

            return element.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : throw Fail(path + ".type", "missing");
        }

        private TokenizerFormatException Fail(string path, string problem, Exception? inner = null) =>
            inner is null ? new TokenizerFormatException(source, path, problem) : new TokenizerFormatException(source, path, problem, inner);
    }

    private static bool NormalizationWorks(NormalizationForm form)
    {
        try
        {
            return form switch
            {
                NormalizationForm.FormC or NormalizationForm.FormKC => "e\u0301".Normalize(form) == "\u00e9",
                _ => "\u00e9".Normalize(form) == "e\u0301",
            };
        }
        catch (PlatformNotSupportedException)
        {
            return false;
        }
    }

    private static string Quote(string s)
    {
        var shown = s.Length > 60 ? s[..60] + "…" : s;
        return JsonSerializer.Serialize(shown, QuoteOptions);
    }

    private static readonly JsonSerializerOptions QuoteOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    internal static string FormatInvariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
