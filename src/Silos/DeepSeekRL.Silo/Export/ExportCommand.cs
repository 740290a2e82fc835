using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DeepSeekRL.Grains.Resilience;
using DeepSeekRL.Grains.Stores;
using DeepSeekRL.Silo.CommandLine;

namespace DeepSeekRL.Silo.Export;

/// <summary><c>deepseekrl export --campaign ID --out FILE.jsonl [--since TIME] [--min-reward R] [--after-id N]</c>.</summary>
public static class ExportCommand
{
    /// <summary>Creates the command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var campaign = new Option<long>("--campaign") { Description = "The campaign id.", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "The JSONL file to write (written to a temporary name, then renamed).", Required = true };
        var since = new Option<string?>("--since") { Description = "Only samples created at or after this ISO-8601 time (e.g. 2026-11-23T08:00:00Z)." };
        var minReward = new Option<double?>("--min-reward") { Description = "Only samples whose total reward is at least this." };
        var afterId = new Option<long?>("--after-id") { Description = "Only samples with a larger id (incremental exports: pass the last id of the previous export)." };
        var command = new Command("export", "Export a campaign's accepted SFT samples as chat-format JSONL ({\"messages\": [...], \"metadata\": {...}}), streamed in id order.");
        command.Options.Add(campaign);
        command.Options.Add(output);
        command.Options.Add(since);
        command.Options.Add(minReward);
        command.Options.Add(afterId);
        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            DateTimeOffset? sinceValue = null;
            var sinceText = parseResult.GetValue(since);
            if (sinceText is not null)
            {
                if (!DateTimeOffset.TryParse(sinceText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
                {
                    throw new CliException($"--since: '{sinceText}' is not an ISO-8601 time (expected e.g. 2026-11-23T08:00:00Z)");
                }

                sinceValue = parsed;
            }

            var file = parseResult.GetValue(output)!;
            var directory = Path.GetDirectoryName(file.FullName)!;
            if (!Directory.Exists(directory))
            {
                throw new CliException($"--out: directory {directory} does not exist");
            }

            await using var db = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
            var filter = new SftExportFilter(parseResult.GetValue(campaign), sinceValue, parseResult.GetValue(minReward), parseResult.GetValue(afterId));
            var stopwatch = Stopwatch.StartNew();
            var temp = file.FullName + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            (long Count, long LastId) result;
            try
            {
                // A transient failure mid-stream (a server restart) starts the export again from an empty file.
                result = await DatabaseResilience.Default.ExecuteAsync(async ct =>
                {
                    await using var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                    var exported = await SftExporter.ExportAsync(db.DataSource, filter, stream, ct);
                    await stream.FlushAsync(ct);
                    return exported;
                }, cancellationToken);

                File.Move(temp, file.FullName, overwrite: true);
            }
            finally
            {
                File.Delete(temp);
            }

            var bytes = new FileInfo(file.FullName).Length;
            using var self = Process.GetCurrentProcess();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"exported {result.Count} samples of campaign {filter.CampaignId} to {file.FullName} ({bytes / 1e6:0.0} MB, last id {result.LastId}) in {stopwatch.Elapsed.TotalSeconds:0.00} s; peak RSS {self.PeakWorkingSet64 / (1024 * 1024)} MB"));
            return 0;
        });
        return command;
    }
}
