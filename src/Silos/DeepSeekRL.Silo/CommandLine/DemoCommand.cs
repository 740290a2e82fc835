using System.CommandLine;
using System.Globalization;
using DeepSeekRL.Demo;
using DeepSeekRL.Grains.Hosting;
using DeepSeekRL.Silo.Demo;

namespace DeepSeekRL.Silo.CommandLine;

/// <summary>
/// <c>deepseekrl demo [--quick] [--report FILE] [--resume] [--seed N] [--dir DIR] [--api-port N]</c>: R1 on a potato.
/// Pretrains a tiny DeepSeek-V3 on a generated corpus, cold-starts it with SFT on R1-format traces, runs a GRPO
/// campaign through the grains, rejection-samples the RL model into PostgreSQL, distils a fresh base on the export,
/// evaluates every model on the same held-out set and reports. The dashboard serves the run while it goes.
/// </summary>
public static class DemoCommand
{
    /// <summary>Creates the command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "The shorter preset (about 5 minutes on 2 cores)." };
        var report = new Option<FileInfo?>("--report") { Description = "Also write the report JSON to this file." };
        var resume = new Option<bool>("--resume") { Description = "Continue the run stopped in --dir (same --quick and --seed)." };
        var seed = new Option<int>("--seed") { Description = "The seed of the tasks, the model and the campaigns (default 1).", DefaultValueFactory = _ => 1 };
        var dir = new Option<DirectoryInfo?>("--dir") { Description = "The working directory (default $DEEPSEEKRL_HOME/.data/demo); a new run clears it." };
        var apiPort = new Option<int>("--api-port") { Description = "The dashboard's port (default 5080; 0 = no dashboard).", DefaultValueFactory = _ => 5080 };
        var threads = new Option<int>("--threads") { Description = "Model kernel threads (default 2).", DefaultValueFactory = _ => 2 };
        var backend = Model.BackendOptions.Backend();
        var device = Model.BackendOptions.Device();
        var demo = new Command("demo", "R1 on a potato: pretrain, cold-start SFT, GRPO, rejection sampling and distillation of a tiny DeepSeek-V3 model.");
        foreach (var option in new Option[] { quick, report, resume, seed, dir, apiPort, threads, backend, device })
        {
            demo.Options.Add(option);
        }

        demo.SetHandler(async (parseResult, cancellationToken) =>
        {
            var preset = parseResult.GetValue(quick) ? DemoPreset.Quick : DemoPreset.Full;
            var (engine, on) = Model.BackendOptions.Read(parseResult, backend, device);
            _ = Model.BackendOptions.Engine(engine, on, parseResult.GetValue(threads)); // libtorch loads and the device exists, before any work

            var workDir = parseResult.GetValue(dir)?.FullName ?? Path.Combine(SiloEnvironment.Home(), ".data", "demo");
            var reportFile = parseResult.GetValue(report)?.FullName;
            if (reportFile is not null && !Directory.Exists(Path.GetDirectoryName(reportFile)))
            {
                throw new CliException($"--report: directory {Path.GetDirectoryName(reportFile)} does not exist");
            }

            await using var db = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
            await using var services = new SiloServices(db.DataSource, HostEngines.All, parseResult.GetValue(threads), null);
            var run = DemoRun.Open(workDir, preset, parseResult.GetValue(seed), parseResult.GetValue(resume), db.DataSource, services, engine, on);
            Console.WriteLine($"demo ({preset.Name}, seed {parseResult.GetValue(seed)}, {engine} engine) in {run.Directory}; database {db.Target.Endpoint}");
            await using var dashboard = await DemoDashboard.StartAsync(db.DataSource, parseResult.GetValue(apiPort), cancellationToken);
            DemoReport result;
            try
            {
                result = await run.RunAsync(reportFile, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                var current = run.CurrentStage ?? "report";
                Console.WriteLine();
                await Console.Error.WriteLineAsync($"deepseekrl: demo stopped during '{current}'; its progress is saved in {run.Directory}. Continue with: ./deepseekrl demo{(preset == DemoPreset.Quick ? " --quick" : string.Empty)}{(parseResult.GetValue(seed) != 1 ? $" --seed {parseResult.GetValue(seed)}" : string.Empty)}{(engine != DeepSeekRL.Model.Engines.ModelBackends.Native ? $" --backend {engine}" : string.Empty)} --resume");
                return 130;
            }

            Console.WriteLine();
            Console.WriteLine(DemoTable.Render(result));
            Console.WriteLine($"report: {Path.Combine(run.Directory, "report.json")}{(reportFile is null ? string.Empty : " and " + reportFile)}; chart: {Path.Combine(run.Directory, "rl.svg")}");
            if (dashboard.Url is not null)
            {
                Console.WriteLine($"the campaigns stay on the dashboard: ./deepseekrl silo --roles api, then {dashboard.Url}");
            }

            return 0;
        });
        return demo;
    }
}

