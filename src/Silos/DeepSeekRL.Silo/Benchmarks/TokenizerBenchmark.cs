using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// <c>bench tokenizer</c>: single-thread encode and decode MB/s (UTF-8 bytes of text) of DeepSeek-V3's tokenizer on
/// the golden corpus (tests/DeepSeekRL.Tokenizers.Tests/Data/tokenizer/corpus.jsonl), with the piece cache warm as in
/// steady use and also cold; and the JS reference (@lenml/tokenizers, run by node on the same corpus in the same
/// run) for comparison; and in-process anchors through Microsoft.ML.Tokenizers (TokenizerBenchmark.Anchors.cs).
/// Needs infra/setup.sh's .cache/npm.
/// </summary>
public static partial class TokenizerBenchmark
{
    /// <summary>Runs the benchmark and fills <paramref name="report"/>.</summary>
    /// <param name="runs">Repetitions (medians are reported).</param>
    /// <param name="report">The report.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>A task.</returns>
    public static async Task RunAsync(int runs, BenchReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        var home = FindHome();
        var corpus = Path.Combine(home, "tests", "DeepSeekRL.Tokenizers.Tests", "Data", "tokenizer", "corpus.jsonl");
        var tokenizerPath = Path.Combine(home, ".cache", "npm", "node_modules", "@lenml", "tokenizer-deepseek_v3", "models", "tokenizer.json");
        if (!File.Exists(tokenizerPath))
        {
            throw new CommandLine.CliException($"{tokenizerPath} is missing: run infra/setup.sh");
        }

        var tok = Tokenization.TokenizerCommands.Load(new FileInfo(tokenizerPath));
        var texts = File.ReadAllLines(corpus).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToList();
        var bytes = texts.Sum(t => (long)Encoding.UTF8.GetByteCount(t));
        var ids = new List<int>(1 << 16);
        var encoded = texts.Select(tok.Encode).ToList();

        // Warm-up (piece cache, and tiered JIT: a single pass still measured instrumented tier-0 code, about half the
        // speed the same encoder reached later in the run through the ML.Tokenizers adapter).
        for (var w = 0; w < 4; w++)
        {
            foreach (var text in texts)
            {
                ids.Clear();
                tok.Encode(text, ids);
            }

            tok.Model.ClearCache();
            foreach (var e in encoded)
            {
                tok.Decode(e);
            }
        }

        var encodeRates = new List<double>();
        var coldRates = new List<double>();
        var decodeRates = new List<double>();
        for (var r = 0; r < runs; r++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var t0 = Stopwatch.GetTimestamp();
            foreach (var text in texts)
            {
                ids.Clear();
                tok.Encode(text, ids);
            }

            encodeRates.Add(bytes / 1e6 / Stopwatch.GetElapsedTime(t0).TotalSeconds);

            tok.Model.ClearCache();
            t0 = Stopwatch.GetTimestamp();
            foreach (var text in texts)
            {
                ids.Clear();
                tok.Encode(text, ids);
            }

            coldRates.Add(bytes / 1e6 / Stopwatch.GetElapsedTime(t0).TotalSeconds);

            t0 = Stopwatch.GetTimestamp();
            long chars = 0;
            foreach (var e in encoded)
            {
                chars += tok.Decode(e).Length;
            }

            decodeRates.Add(bytes / 1e6 / Stopwatch.GetElapsedTime(t0).TotalSeconds);
            Console.Error.Write('.');
        }

        Console.Error.WriteLine();
        var anchors = RunAnchors(tok, tokenizerPath, corpus, texts, runs, cancellationToken);
        var js = await RunNodeAsync(home, corpus, runs, cancellationToken);
        var encode = BenchReport.Median(encodeRates);
        report.Add("encode_mb_per_s", encode, $"one thread, piece cache warm, {texts.Count} golden lines, {bytes / 1e6:0.00} MB (target >= 10)");
        report.Add("encode_cold_mb_per_s", BenchReport.Median(coldRates), "one thread, piece cache cleared before each pass");
        report.Add("decode_mb_per_s", BenchReport.Median(decodeRates), "one thread, MB of decoded UTF-8 text per second");
        report.Add("js_encode_mb_per_s", js, "@lenml/tokenizers on node, same corpus, same run (warm)");
        report.Add("speedup_vs_js", js > 0 ? encode / js : 0, "encode_mb_per_s / js_encode_mb_per_s (target >= 5)");
        anchors.AddTo(report, texts.Count);
    }

    private static async Task<double> RunNodeAsync(string home, string corpus, int runs, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(home, "infra", "tokenizer", "bench.js"));
        start.ArgumentList.Add(corpus);
        start.ArgumentList.Add(runs.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new CommandLine.CliException("bench tokenizer: cannot start node");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new CommandLine.CliException("bench tokenizer: node is not available (" + ex.Message + "); run infra/setup.sh");
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            if (process.ExitCode != 0)
            {
                throw new CommandLine.CliException("bench tokenizer: node bench.js failed: " + (await stderr).Trim().Split('\n')[^1]);
            }

            using var document = JsonDocument.Parse(await stdout);
            return document.RootElement.GetProperty("encode_mb_per_s").GetDouble();
        }
    }

    private static string FindHome()
    {
        var env = Environment.GetEnvironmentVariable("DEEPSEEKRL_HOME");
        if (!string.IsNullOrEmpty(env) && File.Exists(Path.Combine(env, "DeepSeekRL.sln")))
        {
            return env;
        }

        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DeepSeekRL.sln")))
            {
                return dir.FullName;
            }
        }

        throw new CommandLine.CliException("bench tokenizer: cannot find the DeepSeekRL checkout (set DEEPSEEKRL_HOME)");
    }
}
