using System.Text;

namespace DeepSeekRL.Tokenizers.Tests;

public sealed class BpeTokenizerTests
{
    // Lines where @lenml/tokenizers (node's ICU, Unicode 17) and HF's Rust tokenizers disagree carry "rust_ids". We
    // follow Rust: the only cause allowed is a code point that is unassigned in .NET's (and Oniguruma's) Unicode
    // tables but assigned, as a symbol, by node's newer ICU.
    [Fact]
    public void Encode_GoldenCorpus_MatchesReferenceIdsOnEveryLine()
    {
        var texts = TestData.CorpusTexts();
        var golden = TestData.Golden("deepseek_v3.expected.jsonl");
        var expected = golden.Select(g => g.RustIds ?? g.Ids).ToList();
        for (var i = 0; i < golden.Count; i++)
        {
            if (golden[i].RustIds is not null)
            {
                Assert.True(HasUnassignedCodePoint(texts[i]), $"line {i + 1}: JS and Rust disagree but the text has no code point unassigned in .NET's Unicode tables");
            }
        }

        Assert.True(golden.Count(g => g.RustIds is not null) <= 3, "more JS/Rust disagreements than the 3 known Unicode 17 lines");
        Assert.Equal(texts.Count, expected.Count);
        Assert.True(texts.Count >= 2000, $"corpus has {texts.Count} lines");
        var tok = TestData.DeepSeekV3;
        var failures = new StringBuilder();
        var bad = 0;
        for (var i = 0; i < texts.Count; i++)
        {
            var ids = tok.Encode(texts[i]);
            if (!ids.AsSpan().SequenceEqual(expected[i]))
            {
                bad++;
                if (bad <= 5)
                {
                    var first = 0;
                    while (first < ids.Length && first < expected[i].Length && ids[first] == expected[i][first])
                    {
                        first++;
                    }

                    failures.AppendLine($"line {i + 1}: first difference at id index {first}: got [{string.Join(",", ids.Skip(first).Take(8))}] expected [{string.Join(",", expected[i].Skip(first).Take(8))}] text {System.Text.Json.JsonSerializer.Serialize(texts[i])[..Math.Min(160, System.Text.Json.JsonSerializer.Serialize(texts[i]).Length)]}");
                }
            }
        }

        Assert.True(bad == 0, $"{texts.Count - bad}/{texts.Count} lines identical\n{failures}");
    }

    private static bool HasUnassignedCodePoint(string text)
    {
        foreach (var rune in text.EnumerateRunes())
        {
            if (Rune.GetUnicodeCategory(rune) == System.Globalization.UnicodeCategory.OtherNotAssigned)
            {
                return true;
            }
        }

        return false;
    }

    [Fact]
    public void Decode_GoldenCorpus_RoundTripsEveryLine()
    {
        var tok = TestData.DeepSeekV3;
        foreach (var text in TestData.CorpusTexts())
        {
            Assert.Equal(text, tok.Decode(tok.Encode(text)));
        }
    }

    [Fact]
    public void Encode_SpecialTokenStrings_BecomeTheirIdsWithoutBos()
    {
        var tok = TestData.DeepSeekV3;
        var ids = tok.Encode("<｜User｜>hi<｜Assistant｜>");
        Assert.Equal(128803, ids[0]);
        Assert.Equal(128804, ids[^1]);
        Assert.DoesNotContain(0, ids);
    }

    [Fact]
    public void Encode_LoneSurrogates_BecomeReplacementCharacter()
    {
        var tok = TestData.DeepSeekV3;
        Assert.Equal(tok.Encode("a\uFFFDb"), tok.Encode("a\uD800b"));
        Assert.Equal(tok.Encode("\uFFFD\uFFFD"), tok.Encode("\uDC00\uD83D"));
        Assert.Equal("x\uFFFDy", tok.Decode(tok.Encode("x\uDFFFy")));
        Assert.Equal("😀", tok.Decode(tok.Encode("😀")));
    }

    [Fact]
    public void ReplaceLoneSurrogates_ValidText_ReturnsSameInstance()
    {
        const string text = "valid 😀 text";
        Assert.Same(text, BpeTokenizer.ReplaceLoneSurrogates(text));
    }

    [Fact]
    public void Decode_SkipSpecialTokens_LeavesThemOut()
    {
        var tok = TestData.DeepSeekV3;
        Assert.Equal("hi", tok.Decode(tok.Encode("<｜begin▁of▁sentence｜>hi<｜end▁of▁sentence｜>"), skipSpecialTokens: true));
    }

    [Fact]
    public void Decode_UnknownId_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TestData.DeepSeekV3.Decode([5, 999_999]));
    }

    [Fact]
    public void Decode_RandomStrings_RoundTrip()
    {
        var tok = TestData.DeepSeekV3;
        var random = new Random(99);
        for (var i = 0; i < 300; i++)
        {
            var chars = new System.Text.StringBuilder();
            for (var k = random.Next(1, 60); k > 0; k--)
            {
                var cp = random.Next(4) switch
                {
                    0 => random.Next(0x20, 0x7F),
                    1 => random.Next(0x0, 0x3000),
                    2 => random.Next(0x1F300, 0x1FAFF),
                    _ => random.Next(0xAC00, 0xD7A3),
                };
                chars.Append(char.ConvertFromUtf32(cp is >= 0xD800 and <= 0xDFFF ? 0x41 : cp));
            }

            var text = chars.ToString();
            Assert.Equal(text, tok.Decode(tok.Encode(text)));
        }
    }

    [Fact]
    public void Encode_WarmCache_AllocatesNothing()
    {
        // A tokenizer of its own, so no test running in parallel shares (or fills) its piece cache.
        var tok = TokenizerJson.Load(TestData.DeepSeekV3Path());
        var text = string.Join("\n", TestData.CorpusTexts());
        var ids = new List<int>(3 * text.Length); // room for every id: no growth while measuring
        tok.Encode(text, ids);
        var expected = ids.ToArray();

        // The fewest bytes over a few passes, under a small bound: the runtime itself allocates a little on this
        // thread while tiered JIT promotes the loops (96 bytes per pass, then 0, seen here), while one allocation
        // per token would be megabytes in every pass.
        var allocated = long.MaxValue;
        for (var pass = 0; pass < 3; pass++)
        {
            ids.Clear();
            var before = GC.GetAllocatedBytesForCurrentThread();
            tok.Encode(text, ids);
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.Equal(expected, ids);
        }

        Assert.True(allocated < 4096, $"encoding {text.Length} chars with a warm cache allocated {allocated} bytes");
    }

    [Fact]
    public void Encode_ColdCache_MatchesWarmCache()
    {
        // Every piece of the corpus through the merge loop (not the cache) gives the same ids as the cached pass.
        var tok = TokenizerJson.Load(TestData.DeepSeekV3Path());
        var texts = TestData.CorpusTexts();
        var warm = texts.Select(tok.Encode).ToList();
        for (var i = 0; i < texts.Count; i++)
        {
            tok.Model.ClearCache();
            Assert.Equal(warm[i], tok.Encode(texts[i]));
        }
    }
}
