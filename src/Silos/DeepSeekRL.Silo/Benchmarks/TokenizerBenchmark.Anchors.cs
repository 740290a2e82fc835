using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSeekRL.Tokenizers;
using Ml = Microsoft.ML.Tokenizers;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// In-process anchors of <c>bench tokenizer</c>, single thread, medians over the runs: our tokenizer through the
/// ML.Tokenizers adapter (<see cref="DeepSeekTokenizer"/>); ML.Tokenizers' own BpeTokenizer built from the same vocab
/// and merges as DeepSeek-V3's tokenizer.json (ML.Tokenizers has no tokenizer.json loader), twice: with the file's
/// Split regexes as ML.Tokenizers' own RegexPreTokenizers in a CompositePreTokenizer, and with our exact pre-tokenizer
/// (the adapter's) so that only its BPE model is measured; each with its agreement with the golden ids
/// (deepseek_v3.expected.jsonl beside the corpus; HF Rust's ids where they differ from JS's); and Tiktoken
/// cl100k_base (GPT-4) as a speed anchor on the same text.
/// </summary>
public static partial class TokenizerBenchmark
{
    private static Anchors RunAnchors(BpeTokenizer ours, string tokenizerPath, string corpus, List<string> texts, int runs, CancellationToken cancellationToken)
    {
        var golden = File.ReadAllLines(Path.Combine(Path.GetDirectoryName(corpus)!, "deepseek_v3.expected.jsonl")).Where(l => l.Length > 0).Select(l =>
        {
            using var line = JsonDocument.Parse(l);
            var ids = line.RootElement.TryGetProperty("rust_ids", out var rust) ? rust : line.RootElement.GetProperty("ids");
            return ids.EnumerateArray().Select(e => e.GetInt32()).ToArray();
        }).ToList();
        Ml.Tokenizer adapter = new DeepSeekTokenizer(ours);
        var mlBpe = CreateMlBpe(tokenizerPath, null);
        var mlBpeExact = CreateMlBpe(tokenizerPath, adapter.PreTokenizer);
        var tiktoken = Ml.TiktokenTokenizer.CreateForEncoding("cl100k_base");

        // Warm-up and agreement with the golden ids, line by line.
        var agree = 0;
        var oursAgree = 0;
        var failed = 0;
        var exactAgree = 0;
        var mlTexts = new List<string>(texts.Count);
        var exactTexts = new List<string>(texts.Count);
        for (var i = 0; i < texts.Count; i++)
        {
            var text = texts[i];
            oursAgree += adapter.EncodeToIds(text).SequenceEqual(golden[i]) ? 1 : 0;
            tiktoken.EncodeToIds(text);
            if (TryEncode(mlBpeExact, text) is { } exact)
            {
                exactAgree += exact.SequenceEqual(golden[i]) ? 1 : 0;
                exactTexts.Add(text);
            }
            if (TryEncode(mlBpe, text) is { } ids)
            {
                agree += ids.SequenceEqual(golden[i]) ? 1 : 0;
                mlTexts.Add(text);
            }
            else
            {
                failed++;
            }
        }

        var adapterRates = new List<double>();
        var mlRates = new List<double>();
        var exactRates = new List<double>();
        var tiktokenRates = new List<double>();
        for (var r = 0; r < runs; r++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            adapterRates.Add(Rate(adapter, texts));
            mlRates.Add(Rate(mlBpe, mlTexts));
            exactRates.Add(Rate(mlBpeExact, exactTexts));
            tiktokenRates.Add(Rate(tiktoken, texts));
            Console.Error.Write('.');
        }

        Console.Error.WriteLine();
        return new Anchors(BenchReport.Median(adapterRates), oursAgree, BenchReport.Median(mlRates), agree, failed,
            BenchReport.Median(exactRates), exactAgree, BenchReport.Median(tiktokenRates));
    }

    private static IReadOnlyList<int>? TryEncode(Ml.Tokenizer tokenizer, string text)
    {
        try
        {
            return tokenizer.EncodeToIds(text);
        }
#pragma warning disable CA1031 // any exception of an anchor on a line is that line's failure, not the benchmark's
        catch (Exception)
#pragma warning restore CA1031
        {
            return null;
        }
    }

