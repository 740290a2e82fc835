using System.Diagnostics;
using System.Numerics.Tensors;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.TorchSharp;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Silo.Diagnostics;
using static TorchSharp.torch;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// <c>bench model --backend native,torch</c>, the libtorch engine's part: the same prefill, decode (absorbed latent
/// cache, greedy) and training (16 x 128, forward + backward + AdamW) as the native engine's, in the same process on the
/// same weights, with libtorch's intra-op threads set to the same count; and the native / libtorch ratios.
/// </summary>
public static partial class ModelBenchmark
{
    private static void RunLibTorch(ModelWeights weights, int threads, int runs, Dictionary<string, double> ours, BenchReport report, CancellationToken cancellationToken)
    {
        if (TorchRuntime.TryLoad() is { } error)
        {
            throw new CliException("--backend torch: " + error);
        }

        TorchRuntime.SetThreads(threads);
        Console.Error.WriteLine($"bench model: libtorch engine, {get_num_threads()} intra-op threads");
        var results = new Dictionary<string, double>(StringComparer.Ordinal);
        GC.Collect();
        ProcessMemory.ResetPeak();
        using (var model = new TorchDeepSeekV3(weights, CPU, Math.Max(512, PromptTokens + GeneratedTokens)))
        {
            // Warm-up: libtorch's first calls allocate its pools and pick kernels.
            for (var w = 0; w < 3; w++)
            {
                TorchPrefill(model, 16, 64, seed: w);
                TorchDecode(model, 4, seed: w, steps: 8);
            }

            foreach (var (b, t) in new[] { (1, 512), (16, 128) })
            {
                var rates = new List<double>();
                for (var r = 0; r < runs; r++)
                {
                    rates.Add(b * t / TorchPrefill(model, b, t, seed: r));
                    cancellationToken.ThrowIfCancellationRequested();
                }

                results[$"prefill_tok_per_s_b{b}x{t}"] = BenchReport.Median(rates);
                Console.Error.Write('.');
            }

            foreach (var b in new[] { 1, 16 })
            {
                var rates = new List<double>();
                for (var r = 0; r < runs; r++)
                {
                    rates.Add(b * GeneratedTokens / TorchDecode(model, b, seed: 100 + r));
                    cancellationToken.ThrowIfCancellationRequested();
                }

                results[$"decode_tok_per_s_b{b}_absorbed"] = BenchReport.Median(rates);
                Console.Error.Write('.');
            }
        }

        results["peak_rss_mb"] = ProcessMemory.PeakRssMb();
        GC.Collect();
        ProcessMemory.ResetPeak();
        results["train_tok_per_s_b16x128"] = TorchTraining(weights, cancellationToken);
        results["train_peak_rss_mb"] = ProcessMemory.PeakRssMb();
        var (pairRatio, pairs) = InterleavedTrainingRatio(weights, threads, cancellationToken);
        Console.Error.WriteLine();

        foreach (var (name, value) in results)
        {
            report.Add("libtorch_" + name, value, $"libtorch engine (TorchSharp 0.107.0, libtorch 2.10.0 CPU), {threads} intra-op threads, same weights and shapes as {name}");
        }

        void Ratio(string name, string metric, string target)
        {
            if (ours.TryGetValue(metric, out var native) && results.TryGetValue(metric, out var torch) && torch > 0)
            {
                report.Add(name, native / torch, $"native / libtorch engine, same run ({target})");
            }
        }

        report.Add("native_vs_libtorch_train_b16x128", pairRatio, $"native / libtorch engine: median over {pairs} pairs of one step on each engine, taken in turns (ABBA) after {TrainWarmupSteps} warm-up steps each, so a shared host's slow spells hit both alike (target >= 1.5)");
        Ratio("native_vs_libtorch_train_b16x128_phases", "train_tok_per_s_b16x128", "reported: the two training phases' medians, run minutes apart");
        Ratio("native_vs_libtorch_decode_b16", "decode_tok_per_s_b16_absorbed", "target >= 2");
        Ratio("native_vs_libtorch_decode_b1", "decode_tok_per_s_b1_absorbed", "reported");
        Ratio("native_vs_libtorch_prefill_b1x512", "prefill_tok_per_s_b1x512", "target >= 1");
        Ratio("native_vs_libtorch_prefill_b16x128", "prefill_tok_per_s_b16x128", "target >= 1");
    }

