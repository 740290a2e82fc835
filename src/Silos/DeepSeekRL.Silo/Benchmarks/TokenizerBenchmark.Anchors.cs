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
/// and merges as DeepSeek-V3's tokenizer.json (ML.Tokenizers has no tokenizer.json loader) with the file's Split
/// regexes as a CompositePreTokenizer, with its agreement with the golden ids (deepseek_v3.expected.jsonl beside the
/// corpus; HF Rust's ids where they differ from JS's); and Tiktoken cl100k_base (GPT-4)
/// as a speed anchor on the same text.
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
        var mlBpe = CreateMlBpe(tokenizerPath);
        var tiktoken = Ml.TiktokenTokenizer.CreateForEncoding("cl100k_base");

        // Warm-up and agreement with the golden ids, line by line.
        var agree = 0;
        var oursAgree = 0;
        var failed = 0;
        var mlTexts = new List<string>(texts.Count);
        for (var i = 0; i < texts.Count; i++)
        {
            var text = texts[i];
            oursAgree += adapter.EncodeToIds(text).SequenceEqual(golden[i]) ? 1 : 0;
            tiktoken.EncodeToIds(text);
            try
            {
                if (mlBpe.EncodeToIds(text).SequenceEqual(golden[i]))
                {
                    agree++;
                }

                mlTexts.Add(text);
            }
#pragma warning disable CA1031 // any exception of the anchor on a line is that line's failure, not the benchmark's
            catch (Exception)
#pragma warning restore CA1031
            {
                failed++;
            }
        }

        var adapterRates = new List<double>();
        var mlRates = new List<double>();
        var tiktokenRates = new List<double>();
        for (var r = 0; r < runs; r++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            adapterRates.Add(Rate(adapter, texts));
            mlRates.Add(Rate(mlBpe, mlTexts));
            tiktokenRates.Add(Rate(tiktoken, texts));
            Console.Error.Write('.');
        }

        Console.Error.WriteLine();
        return new Anchors(BenchReport.Median(adapterRates), oursAgree, BenchReport.Median(mlRates), agree, failed, BenchReport.Median(tiktokenRates));
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
    // added tokens as special tokens and its Split regexes (DeepSeek-V3: digits, CJK, words) as RegexPreTokenizers.
    private static Ml.BpeTokenizer CreateMlBpe(string tokenizerPath)
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
            PreTokenizer = new Ml.CompositePreTokenizer(splits, special),
        });
    }

    private sealed record Anchors(double AdapterMbPerS, int AdapterAgree, double MlBpeMbPerS, int MlBpeAgree, int MlBpeFailed, double TiktokenMbPerS)
    {
        public void AddTo(BenchReport report, int lines)
        {
            report.Add("mltok_adapter_encode_mb_per_s", AdapterMbPerS, "ours through the Microsoft.ML.Tokenizers API (DeepSeekTokenizer.EncodeToIds), warm");
            report.Add("mltok_adapter_golden_lines", AdapterAgree, $"of {lines} lines, ids equal to the golden ids");
            report.Add("mltok_bpe_encode_mb_per_s", MlBpeMbPerS, "ML.Tokenizers' BpeTokenizer, DeepSeek-V3 vocab + merges + Split regexes, lines it did not throw on");
            report.Add("mltok_bpe_golden_lines", MlBpeAgree, $"of {lines} lines, ML.Tokenizers' BpeTokenizer ids equal to the golden ids");
            report.Add("mltok_bpe_failed_lines", MlBpeFailed, "lines where ML.Tokenizers' BpeTokenizer threw (counted as failures)");
            report.Add("tiktoken_cl100k_encode_mb_per_s", TiktokenMbPerS, "ML.Tokenizers' Tiktoken cl100k_base (GPT-4 vocab), same text: a speed anchor, other ids");
        }
    }
}
