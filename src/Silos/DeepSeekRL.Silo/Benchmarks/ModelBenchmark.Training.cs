using System.Diagnostics;
using System.Runtime.InteropServices;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Kernels;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.Diagnostics;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary><c>bench model</c>, training part: tokens/s of forward + backward + AdamW, GFLOP/s against the SGEMM peak, peak RSS.</summary>
public static partial class ModelBenchmark
{
    private const int TrainBatch = 16;
    private const int TrainLength = 128;
    // Six warm-up steps: .NET's tiered JIT runs the native engine's step methods as quick code first and swaps in
    // optimised code after some calls (by default about four steps of this shape: 1.8k / 4.4k / 4.7k / 7.3k / 6.1k /
    // 9.1k tokens/s for steps 0-5, against 3.7k / 7.8k / 8.5k with tiering off); a training run lives in the steady
    // state. The libtorch engine gets the same warm-up.
    private const int TrainWarmupSteps = 6;
    private const int TrainTimedSteps = 7;
    private const float TrainMtpWeight = 0.3f;

    /// <summary>
    /// Forward matmul FLOPs per token (2 per multiply-add) for training on <paramref name="t"/> causal rows, with the
    /// per-part formulas of reference §15.1: MLA projections, naive attention over the average context (t+1)/2,
    /// dense SwiGLU, MoE gate + (K + N_s) experts, head, and the MTP module (eh_proj + one block + head) when present.
    /// Norms, softmax, RoPE and routing are left out (a few percent).
    /// </summary>
    /// <param name="c">The config.</param>
    /// <param name="t">The sequence length.</param>
    /// <returns>FLOPs per token of one forward pass; training is counted as 3 times this.</returns>
    public static double ForwardFlopsPerToken(DeepSeekV3Config c, int t)
    {
        ArgumentNullException.ThrowIfNull(c);
        double d = c.HiddenSize, h = c.NumAttentionHeads, dn = c.QkNopeHeadDim, dr = c.QkRopeHeadDim, dv = c.VHeadDim, rkv = c.KvLoraRank;
        var dqk = dn + dr;
        var q = c.QLoraRank is int rq && rq > 0 ? (d * rq) + (rq * h * dqk) : d * h * dqk;
        var mlaProj = 2 * (q + (d * (rkv + dr)) + (rkv * h * (dn + dv)) + (h * dv * d));
        var attention = 2 * h * (dqk + dv) * ((t + 1) / 2.0);
        var dense = 6 * d * c.IntermediateSize;
        var moe = (2 * d * c.NRoutedExperts) + ((c.NumExpertsPerTok + c.NSharedExperts) * 6 * d * c.MoeIntermediateSize);
        var head = 2 * d * c.VocabSize;
        var dl = Math.Min(c.FirstKDenseReplace, c.NumHiddenLayers);
        var main = (c.NumHiddenLayers * (mlaProj + attention)) + (dl * dense) + ((c.NumHiddenLayers - dl) * moe) + head;
        var mtpBlockFfn = c.NumHiddenLayers >= c.FirstKDenseReplace ? moe : dense;
        var mtp = c.NumNextnPredictLayers > 0 ? (2 * 2 * d * d) + mlaProj + attention + mtpBlockFfn + head : 0;
        return main + mtp;
    }

    private static void RunTraining(ModelWeights source, int threads, BenchReport report, Action<string, double, string> add, CancellationToken cancellationToken)
    {
        var config = source.Config;
        var peak = SgemmPeakGflops(1024, threads);
        report.Add("sgemm_peak_gflop_per_s", peak, $"OpenBLAS sgemm 1024x1024x1024, {threads} thread(s) (the training's count), best of 5");
        cancellationToken.ThrowIfCancellationRequested();

        // A copy, so the PyTorch baseline later gets the same initial weights.
        var weights = new ModelWeights(config, (float[])source.Data.Clone());
        var mtpWeight = config.NumNextnPredictLayers > 0 ? TrainMtpWeight : 0f;
        GC.Collect();
        var reset = ProcessMemory.ResetPeak();
        var baseline = ProcessMemory.RssMb();
        var trainer = new TrainingModel(weights, threads);
        var grads = new Gradients(config);
        var optimizer = new AdamW(ParameterLayout.Parameters(config), new AdamWOptions());
        var rng = new Random(300);
        var tokens = new int[TrainBatch * TrainLength];
        var rates = new List<double>();
        double loss = 0;
        for (var step = 0; step < TrainWarmupSteps + TrainTimedSteps; step++)
        {
            for (var i = 0; i < tokens.Length; i++)
            {
                tokens[i] = rng.Next(config.VocabSize);
            }

            var start = Stopwatch.GetTimestamp();
            loss = trainer.Forward(tokens, TrainBatch, default, mtpWeight);
            grads.Clear();
            trainer.Backward(grads);
            optimizer.Step(weights.Data, grads.Data);
            var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (step >= TrainWarmupSteps)
            {
                rates.Add(tokens.Length / seconds);
            }

            Console.Error.Write('.');
            cancellationToken.ThrowIfCancellationRequested();
        }

        Console.Error.WriteLine();
        var rate = BenchReport.Median(rates);
        var what = mtpWeight != 0 ? "mean next-token CE + 0.3 x MTP CE" : "mean next-token CE";
        add($"train_tok_per_s_b{TrainBatch}x{TrainLength}", rate, $"{TrainBatch} x {TrainLength} tokens: forward ({what}) + backward + AdamW step, {threads} threads, median of {TrainTimedSteps} after {TrainWarmupSteps} warm-up (last loss {loss:0.000})");
        var flops = 3 * ForwardFlopsPerToken(config, TrainLength);
        var achieved = rate * flops / 1e9;
        report.Add("train_gflop_per_s", achieved, $"achieved: tokens/s x 3 x forward matmul FLOPs ({flops / 3e6:0.00} MFLOP/token at T={TrainLength}, incl. MTP; reference §15.1 formulas), {threads} threads");
        report.Add("train_share_of_sgemm_peak", achieved / peak, $"train_gflop_per_s / the {threads}-thread SGEMM peak");
        report.Add("train_peak_rss_mb", ProcessMemory.PeakRssMb(), reset
            ? $"VmHWM over the training phase (peak reset before it; resident baseline at the reset {baseline:0} MB)"
            : "VmHWM of the whole process after training (peak reset unavailable)");
    }

    private static unsafe double SgemmPeakGflops(int n, int threads)
    {
        var previous = Blas.MaxThreads;
        var count = (nuint)n * (nuint)n;
        var a = (float*)NativeMemory.AlignedAlloc(count * sizeof(float), 64);
        var b = (float*)NativeMemory.AlignedAlloc(count * sizeof(float), 64);
        var c = (float*)NativeMemory.AlignedAlloc(count * sizeof(float), 64);
        try
        {
            var rng = new Random(7);
            for (nuint i = 0; i < count; i++)
            {
                a[i] = (float)(rng.NextDouble() - 0.5);
                b[i] = (float)(rng.NextDouble() - 0.5);
            }

            Blas.SetThreads(threads);
            var best = double.MaxValue;
            for (var r = 0; r < 6; r++)
            {
                var start = Stopwatch.GetTimestamp();
                Blas.GemmNN(n, n, n, a, n, b, n, c, n);
                var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (r > 0)
                {
                    best = Math.Min(best, seconds);
                }
            }

            return 2.0 * n * n * n / best / 1e9;
        }
        finally
        {
            Blas.SetThreads(previous);
            NativeMemory.AlignedFree(a);
            NativeMemory.AlignedFree(b);
            NativeMemory.AlignedFree(c);
        }
    }
}
