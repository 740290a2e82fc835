using System.Diagnostics;
using System.Globalization;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Storage.Stores;
using Npgsql;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// <c>bench queue</c>: claim/complete throughput (single and batched), p99 claim latency, NOTIFY wake-up latency,
/// recovery time of a SIGKILLed worker's items, and the batched throughput with a transaction held open throughout.
/// </summary>
public static class QueueBenchmark
{
    private const string Kind = "bench";

    /// <summary>Runs every scenario and fills <paramref name="report"/>.</summary>
    /// <param name="db">The scratch database.</param>
    /// <param name="runs">Repetitions per scenario (medians are reported).</param>
    /// <param name="report">The report.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>A task.</returns>
    public static async Task RunAsync(BenchDatabase db, int runs, BenchReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(report);
        await using var fast = WorkQueue.CreateFastDataSource(db.ConnectionString);
        var queue = new WorkQueue(fast);
        var durableQueue = new WorkQueue(db.DataSource);
        var campaign = 0L;

        // Warm-up (JIT tiers, prepared statements, pool), not counted.
        await SingleCyclesAsync(queue, ++campaign, 1500, cancellationToken);
        await BatchedAsync(queue, ++campaign, 5000, null, cancellationToken);

        var single = new List<double>();
        var singleDurable = new List<double>();
        for (var r = 0; r < runs; r++)
        {
            single.Add(await SingleCyclesAsync(queue, ++campaign, 2000, cancellationToken));
            singleDurable.Add(await SingleCyclesAsync(durableQueue, ++campaign, 1000, cancellationToken));
            Console.Error.Write('.');
        }

        var batched = new List<double>();
        var claimLatencies = new List<double>();
        for (var r = 0; r < runs; r++)
        {
            batched.Add(await BatchedAsync(queue, ++campaign, 20_000, claimLatencies, cancellationToken));
            Console.Error.Write('.');
        }

        var longTx = new List<double>();
        await using (var holder = await db.DataSource.OpenConnectionAsync(cancellationToken))
        {
            // Another session holds a snapshot open throughout: vacuum cannot remove the dead row versions that
            // claims and completions leave behind, the classic cause of queue slow-downs.
            await using var begin = new NpgsqlCommand("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM work_items;", holder);
            await begin.ExecuteNonQueryAsync(cancellationToken);
            for (var r = 0; r < runs; r++)
            {
                longTx.Add(await BatchedAsync(queue, ++campaign, 20_000, null, cancellationToken));
                Console.Error.Write('.');
            }

            await using var rollback = new NpgsqlCommand("ROLLBACK", holder);
            await rollback.ExecuteNonQueryAsync(cancellationToken);
        }

        var wakeups = await WakeupLatenciesAsync(queue, fast, ++campaign, 60, cancellationToken);
        Console.Error.Write('.');

        var recoveries = new List<double>();
        for (var r = 0; r < Math.Max(1, Math.Min(runs, 3)); r++)
        {
            recoveries.Add(await DeadWorkerRecoveryAsync(db, queue, ++campaign, cancellationToken));
            Console.Error.Write('.');
        }

        Console.Error.WriteLine();
        var batchedMedian = BenchReport.Median(batched);
        var longTxMedian = BenchReport.Median(longTx);
        report.Add("single_cycles_per_s", BenchReport.Median(single), "claim 1 + complete 1, one worker, asynchronous commit (target >= 2,000)");
        report.Add("single_cycles_per_s_durable", BenchReport.Median(singleDurable), "the same with a disk flush per commit (synchronous_commit = on)");
        report.Add("batched_items_per_s", batchedMedian, "claim 64 + complete 64, two workers (target >= 10,000)");
        report.Add("batched_items_per_s_long_tx", longTxMedian, "the same while another session holds a transaction open");
        report.Add("batched_long_tx_drop_pct", 100 * (1 - longTxMedian / batchedMedian), "throughput lost to the open transaction");
        report.Add("claim_p99_ms", BenchReport.Percentile(claimLatencies, 99), "claim of 64, two concurrent workers (target < 20)");
        report.Add("claim_p50_ms", BenchReport.Percentile(claimLatencies, 50), "median of the same");
        report.Add("wakeup_p50_ms", BenchReport.Percentile(wakeups, 50), "enqueue to LISTEN wake-up (target < 10)");
        report.Add("wakeup_p99_ms", BenchReport.Percentile(wakeups, 99), "p99 of the same");
        report.Add("dead_worker_recovery_s", BenchReport.Median(recoveries), "SIGKILL of a worker holding leases until they are claimable again (target <= 15)");
    }

