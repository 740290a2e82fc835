using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Kernels;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Silo.Diagnostics;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// <c>bench model</c>: prefill and decode tokens/s of the native engine (absorbed vs naive KV cache), KV bytes per
/// token, peak RSS, and the same timings of a PyTorch baseline (infra/reference/bench_torch.py) on the same weights.
/// </summary>
public static partial class ModelBenchmark
{
    private const int PromptTokens = 64;
    private const int GeneratedTokens = 128;

    /// <summary>Creates <c>bench model --json FILE [--config FILE] [--threads N] [--runs N] [--backend native[,torch]] [--no-torch]</c>.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var json = new Option<FileInfo?>("--json") { Description = "Write the metrics to this JSON file." };
        var config = new Option<FileInfo?>("--config") { Description = "An HF config.json (default: examples/models/tiny.json, the tiny config of reference §15.1)." };
        var threads = new Option<int>("--threads") { Description = "Threads for both engines (default 2).", DefaultValueFactory = _ => 2 };
        var runs = new Option<int>("--runs") { Description = "Repetitions; medians are reported (default 3).", DefaultValueFactory = _ => 3 };
        var noTorch = new Option<bool>("--no-torch") { Description = "Skip the PyTorch (Python) baseline." };
        var backends = new Option<string>("--backend") { Description = "Engines to measure, comma-separated: native (default), torch (the libtorch engine, in this process).", DefaultValueFactory = _ => "native" };
        var command = new Command("model", "Model engines: prefill and decode tokens/s (absorbed vs naive cache), training tokens/s, KV bytes/token, peak RSS, the libtorch engine and the PyTorch baseline.");
        foreach (var option in new Option[] { json, config, threads, runs, noTorch, backends })
        {
            command.Options.Add(option);
        }

        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            var n = parseResult.GetValue(runs);
            var t = parseResult.GetValue(threads);
            if (n < 1 || t < 1)
            {
                throw new CliException($"--runs {n} / --threads {t}: expected positive numbers");
            }

            var list = parseResult.GetValue(backends)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (list.Length == 0 || list.Any(b => b is not ("native" or "torch")) || list[0] != "native")
            {
                throw new CliException($"--backend: '{parseResult.GetValue(backends)}' is not native or native,torch (the native engine is always measured first)");
            }

