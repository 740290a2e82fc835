using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Rewards;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Plugins;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// <c>bench rewards</c>: completions scored per second by accuracy + format_r1 + language_consistency on GSM8K-like
/// completions of about 1 KB, on all cores, and the p99 time of one completion (all three rules, one thread).
/// </summary>
public static class RewardsBenchmark
{
    private const string Rules = """
        {"rules": [{"rule": "accuracy", "weight": 1.0}, {"rule": "format_r1", "weight": 1.0}, {"rule": "language_consistency", "weight": 1.0}]}
        """;

    /// <summary>Runs the benchmark and fills <paramref name="report"/>.</summary>
    /// <param name="runs">Repetitions (medians are reported).</param>
    /// <param name="report">The report.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>A task.</returns>
    public static async Task RunAsync(int runs, BenchReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        using var document = JsonDocument.Parse(Rules);
        using var plugins = new PluginLoader();
        var (pipeline, error) = RulesFile.Build(document.RootElement, ".", plugins);
        if (pipeline is null)
        {
            throw new CommandLine.CliException("bench rewards: " + error);
        }

        var inputs = MakeCompletions(20_000, seed: 7);
        var averageBytes = inputs.Average(i => Encoding.UTF8.GetByteCount(i.Completion));
        await pipeline.ScoreAsync(inputs.Take(2000).ToList(), cancellationToken); // warm-up

        var rates = new List<double>();
        IReadOnlyList<RewardResult>? last = null;
        for (var r = 0; r < runs; r++)
        {
            var stopwatch = Stopwatch.StartNew();
            last = await pipeline.ScoreAsync(inputs, cancellationToken);
            rates.Add(inputs.Count / stopwatch.Elapsed.TotalSeconds);
            Console.Error.Write('.');
        }

        // Per-completion time: every rule on one completion, one thread, measured one by one.
        var perCompletion = new List<double>(inputs.Count);
        var batch = RewardBatchInfo.Single(1000, null);
        foreach (var input in inputs)
        {
            var args = new RewardArguments(input.Prompt, input.Completion, input.Answer, null, null, batch);
            var t0 = Stopwatch.GetTimestamp();
            foreach (var entry in pipeline.Rules)
            {
                await entry.Rule.ScoreAsync(args, cancellationToken);
            }

            perCompletion.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }

        Console.Error.WriteLine();
        var correct = last!.Count(x => x["accuracy"] == 1.0);
        var missing = last!.Count(x => x.Missing.Count > 0);
        report.Add("completions_per_s", BenchReport.Median(rates), $"accuracy + format_r1 + language_consistency, {Environment.ProcessorCount} cores, ~{averageBytes:0}-byte completions (target >= 20,000)");
        report.Add("p99_ms", BenchReport.Percentile(perCompletion, 99), "all three rules on one completion, one thread");
        report.Add("p50_ms", BenchReport.Percentile(perCompletion, 50), "median of the same");
        report.Add("accuracy_fraction", correct / (double)inputs.Count, "sanity: fraction scored correct (the generator makes 70% correct)");
        report.Add("missing_fraction", missing / (double)inputs.Count, "sanity: fraction with a missing score");
    }

    /// <summary>GSM8K-like completions in the R1 format: a chain of thought with arithmetic, then a boxed answer.</summary>
    /// <param name="count">How many.</param>
    /// <param name="seed">The seed.</param>
    /// <returns>The inputs; 70% have the right answer.</returns>
    public static List<RewardInput> MakeCompletions(int count, int seed)
    {
        var random = new Random(seed);
        string[] names = ["Natalia", "James", "Weng", "Betty", "Julie", "Mark", "Albert", "Ken"];
        string[] things = ["clips", "apples", "pages", "dollars", "eggs", "marbles", "cookies", "miles"];
        var inputs = new List<RewardInput>(count);
        var text = new StringBuilder();
        for (var i = 0; i < count; i++)
        {
            var name = names[random.Next(names.Length)];
            var thing = things[random.Next(things.Length)];
            var a = random.Next(2, 500);
            var b = random.Next(2, 500);
            var c = random.Next(2, 12);
            var gold = (a + b) * c;
            text.Clear();
            text.Append("<think>\n");
            text.Append(CultureInfo.InvariantCulture, $"{name} has {a} {thing} on Monday and gets {b} more on Tuesday. ");
            text.Append(CultureInfo.InvariantCulture, $"First, I add the two amounts: {a} + {b} = {a + b}. ");
            text.Append(CultureInfo.InvariantCulture, $"Then the total is multiplied by {c}, because the same happens each week for {c} weeks. ");
            while (text.Length < 850)
            {
                text.Append(CultureInfo.InvariantCulture, $"Let me check: {a + b} times {c} is {gold}, and {gold} divided by {c} gives back {a + b}. ");
            }

            text.Append("So the answer is confirmed.\n</think>\n\n");
            var answer = random.NextDouble() < 0.7 ? gold : gold + 1 + random.Next(9);
            text.Append(CultureInfo.InvariantCulture, $"{name} ends up with {answer} {thing}. The answer is $\\boxed{{{answer}}}$.");
            inputs.Add(new RewardInput($"{name} has {a} {thing} ... How many {thing} after {c} weeks?", text.ToString(), gold.ToString(CultureInfo.InvariantCulture)));
        }

        return inputs;
    }
}