/// <summary>The terminal table of a demo report.</summary>
internal static class DemoTable
{
    /// <summary>Renders the table.</summary>
    /// <param name="report">The report.</param>
    /// <returns>The text.</returns>
    public static string Render(DemoReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        static string P(double x) => double.IsFinite(x) ? x.ToString("0.000", CultureInfo.InvariantCulture) : "-";
        static string L(double x) => double.IsFinite(x) ? x.ToString("0.0", CultureInfo.InvariantCulture) : "-";
        var lines = new List<string>
        {
            "held-out greedy accuracy, additions (same prompts for every model)",
            $"  {"model",-12} {"accuracy",9} {"reasons",9} {"acc|reasons",12} {"length",8}",
            $"  {"base",-12} {P(report.AccuracyBase),9}",
            $"  {"sft",-12} {P(report.AccuracySft),9} {P(report.ReasoningFractionSft),9} {P(report.AccuracyWhenReasoningSft),12} {(double.IsFinite(report.ResponseLengthSft) ? report.ResponseLengthSft.ToString("0.0", CultureInfo.InvariantCulture) : "-"),8}",
            $"  {"rl (final)",-12} {P(report.AccuracyRlFinal),9} {P(report.ReasoningFractionRl),9} {P(report.AccuracyWhenReasoningRl),12} {(double.IsFinite(report.ResponseLengthRl) ? report.ResponseLengthRl.ToString("0.0", CultureInfo.InvariantCulture) : "-"),8}",
            $"  {"distilled",-12} {P(report.AccuracyDistilled),9}",
        };
        if (report.Countdown is { } c)
        {
            lines.Add("held-out greedy accuracy, Countdown puzzles");
            lines.Add($"  {"model",-12} {"accuracy",9} {"reasons",9} {"acc|reasons",12} {"length",8}");
            lines.Add($"  {"base",-12} {P(c.AccuracyBase),9}");
            lines.Add($"  {"sft",-12} {P(c.AccuracySft),9} {P(c.ReasoningFractionSft),9} {P(c.AccuracyWhenReasoningSft),12} {L(c.ResponseLengthSft),8}");
            lines.Add($"  {"rl (final)",-12} {P(c.AccuracyRlFinal),9} {P(c.ReasoningFractionRl),9} {P(c.AccuracyWhenReasoningRl),12} {L(c.ResponseLengthRl),8}");
            lines.Add($"  {"distilled",-12} {P(c.AccuracyDistilled),9}");
        }

        lines.AddRange(
        [
            "RL evaluations: " + string.Join("  ", report.RlEvaluations.Select(e => $"step {e.Step}: {P(e.Accuracy)}")),
            string.Create(CultureInfo.InvariantCulture, $"rejection sampling: {report.SamplesAccepted} of {report.SamplesGenerated} samples accepted"),
            "seconds per stage: " + string.Join("  ", report.SecondsPerStage.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Key} {s.Value:0.0}"))),
            string.Create(CultureInfo.InvariantCulture, $"total {report.SecondsTotal:0.0} s; peak memory {(double.IsFinite(report.PeakRssMb) ? $"{report.PeakRssMb:0} MB" : "unknown")}"),
        ]);
        var gain = report.AccuracyRlFinal - report.AccuracySft;
        var reasonGain = report.ReasoningFractionRl - report.ReasoningFractionSft;
        var qualityGain = report.AccuracyWhenReasoningRl - report.AccuracyWhenReasoningSft;
        if (double.IsFinite(gain))
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"what RL changed, additions: accuracy {gain * 100:+0.0;-0.0;0.0} points; completions that reason {reasonGain * 100:+0.0;-0.0;0.0} points; accuracy when reasoning {Points(qualityGain)}"));
        }

        lines.AddRange(Reflection("additions", report.Reflection, report.GainSplit));
        if (report.Countdown is { } cd && double.IsFinite(cd.AccuracyRlFinal - cd.AccuracySft))
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"what RL changed, Countdown: accuracy {(cd.AccuracyRlFinal - cd.AccuracySft) * 100:+0.0;-0.0;0.0} points; completions that reason {(cd.ReasoningFractionRl - cd.ReasoningFractionSft) * 100:+0.0;-0.0;0.0} points; accuracy when reasoning {Points(cd.AccuracyWhenReasoningRl - cd.AccuracyWhenReasoningSft)}"));
            lines.AddRange(Reflection("Countdown", cd.Reflection, DemoGainSplit.Of(cd.AccuracySft, cd.AccuracyRlFinal, cd.Reflection, cd.ReasoningFractionSft, cd.ReasoningFractionRl, cd.AccuracyWhenReasoningSft)));
        }

        return string.Join(Environment.NewLine, lines);
    }

    // Self-verification of one family, SFT against RL, and what its gain is made of.
    private static IEnumerable<string> Reflection(string family, DemoReflectionFigures r, DemoGainSplit split)
    {
        static string P(double x) => double.IsFinite(x) ? x.ToString("0.000", CultureInfo.InvariantCulture) : "-";
        static string D(double x) => double.IsFinite(x) ? x.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) : "-";
        if (!double.IsFinite(r.VerifyFractionSft) && !double.IsFinite(r.VerifyFractionRl))
        {
            yield break;
        }

        yield return $"self-verification, {family} (held out, SFT -> RL): checks {P(r.VerifyFractionSft)} -> {P(r.VerifyFractionRl)}; repairs {P(r.RepairFractionSft)} -> {P(r.RepairFractionRl)}; "
            + $"accuracy when checking {P(r.AccuracyWhenVerifyingSft)} -> {P(r.AccuracyWhenVerifyingRl)}, without {P(r.AccuracyWithoutVerifyingSft)} -> {P(r.AccuracyWithoutVerifyingRl)}; first attempts right {P(r.AccuracyFirstAttemptSft)} -> {P(r.AccuracyFirstAttemptRl)}";
        yield return $"  gain {D(split.Gain * 100)} points = first attempts better {D(split.FirstAttemptsBetter * 100)} + checks that caught and repaired a mistake {D(split.VerifiesAndRepairs * 100)}; reasons more often (estimate) {D(split.ReasonsMoreOften * 100)}";
    }

    // A change in points, or why there is none (a model with no reasoning completions has no accuracy among them).
    private static string Points(double change) => double.IsFinite(change)
        ? string.Create(CultureInfo.InvariantCulture, $"{change * 100:+0.0;-0.0;0.0} points")
        : "n/a (one of the models wrote no reasoning)";
}
