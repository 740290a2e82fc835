using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using DeepSeekRL.Storage.Resilience;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Silo.CommandLine;

namespace DeepSeekRL.Silo.Export;

/// <summary><c>deepseekrl export --campaign ID --out FILE [--format jsonl|parquet] [--since TIME] [--min-reward R] [--after-id N]</c>.</summary>
public static partial class ExportCommand
{
    /// <summary>Creates the command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var campaign = new Option<long>("--campaign") { Description = "The campaign id.", Required = true };
        var output = new Option<string>("--out")
        {
            Description = "The file to write (JSONL, or Parquet with --format parquet or a .parquet name): a regular file is written to a temporary name, then renamed; through a symbolic link, its target is; a FIFO or a character device is written through.",
            Required = true,
        };
        var format = new Option<string?>("--format") { Description = "jsonl (the default) or parquet; without it, an --out ending in .parquet means parquet." };
        var since = new Option<string?>("--since") { Description = "Only samples created at or after this ISO-8601 time (e.g. 2026-11-23T08:00:00Z)." };
        var minReward = new Option<string?>("--min-reward") { Description = "Only samples whose total reward is at least this (a finite number)." };
        var afterId = new Option<long?>("--after-id") { Description = "Only samples with a larger id (incremental exports: pass the last id of the previous export)." };
        var command = new Command("export", "Export a campaign's accepted SFT samples as chat-format JSONL ({\"messages\": [...], \"metadata\": {...}}) or Parquet (messages as a list of {role, content} structs, provenance columns, scores and verdicts as structs), streamed in id order.");
        command.Options.Add(campaign);
        command.Options.Add(output);
        command.Options.Add(format);
        command.Options.Add(since);
        command.Options.Add(minReward);
        command.Options.Add(afterId);
        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            var sinceValue = ParseSince(parseResult.GetValue(since));
            var minRewardValue = ParseMinReward(parseResult.GetValue(minReward));
            var path = parseResult.GetValue(output)!;
            var parquet = ParseFormat(parseResult.GetValue(format), path);

            // The destination first: a bad --out fails before the database is touched, and nothing is left behind.
            await using var file = OutputFile.Create("--out", path);
            await using var db = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
            var filter = new SftExportFilter(parseResult.GetValue(campaign), sinceValue, minRewardValue, parseResult.GetValue(afterId));
            if (!await SftExporter.CampaignExistsAsync(db.DataSource, filter.CampaignId, cancellationToken))
            {
                throw new CliException(string.Create(CultureInfo.InvariantCulture, $"campaign {filter.CampaignId} does not exist"));
            }

            var stopwatch = Stopwatch.StartNew();
            (long Count, long LastId) result;
            long? bytes;
            try
            {
                // A transient failure mid-stream (a server restart) starts the export again from an empty file.
                result = await DatabaseResilience.Default.ExecuteAsync(async ct =>
                {
                    var stream = await file.StartAsync(ct);
                    return parquet
                        ? await SftExporter.ExportParquetAsync(db.DataSource, filter, stream, ct)
                        : await SftExporter.ExportAsync(db.DataSource, filter, stream, ct);
                }, cancellationToken);
                bytes = await file.CommitAsync(cancellationToken);
            }
            catch (IOException ex)
            {
                throw file.Failure(ex);
            }

            using var self = Process.GetCurrentProcess();
            var size = bytes is { } b ? string.Create(CultureInfo.InvariantCulture, $"{b / 1e6:0.0} MB, ") : string.Empty;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"exported {result.Count} samples of campaign {filter.CampaignId} to {path} ({size}last id {result.LastId}) in {stopwatch.Elapsed.TotalSeconds:0.00} s; peak RSS {self.PeakWorkingSet64 / (1024 * 1024)} MB"));
            return 0;
        });
        return command;
    }

    /// <summary>Whether to write Parquet: <c>--format</c> when given, else a <c>.parquet</c> name.</summary>
    internal static bool ParseFormat(string? text, string path) => text switch
    {
        null => path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase),
        "jsonl" => false,
        "parquet" => true,
        _ => throw new CliException($"--format: '{text}' is not a format (expected jsonl or parquet)"),
    };

    private static DateTimeOffset? ParseSince(string? text)
    {
        if (text is null)
        {
            return null;
        }

        // A date, optionally with a time and an offset (UTC when absent); not a bare time of day or a number.
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
            || !IsoDate().IsMatch(text))
        {
            throw new CliException($"--since: '{text}' is not an ISO-8601 time (expected e.g. 2026-11-23T08:00:00Z)");
        }

        return parsed;
    }

    private static double? ParseMinReward(string? text)
    {
        if (text is null)
        {
            return null;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
        {
            throw new CliException($"--min-reward: '{text}' is not a finite number (expected e.g. 0.5)");
        }

        return value;
    }

    [GeneratedRegex(@"^\s*\d{4}-\d{2}-\d{2}")]
    private static partial Regex IsoDate();
}
