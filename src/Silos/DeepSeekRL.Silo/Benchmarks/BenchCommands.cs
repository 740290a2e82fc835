using System.CommandLine;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary><c>deepseekrl bench queue|ingest|export|... --json FILE</c>: benchmarks that measure and report (never assert speed).</summary>
public static class BenchCommands
{
    /// <summary>Creates the <c>bench</c> command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var bench = new Command("bench", "Benchmarks. Each writes one flat JSON object (metric name -> number) to --json and prints a table.");
        bench.Subcommands.Add(Database("queue", "Work queue: single and batched claim/complete throughput, p99 claim latency, NOTIFY wake-up, dead-worker recovery, long-transaction drop.", 5, QueueBenchmark.RunAsync));
        bench.Subcommands.Add(Database("ingest", "Binary-COPY ingest of ~2 KB SFT samples.", 5, IngestBenchmark.RunAsync));
        bench.Subcommands.Add(Database("export", "SFT export of 50,000 ~2 KB samples: Parquet (Snappy and zstd) and JSONL rows/s and bytes per row, Parquet read-back rows/s, peak RSS.", 3, ExportBenchmark.RunAsync));
        bench.Subcommands.Add(Plain("rewards", "Reward pipeline: accuracy + format_r1 + language_consistency on ~1 KB GSM8K-like completions.", 5, RewardsBenchmark.RunAsync));
        bench.Subcommands.Add(Plain("tokenizer", "Tokenizer: single-thread encode and decode MB/s of DeepSeek-V3's tokenizer on the golden corpus, and in the same run the JS reference's encode MB/s and Microsoft.ML.Tokenizers anchors (ours through its API, its own BPE on the same vocab, Tiktoken cl100k).", 5, TokenizerBenchmark.RunAsync));
        bench.Subcommands.Add(ModelBenchmark.Create());
        bench.Subcommands.Add(Database("api", "Dashboard API over 10,000 steps of metrics and 1,000,000 completions: campaign page data and sample pages (ms).", 5, ApiBenchmark.RunAsync));
        bench.Subcommands.Add(Database("dashboard", "The dashboard in headless chromium over the api benchmark's data: campaign page interactive, sample pages (ms).", 5, DashboardBenchmark.RunAsync));
        var backends = new Option<string>("--backend") { Description = "Engines whose per-step split to measure, comma-separated: native (default), torch, or native,torch (the scale-out and fault parts run on the first).", DefaultValueFactory = _ => "native" };
        var campaign = Create("campaign", "A small campaign: time per step split into sampling, scoring, update and orchestration (per engine with --backend); steps per minute with 1, 2 and 3 rollout silos; fault recovery.", 3, async (parseResult, runs, report, cancellationToken) =>
        {
            var list = parseResult.GetValue(backends)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (list.Length == 0 || list.Any(b => b is not ("native" or "torch")) || list.Distinct().Count() != list.Length)
            {
                throw new CommandLine.CliException($"--backend: '{parseResult.GetValue(backends)}' is not a list of native and torch");
            }

            await using var db = await BenchDatabase.CreateAsync(parseResult, cancellationToken);
            await CampaignBenchmark.RunAsync(db, runs, report, list, cancellationToken);
        });
        campaign.Options.Add(backends);
        bench.Subcommands.Add(campaign);
        bench.Subcommands.Add(QueueWorkerProcess.Create());
        return bench;
    }

    private static Command Plain(string name, string description, int defaultRuns, Func<int, BenchReport, CancellationToken, Task> run) =>
        Create(name, description, defaultRuns, (_, runs, report, cancellationToken) => run(runs, report, cancellationToken));

    private static Command Database(string name, string description, int defaultRuns, Func<BenchDatabase, int, BenchReport, CancellationToken, Task> run) =>
        Create(name, description, defaultRuns, async (parseResult, runs, report, cancellationToken) =>
        {
            await using var db = await BenchDatabase.CreateAsync(parseResult, cancellationToken);
            await run(db, runs, report, cancellationToken);
        });

    private static Command Create(string name, string description, int defaultRuns, Func<ParseResult, int, BenchReport, CancellationToken, Task> run)
    {
        var json = new Option<FileInfo?>("--json") { Description = "Write the metrics to this JSON file." };
        var runs = new Option<int>("--runs") { Description = $"Repetitions per scenario; medians are reported (default {defaultRuns}).", DefaultValueFactory = _ => defaultRuns };
        var command = new Command(name, description);
        command.Options.Add(json);
        command.Options.Add(runs);
        CommandLine.SiloCommandLine.SetHandler(command, async (parseResult, cancellationToken) =>
        {
            var n = parseResult.GetValue(runs);
            if (n < 1)
            {
                throw new CommandLine.CliException($"--runs: {n} is not a positive number");
            }

            var report = new BenchReport();
            await run(parseResult, n, report, cancellationToken);
            report.Write(parseResult.GetValue(json)?.FullName, $"bench {name} ({n} runs, medians; {Environment.ProcessorCount} cores)");
            return 0;
        });
        return command;
    }
}