    private static double Rate(Ml.Tokenizer tokenizer, List<string> texts)
    {
        long bytes = 0;
        var t0 = Stopwatch.GetTimestamp();
        foreach (var text in texts)
        {
            tokenizer.EncodeToIds(text);
        }

        var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        foreach (var text in texts)
        {
            bytes += Encoding.UTF8.GetByteCount(text);
        }

        return bytes / 1e6 / seconds;
    }

    // ML.Tokenizers' BpeTokenizer from tokenizer.json's model.vocab and model.merges, byte-level, with the file's
    // added tokens as special tokens and either the given pre-tokenizer or the file's Split regexes (DeepSeek-V3:
    // digits, CJK, words) as RegexPreTokenizers (which keep only the matches: text between matches is dropped, unlike
    // the Split "Isolated" behaviour of tokenizer.json).
    private static Ml.BpeTokenizer CreateMlBpe(string tokenizerPath, Ml.PreTokenizer? preTokenizer)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(tokenizerPath));
        var root = document.RootElement;
        var model = root.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.Array ? m[0].GetString() + " " + m[1].GetString() : m.GetString()!)
            .ToList();
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var token in root.GetProperty("added_tokens").EnumerateArray())
        {
            special.TryAdd(token.GetProperty("content").GetString()!, token.GetProperty("id").GetInt32());
        }

        var splits = new List<Ml.PreTokenizer>();
        if (root.TryGetProperty("pre_tokenizer", out var pre) && pre.TryGetProperty("pretokenizers", out var sequence))
        {
            foreach (var step in sequence.EnumerateArray())
            {
                if (step.GetProperty("type").GetString() == "Split" && step.GetProperty("pattern").TryGetProperty("Regex", out var regex))
                {
                    splits.Add(new Ml.RegexPreTokenizer(new Regex(regex.GetString()!, RegexOptions.Compiled | RegexOptions.CultureInvariant), null));
                }
            }
        }

        return Ml.BpeTokenizer.Create(new Ml.BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = special,
            PreTokenizer = new Ml.CompositePreTokenizer(preTokenizer is null ? splits : [preTokenizer], special),
        });
    }

    private sealed record Anchors(
        double AdapterMbPerS, int AdapterAgree, double MlBpeMbPerS, int MlBpeAgree, int MlBpeFailed, double MlBpeExactMbPerS, int MlBpeExactAgree,
        double TiktokenMbPerS)
    {
        public void AddTo(BenchReport report, int lines)
        {
            report.Add("mltok_adapter_encode_mb_per_s", AdapterMbPerS, "ours through the Microsoft.ML.Tokenizers API (DeepSeekTokenizer.EncodeToIds), warm");
            report.Add("mltok_adapter_golden_lines", AdapterAgree, $"of {lines} lines, ids equal to the golden ids");
            report.Add("mltok_bpe_encode_mb_per_s", MlBpeMbPerS, "ML.Tokenizers' BpeTokenizer, DeepSeek-V3 vocab + merges + Split regexes, lines it did not throw on");
            report.Add("mltok_bpe_golden_lines", MlBpeAgree, $"of {lines} lines, ML.Tokenizers' BpeTokenizer ids equal to the golden ids");
            report.Add("mltok_bpe_failed_lines", MlBpeFailed, "lines where ML.Tokenizers' BpeTokenizer threw (counted as failures)");
            report.Add("mltok_bpe_exact_pre_encode_mb_per_s", MlBpeExactMbPerS, "ML.Tokenizers' BpeTokenizer, same vocab + merges, our exact pre-tokenizer (its BPE model alone), lines it did not throw on");
            report.Add("mltok_bpe_exact_pre_golden_lines", MlBpeExactAgree, $"of {lines} lines, ids equal to the golden ids");
            report.Add("tiktoken_cl100k_encode_mb_per_s", TiktokenMbPerS, "ML.Tokenizers' Tiktoken cl100k_base (GPT-4 vocab), same text: a speed anchor, other ids");
        }
    }
}