    // The same call as the native Prefill: b prompts of t tokens in one batched forward, logits of each last row.
    private static double TorchPrefill(TorchDeepSeekV3 model, int b, int t, int seed)
    {
        var rng = new Random(seed);
        var n = b * t;
        var tokens = new int[n];
        var positions = new int[n];
        var slots = new int[n];
        for (var i = 0; i < n; i++)
        {
            (tokens[i], positions[i], slots[i]) = (rng.Next(model.Config.VocabSize), i % t, i / t);
        }

        var last = Enumerable.Range(0, b).Select(s => (s * t) + t - 1).ToArray();
        var logits = new float[b * model.Config.VocabSize];
        using var cache = (TorchLatentCache)model.CreateDecodingCache(KvCacheKind.Absorbed, b, t);
        var start = Stopwatch.GetTimestamp();
        model.Decode(tokens, positions, slots, cache, last, logits);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    // The same loop as the native Decode: a 64-token prompt per slot, then greedy steps of one row per slot.
    private static double TorchDecode(TorchDeepSeekV3 model, int b, int seed, int steps = GeneratedTokens)
    {
        var v = model.Config.VocabSize;
        var rng = new Random(seed);
        var n = b * PromptTokens;
        var tokens = new int[n];
        var positions = new int[n];
        var slots = new int[n];
        for (var i = 0; i < n; i++)
        {
            (tokens[i], positions[i], slots[i]) = (rng.Next(v), i % PromptTokens, i / PromptTokens);
        }

        var rows = Enumerable.Range(0, b).Select(s => (s * PromptTokens) + PromptTokens - 1).ToArray();
        var logits = new float[b * v];
        using var cache = (TorchLatentCache)model.CreateDecodingCache(KvCacheKind.Absorbed, b, PromptTokens + GeneratedTokens);
        model.Decode(tokens, positions, slots, cache, rows, logits);
        var step = new int[b];
        var stepPositions = new int[b];
        var stepSlots = Enumerable.Range(0, b).ToArray();
        var stepRows = Enumerable.Range(0, b).ToArray();
        var start = Stopwatch.GetTimestamp();
        for (var g = 0; g < steps && PromptTokens + g < cache.MaxLength; g++)
        {
            for (var s = 0; s < b; s++)
            {
                step[s] = TensorPrimitives.IndexOfMax(logits.AsSpan(s * v, v));
                stepPositions[s] = PromptTokens + g;
            }

            model.Decode(step, stepPositions, stepSlots, cache, stepRows, logits);
        }

        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    // The training ratio from steps taken in turns: pair i times one native and one libtorch step on the same random
    // batch (native first in even pairs, libtorch first in odd ones), and the ratio is the median of the pairs'.
    private static (double Ratio, int Pairs) InterleavedTrainingRatio(ModelWeights weights, int threads, CancellationToken cancellationToken)
    {
        const int Pairs = 9;
        var config = weights.Config;
        var mtpWeight = config.NumNextnPredictLayers > 0 ? TrainMtpWeight : 0f;
        var nativeWeights = new ModelWeights(config, (float[])weights.Data.Clone());
        var native = new TrainingModel(nativeWeights, threads);
        var grads = new Gradients(config);
        var adamw = new AdamW(ParameterLayout.Parameters(config), new AdamWOptions());
        using var model = new TorchDeepSeekV3(weights, CPU);
        using var optimizer = new TorchAdamW(model, new AdamWOptions());
        var torch = new TorchTrainer(model, optimizer);
        var rng = new Random(301);
        var tokens = new int[TrainBatch * TrainLength];

        double NativeStep()
        {
            var start = Stopwatch.GetTimestamp();
            native.Forward(tokens, TrainBatch, default, mtpWeight);
            grads.Clear();
            native.Backward(grads);
            adamw.Step(nativeWeights.Data, grads.Data);
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        double TorchStep()
        {
            var start = Stopwatch.GetTimestamp();
            torch.Step(tokens, TrainBatch, default, mtpWeight, 0, 0);
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        var ratios = new List<double>();
        for (var step = 0; step < TrainWarmupSteps + Pairs; step++)
        {
            for (var i = 0; i < tokens.Length; i++)
            {
                tokens[i] = rng.Next(config.VocabSize);
            }

            double nativeSeconds, torchSeconds;
            if (step % 2 == 0)
            {
                nativeSeconds = NativeStep();
                torchSeconds = TorchStep();
            }
            else
            {
                torchSeconds = TorchStep();
                nativeSeconds = NativeStep();
            }

            if (step >= TrainWarmupSteps)
            {
                ratios.Add(torchSeconds / nativeSeconds);
            }

            Console.Error.Write('.');
            cancellationToken.ThrowIfCancellationRequested();
        }

        return (BenchReport.Median(ratios), Pairs);
    }

    // Forward (CE + 0.3 x MTP) + backward + AdamW on 16 x 128 random tokens: the native training phase's step.
    private static double TorchTraining(ModelWeights weights, CancellationToken cancellationToken)
    {
        var config = weights.Config;
        var mtpWeight = config.NumNextnPredictLayers > 0 ? TrainMtpWeight : 0f;
        using var model = new TorchDeepSeekV3(weights, CPU);
        using var optimizer = new TorchAdamW(model, new AdamWOptions());
        var trainer = new TorchTrainer(model, optimizer);
        var rng = new Random(300);
        var tokens = new int[TrainBatch * TrainLength];
        var rates = new List<double>();
        for (var step = 0; step < TrainWarmupSteps + TrainTimedSteps; step++)
        {
            for (var i = 0; i < tokens.Length; i++)
            {
                tokens[i] = rng.Next(config.VocabSize);
            }

            var start = Stopwatch.GetTimestamp();
            trainer.Step(tokens, TrainBatch, default, mtpWeight, 0, 0);
            var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (step >= TrainWarmupSteps)
            {
                rates.Add(tokens.Length / seconds);
            }

            Console.Error.Write('.');
            cancellationToken.ThrowIfCancellationRequested();
        }

        return BenchReport.Median(rates);
    }
}