    private static async Task<double> SingleCyclesAsync(WorkQueue queue, long campaign, int count, CancellationToken cancellationToken)
    {
        await EnqueueAsync(queue, campaign, count, cancellationToken);
        var node = new NodeIdentity($"bench-single-{campaign}", 1);
        var kinds = new[] { Kind };
        var stopwatch = Stopwatch.StartNew();
        var done = 0;
        while (true)
        {
            var claimed = await queue.ClaimAsync(node, kinds, 1, TimeSpan.FromMinutes(1), campaign, null, cancellationToken);
            if (claimed.Count == 0)
            {
                break;
            }

            if (await queue.CompleteAsync(claimed[0], "{}", null, cancellationToken) == CompletionStatus.Accepted)
            {
                done++;
            }
        }

        var seconds = stopwatch.Elapsed.TotalSeconds;
        Check(done == count, $"single: completed {done} of {count}");
        return done / seconds;
    }

    private static async Task<double> BatchedAsync(
        WorkQueue queue, long campaign, int count, List<double>? claimLatencies, CancellationToken cancellationToken)
    {
        await EnqueueAsync(queue, campaign, count, cancellationToken);
        var kinds = new[] { Kind };
        var stopwatch = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, 2).Select(w => Task.Run(async () =>
        {
            var node = new NodeIdentity($"bench-batched-{campaign}-{w}", 1);
            var done = 0;
            var latencies = new List<double>();
            while (true)
            {
                var t0 = Stopwatch.GetTimestamp();
                var claimed = await queue.ClaimAsync(node, kinds, 64, TimeSpan.FromMinutes(1), campaign, null, cancellationToken);
                latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                if (claimed.Count == 0)
                {
                    break;
                }

                var accepted = await queue.CompleteBatchAsync(claimed.Select(c => (c, "{}")).ToList(), cancellationToken);
                done += accepted.Count;
            }

            return (done, latencies);
        }, cancellationToken)).ToArray();
        var results = await Task.WhenAll(workers);
        var seconds = stopwatch.Elapsed.TotalSeconds;
        var total = results.Sum(r => r.done);
        Check(total == count, $"batched: completed {total} of {count}");
        if (claimLatencies is not null)
        {
            foreach (var (_, latencies) in results)
            {
                claimLatencies.AddRange(latencies);
            }
        }

        return total / seconds;
    }

    private static async Task<List<double>> WakeupLatenciesAsync(WorkQueue queue, NpgsqlDataSource dataSource, long campaign, int samples, CancellationToken cancellationToken)
    {
        await using var listener = new WorkListener(dataSource);
        await listener.Listening.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        var latencies = new List<double>(samples);
        for (var i = 0; i < samples; i++)
        {
            var wait = listener.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            var t0 = Stopwatch.GetTimestamp();
            await queue.EnqueueAsync([new NewWorkItem(campaign, Kind, "wake-" + i.ToString(CultureInfo.InvariantCulture), "{}")], cancellationToken);
            var notified = await wait;
            Check(notified, "wake-up: no notification within 10 s");
            latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }

        return latencies;
    }

    private static async Task<double> DeadWorkerRecoveryAsync(BenchDatabase db, WorkQueue queue, long campaign, CancellationToken cancellationToken)
    {
        const int Held = 32;
        // The victim renews its leases every second (3 s leases); outside a cluster, nobody declares it dead, so its
        // items come back when their leases expire: the slowest path (a silo's death releases them at once).
        var renewEvery = TimeSpan.FromSeconds(1);
        await EnqueueAsync(queue, campaign, Held, cancellationToken);
        using var worker = QueueWorkerProcess.Start(db.ConnectionString, $"bench-victim-{campaign}", Kind, campaign, Held, renewEvery);
        var line = await worker.StandardOutput.ReadLineAsync(cancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
        Check(line == $"holding {Held}", $"dead worker: the worker said '{line}' instead of 'holding {Held}'");

        // Let it heartbeat a couple of times, then kill it without warning.
        await Task.Delay(renewEvery * 1.5, cancellationToken);
        var killedAt = Stopwatch.GetTimestamp();
        worker.Kill();
        await worker.WaitForExitAsync(cancellationToken);

        var rescuer = new NodeIdentity($"bench-rescuer-{campaign}", 1);
        var recovered = 0;
        while (recovered < Held)
        {
            // What every silo's work pump does: rescue, then claim.
            await queue.RescueAsync(cancellationToken);
            var claimed = await queue.ClaimAsync(rescuer, [Kind], Held, TimeSpan.FromMinutes(1), campaign, null, cancellationToken);
            recovered += claimed.Count;
            if (recovered < Held)
            {
                await Task.Delay(100, cancellationToken);
            }

            Check(Stopwatch.GetElapsedTime(killedAt) < TimeSpan.FromMinutes(2), "dead worker: items not claimable after 2 minutes");
        }

        return Stopwatch.GetElapsedTime(killedAt).TotalSeconds;
    }

    private static async Task EnqueueAsync(WorkQueue queue, long campaign, int count, CancellationToken cancellationToken)
    {
        const int Batch = 5000;
        for (var start = 0; start < count; start += Batch)
        {
            var items = new List<NewWorkItem>(Math.Min(Batch, count - start));
            for (var i = start; i < Math.Min(count, start + Batch); i++)
            {
                items.Add(new NewWorkItem(campaign, Kind, "k" + i.ToString(CultureInfo.InvariantCulture), """{"prompt":"What is 12 + 30?","samples":8}"""));
            }

            await queue.EnqueueAsync(items, cancellationToken);
        }
    }

    private static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new CommandLine.CliException("bench queue: " + message);
        }
    }
}