            var report = new BenchReport();
            await RunAsync(parseResult.GetValue(config)?.FullName, t, n, !parseResult.GetValue(noTorch), report, cancellationToken, libTorch: list.Contains("torch"));
            report.Write(parseResult.GetValue(json)?.FullName, $"bench model ({n} runs, medians; {t} threads; {Environment.ProcessorCount} cores)");
            return 0;
        });
        return command;
    }

    /// <summary>Runs the benchmark and fills <paramref name="report"/>.</summary>
    /// <param name="configPath">A config.json, or <see langword="null"/> for the tiny config.</param>
    /// <param name="threads">Threads for both engines.</param>
    /// <param name="runs">Repetitions.</param>
    /// <param name="torch">Whether to run the PyTorch baseline.</param>
    /// <param name="report">The report.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <param name="libTorch">Whether to measure the libtorch engine too (in this process, after the native engine).</param>
    /// <returns>A task.</returns>
    public static async Task RunAsync(string? configPath, int threads, int runs, bool torch, BenchReport report, CancellationToken cancellationToken, bool libTorch = false)
    {
        ArgumentNullException.ThrowIfNull(report);
        var load = File.Exists("/proc/loadavg") ? (await File.ReadAllTextAsync("/proc/loadavg", cancellationToken)).Split(' ')[0] : "?";
        configPath ??= Path.Combine(SiloEnvironment.Home(), "examples", "models", "tiny.json");
        var (parsed, error) = DeepSeekV3Config.Load(configPath);
        var config = parsed ?? throw new CliException("--config: " + error);

        if (config.MaxPositionEmbeddings < 512)
        {
            config = config with { MaxPositionEmbeddings = 512 }; // the b1x512 prefill needs 512 positions
        }

        var ours = new Dictionary<string, double>(StringComparer.Ordinal);
        void Add(string name, double value, string note)
        {
            ours[name] = value;
            report.Add(name, value, note);
        }

        var weights = new ModelWeights(config, ModelInit.Create(config, 1234).Data);
        var model = new Transformer(weights, new TransformerOptions { Threads = threads, MaxPositions = Math.Max(512, PromptTokens + GeneratedTokens) });
        Console.Error.WriteLine($"bench model: {weights.Data.Length:N0} parameters, OpenBLAS core {Blas.CoreName()} x{Blas.GetThreads()}, load average {load}");

        // Warm-up: tiered JIT compiles the hot library code (TensorPrimitives, loops) after ~100 ms of calls.
        var warm = Stopwatch.StartNew();
        for (var w = 0; w < 20 && warm.Elapsed.TotalSeconds < 2; w++)
        {
            Prefill(model, 16, 64, seed: w);
            Decode(model, w % 2 == 0 ? KvCacheKind.Absorbed : KvCacheKind.Naive, 4, seed: w, steps: 16);
        }

        foreach (var (b, t) in new[] { (1, 512), (16, 128) })
        {
            var rates = new List<double>();
            for (var r = 0; r <= runs; r++)
            {
                var seconds = Prefill(model, b, t, seed: r);
                if (r > 0)
                {
                    rates.Add(b * t / seconds);
                }

                cancellationToken.ThrowIfCancellationRequested();
            }

            Add($"prefill_tok_per_s_b{b}x{t}", BenchReport.Median(rates), $"{b} x {t} prompt tokens, one call, absorbed cache, last-row logits");
            Console.Error.Write('.');
        }

        long allocated = 0;
        foreach (var kind in new[] { KvCacheKind.Absorbed, KvCacheKind.Naive })
        {
            foreach (var b in new[] { 1, 16 })
            {
                var rates = new List<double>();
                for (var r = 0; r <= runs; r++)
                {
                    var (seconds, bytes) = Decode(model, kind, b, seed: 100 + r);
                    if (r > 0)
                    {
                        rates.Add(b * GeneratedTokens / seconds);
                        allocated = Math.Max(allocated, bytes);
                    }

                    cancellationToken.ThrowIfCancellationRequested();
                }

                var name = kind == KvCacheKind.Absorbed ? "absorbed" : "naive";
                Add($"decode_tok_per_s_b{b}_{name}", BenchReport.Median(rates), $"batch {b}: {PromptTokens}-token prompt, then {GeneratedTokens} greedy steps, {name} cache");
                Console.Error.Write('.');
            }
        }

        Console.Error.WriteLine();
        report.Add("decode_alloc_bytes_per_token", allocated / (16.0 * GeneratedTokens), "managed bytes allocated per decoded token (worst decode run, batch 16); target 0");
        report.Add("kv_bytes_per_token_absorbed", 4L * config.NumHiddenLayers * KvCache.EntryValues(config, KvCacheKind.Absorbed), "fp32 latent cache [c_kv | k_pe], all layers");
        report.Add("kv_bytes_per_token_naive", 4L * config.NumHiddenLayers * KvCache.EntryValues(config, KvCacheKind.Naive), "fp32 per-head K and V, all layers");
        var v3 = config with { NumAttentionHeads = 128, KvLoraRank = 512, QkRopeHeadDim = 64, QkNopeHeadDim = 128, VHeadDim = 128 };
        report.Add("kv_values_per_token_per_layer_v3_absorbed", KvCache.EntryValues(v3, KvCacheKind.Absorbed), "full DeepSeek-V3 config (expected 576)");
        report.Add("kv_values_per_token_per_layer_v3_naive", KvCache.EntryValues(v3, KvCacheKind.Naive), "full DeepSeek-V3 config (expected 40,960)");
        report.Add("peak_rss_mb", ProcessMemory.PeakRssMb(), "VmHWM of this process");
        report.Add("load_average_1m", double.Parse(load == "?" ? "0" : load, CultureInfo.InvariantCulture), "1-minute load average at the start (2 cores shared with other work)");

        RunTraining(weights, threads, report, Add, cancellationToken);

        if (libTorch)
        {
            RunLibTorch(weights, threads, runs, ours, report, cancellationToken);
        }

        if (torch)
        {
            await RunTorchAsync(weights, threads, runs, ours, report, cancellationToken);
        }
    }

    private static double Prefill(Transformer model, int b, int t, int seed)
    {
        var rng = new Random(seed);
        var cache = model.CreateCache(KvCacheKind.Absorbed, b, t);
        var n = b * t;
        var tokens = new int[n];
        var positions = new int[n];
        var slots = new int[n];
        var last = new int[b];
        for (var i = 0; i < n; i++)
        {
            (tokens[i], positions[i], slots[i]) = (rng.Next(model.Config.VocabSize), i % t, i / t);
        }

        for (var s = 0; s < b; s++)
        {
            last[s] = s * t + t - 1;
        }

        var logits = new float[b * model.Config.VocabSize];
        var start = Stopwatch.GetTimestamp();
        model.Forward(tokens, positions, slots, cache, last, logits);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static (double Seconds, long Bytes) Decode(Transformer model, KvCacheKind kind, int b, int seed, int steps = GeneratedTokens)
    {
        var v = model.Config.VocabSize;
        var cache = model.CreateCache(kind, b, PromptTokens + GeneratedTokens);
        var rng = new Random(seed);
        var n = b * PromptTokens;
        var tokens = new int[n];
        var positions = new int[n];
        var slots = new int[n];
        var rows = new int[b];
        for (var i = 0; i < n; i++)
        {
            (tokens[i], positions[i], slots[i]) = (rng.Next(v), i % PromptTokens, i / PromptTokens);
        }

        for (var s = 0; s < b; s++)
        {
            rows[s] = s * PromptTokens + PromptTokens - 1;
        }

        var logits = new float[b * v];
        model.Forward(tokens, positions, slots, cache, rows, logits);
        var step = new int[b];
        var stepPositions = new int[b];
        var stepSlots = new int[b];
        for (var s = 0; s < b; s++)
        {
            (stepSlots[s], rows[s]) = (s, s);
        }

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var start = Stopwatch.GetTimestamp();
        for (var g = 0; g < steps; g++)
        {
            for (var s = 0; s < b; s++)
            {
                step[s] = TensorPrimitives.IndexOfMax(logits.AsSpan(s * v, v));
                stepPositions[s] = PromptTokens + g;
            }

            if (PromptTokens + g >= cache.MaxLength)
            {
                break;
            }

            model.Forward(step, stepPositions, stepSlots, cache, rows, logits);
        }

        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return (seconds, GC.GetAllocatedBytesForCurrentThread() - allocatedBefore);
    }

    private static async Task RunTorchAsync(ModelWeights weights, int threads, int runs, Dictionary<string, double> ours, BenchReport report, CancellationToken cancellationToken)
    {
        var home = Environment.GetEnvironmentVariable("DEEPSEEKRL_HOME") ?? Directory.GetCurrentDirectory();
        var script = Path.Combine(home, "infra", "reference", "bench_torch.py");
        const string python = "/usr/bin/python3";
        if (!File.Exists(script) || !File.Exists(python))
        {
            Console.Error.WriteLine($"bench model: PyTorch baseline skipped ({script} or {python} missing)");
            return;
        }

        var dir = Path.Combine(Path.GetTempPath(), $"deepseekrl-bench-model-{Environment.ProcessId}");
        var output = Path.Combine(dir, "torch.json");
        try
        {
            weights.SaveDirectory(dir);
            var info = new ProcessStartInfo(python) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var arg in new[] { script, "--model", dir, "--json", output, "--threads", threads.ToString(CultureInfo.InvariantCulture), "--runs", runs.ToString(CultureInfo.InvariantCulture) })
            {
                info.ArgumentList.Add(arg);
            }

            // Debian's torch uses OpenBLAS: its own pool would fight torch's intra-op threads.
            info.Environment["OPENBLAS_NUM_THREADS"] = "1";
            info.Environment["OMP_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
            Console.Error.WriteLine("bench model: running the PyTorch baseline ...");
            using var process = Process.Start(info) ?? throw new CliException("bench model: could not start " + python);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            _ = await process.StandardOutput.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            if (process.ExitCode != 0)
            {
                Console.Error.WriteLine($"bench model: PyTorch baseline failed (exit {process.ExitCode}): {(await stderr).Trim().Split('\n')[^1]}");
                return;
            }

            using var document = JsonDocument.Parse(await File.ReadAllBytesAsync(output, cancellationToken));
            var root = document.RootElement;
            string[] names =
            [
                "prefill_tok_per_s_b1x512", "prefill_tok_per_s_b16x128", "decode_tok_per_s_b1_absorbed", "decode_tok_per_s_b1_naive",
                "decode_tok_per_s_b16_absorbed", "decode_tok_per_s_b16_naive", "kv_bytes_per_token_absorbed", "kv_bytes_per_token_naive", "peak_rss_mb",
                "train_tok_per_s_b16x128",
            ];
            foreach (var name in names)
            {
                if (root.TryGetProperty(name, out var value))
                {
                    report.Add("torch_" + name, value.GetDouble(), $"PyTorch baseline (bench_torch.py), {threads} threads");
                }
            }

            if (root.TryGetProperty("train_tok_per_s_b16x128", out var tt) && ours.TryGetValue("train_tok_per_s_b16x128", out var ct))
            {
                report.Add("speedup_train_b16x128_vs_torch", ct / tt.GetDouble(), "ours / torch, forward + backward + AdamW (reported, no target)");
            }

            if (root.TryGetProperty("decode_tok_per_s_b16_absorbed", out var td) && ours.TryGetValue("decode_tok_per_s_b16_absorbed", out var cd))
            {
                report.Add("speedup_decode_b16_vs_torch", cd / td.GetDouble(), "ours / torch, absorbed cache, batch 16 (target >= 2)");
            }

            if (root.TryGetProperty("prefill_tok_per_s_b1x512", out var tp) && ours.TryGetValue("prefill_tok_per_s_b1x512", out var cp))
            {
                report.Add("speedup_prefill_b1x512_vs_torch", cp / tp.GetDouble(), "ours / torch (target >= 1)");
            }

            if (root.TryGetProperty("prefill_tok_per_s_b16x128", out var tp16) && ours.TryGetValue("prefill_tok_per_s_b16x128", out var cp16))
            {
                report.Add("speedup_prefill_b16x128_vs_torch", cp16 / tp16.GetDouble(), "ours / torch (target >= 1)");
            }
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }
}