/// <summary><c>bench ingest</c>: binary-COPY ingest of SFT samples of about 2 KB, one stream and one per core.</summary>
public static class IngestBenchmark
{
    private const int Rows = 50_000;
    private const int Batch = 5_000;

    /// <summary>Runs the scenario and fills <paramref name="report"/>.</summary>
    /// <param name="db">The scratch database.</param>
    /// <param name="runs">Repetitions (the median is reported).</param>
    /// <param name="report">The report.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>A task.</returns>
    public static async Task RunAsync(BenchDatabase db, int runs, BenchReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(report);
        var store = new SampleStore(db.DataSource);
        var streams = Math.Max(2, Environment.ProcessorCount);
        var single = new List<double>();
        var parallel = new List<double>();
        var bytesPerRow = 0.0;
        for (var r = 0; r < runs; r++)
        {
            var (batches, bytes) = MakeBatches(campaign: (2 * r) + 1, seed: r);
            bytesPerRow = bytes;
            single.Add(await IngestAsync(store, batches, 1, $"s{r}", cancellationToken));
            (batches, _) = MakeBatches(campaign: (2 * r) + 2, seed: 1000 + r);
            parallel.Add(await IngestAsync(store, batches, streams, $"p{r}", cancellationToken));
            Console.Error.Write('.');
        }

        Console.Error.WriteLine();
        report.Add("ingest_rows_per_s", BenchReport.Median(parallel), $"SFT samples of about {bytesPerRow:0} bytes, binary COPY in keyed batches of {Batch}, {streams} streams (target >= 50,000)");
        report.Add("ingest_rows_per_s_single_stream", BenchReport.Median(single), "the same through one connection");
        report.Add("ingest_mb_per_s", BenchReport.Median(parallel) * bytesPerRow / 1e6, "MB/s of row payload, all streams");
    }

    private static async Task<double> IngestAsync(SampleStore store, List<SftSample[]> batches, int streams, string keyPrefix, CancellationToken cancellationToken)
    {
        var next = -1;
        var stopwatch = Stopwatch.StartNew();
        var stored = await Task.WhenAll(Enumerable.Range(0, streams).Select(_ => Task.Run(async () =>
        {
            var n = 0;
            int b;
            while ((b = Interlocked.Increment(ref next)) < batches.Count)
            {
                n += await store.IngestSftBatchAsync($"bench-{keyPrefix}-{b}", batches[b], cancellationToken);
            }

            return n;
        }, cancellationToken)));
        var seconds = stopwatch.Elapsed.TotalSeconds;
        if (stored.Sum() != Rows)
        {
            throw new CommandLine.CliException($"bench ingest: stored {stored.Sum()} of {Rows} rows");
        }

        return Rows / seconds;
    }

    internal static (List<SftSample[]> Batches, double BytesPerRow) MakeBatches(long campaign, int seed)
    {
        // Varied text (seeded words), so that compression and caches see something like real reasoning.
        string[] words =
        [
            "the", "of", "and", "to", "a", "in", "is", "we", "add", "carry", "digit", "sum", "units", "tens", "hundreds",
            "so", "next", "then", "first", "check", "multiply", "result", "equals", "number", "write", "down", "answer",
            "step", "compute", "thus", "therefore", "because", "plus", "minus", "times", "divide", "remainder", "7", "12", "45",
        ];
        var random = new Random(seed);
        var batches = new List<SftSample[]>();
        long bytes = 0;
        var text = new System.Text.StringBuilder();
        for (var start = 0; start < Rows; start += Batch)
        {
            var batch = new SftSample[Batch];
            for (var i = 0; i < Batch; i++)
            {
                var n = start + i;
                text.Clear();
                while (text.Length < 1700)
                {
                    text.Append(words[random.Next(words.Length)]).Append(' ');
                }

                var sample = new SftSample(campaign, n / 512, n / 512, (campaign * 10_000_000) + n,
                    $"What is {n} + {n * 7 % 1000}? Think step by step.", text.ToString(), $"The answer is \\boxed{{{n + (n * 7 % 1000)}}}.", 1.0,
                    """{"accuracy":1,"format_r1":1,"language_consistency":0.98}""", """{"accuracy":true,"format_r1":true}""");
                bytes += sample.Prompt.Length + sample.Reasoning.Length + sample.Answer.Length + sample.ScoresJson.Length + sample.VerdictsJson.Length + 40;
                batch[i] = sample;
            }

            batches.Add(batch);
        }

        return (batches, bytes / (double)Rows);
    }
}
