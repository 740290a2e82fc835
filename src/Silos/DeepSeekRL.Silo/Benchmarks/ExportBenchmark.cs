using System.Diagnostics;
using DeepSeekRL.Storage.Parquet;
using DeepSeekRL.Storage.Stores;
using Parquet;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// <c>bench export</c>: exports 50,000 ingested SFT samples of about 2 KB as JSONL and as Parquet (Snappy, and zstd at
/// its fastest level) to a file, and reads the Parquet file back through the dataset reader (rows as JSON objects, as
/// <c>campaign run</c> and <c>model train-sft</c> read them).
/// </summary>
public static class ExportBenchmark
{
    private const long Campaign = 1;

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
        var (batches, bytesPerRow) = IngestBenchmark.MakeBatches(Campaign, seed: 7);
        var rows = 0L;
        for (var b = 0; b < batches.Count; b++)
        {
            rows += await store.IngestSftBatchAsync($"bench-export-{b}", batches[b], cancellationToken);
        }

        batches.Clear();
        var directory = Directory.CreateTempSubdirectory("deepseekrl-bench-export-").FullName;
        try
        {
            var filter = new SftExportFilter(Campaign);
            var jsonl = new List<double>();
            var snappy = new List<double>();
            var zstd = new List<double>();
            var import = new List<double>();
            long jsonlBytes = 0, snappyBytes = 0, zstdBytes = 0;
            for (var r = 0; r < runs; r++)
            {
                var path = Path.Combine(directory, "export.jsonl");
                (var rate, jsonlBytes) = await TimeAsync(path, rows, s => SftExporter.ExportAsync(db.DataSource, filter, s, cancellationToken), cancellationToken);
                jsonl.Add(rate);
                path = Path.Combine(directory, "zstd.parquet");
                (rate, zstdBytes) = await TimeAsync(path, rows, s => SftExporter.ExportParquetAsync(db.DataSource, filter, s, CompressionMethod.Zstd, cancellationToken), cancellationToken);
                zstd.Add(rate);
                path = Path.Combine(directory, "snappy.parquet");
                (rate, snappyBytes) = await TimeAsync(path, rows, s => SftExporter.ExportParquetAsync(db.DataSource, filter, s, cancellationToken), cancellationToken);
                snappy.Add(rate);
                import.Add(await ImportAsync(path, rows, cancellationToken));
                Console.Error.Write('.');
            }

            Console.Error.WriteLine();
            using var self = Process.GetCurrentProcess();
            report.Add("export_parquet_rows_per_s", BenchReport.Median(snappy), $"Parquet (Snappy, the export's codec) to a file, {rows} samples of about {bytesPerRow:0} bytes (target >= 50,000)");
            report.Add("export_parquet_bytes_per_row", snappyBytes / (double)rows, "Parquet (Snappy) file bytes per sample");
            report.Add("export_parquet_zstd_rows_per_s", BenchReport.Median(zstd), "the same with zstd at CompressionLevel.Fastest");
            report.Add("export_parquet_zstd_bytes_per_row", zstdBytes / (double)rows, "zstd file bytes per sample");
            report.Add("export_jsonl_rows_per_s", BenchReport.Median(jsonl), "chat-format JSONL to a file, the same samples");
            report.Add("export_jsonl_bytes_per_row", jsonlBytes / (double)rows, "JSONL file bytes per sample");
            report.Add("import_parquet_rows_per_s", BenchReport.Median(import), "the Snappy file read back row group by row group into JSON rows (the dataset and train-sft reader)");
            report.Add("peak_rss_mb", self.PeakWorkingSet64 / (1024.0 * 1024.0), "peak resident memory of the whole benchmark process (MB)");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<(double RowsPerSecond, long Bytes)> TimeAsync(
        string path, long rows, Func<Stream, Task<(long Count, long LastId)>> export, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        (long Count, long LastId) result;
        await using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            result = await export(file);
            await file.FlushAsync(cancellationToken);
        }

        var seconds = stopwatch.Elapsed.TotalSeconds;
        if (result.Count != rows)
        {
            throw new CommandLine.CliException($"bench export: exported {result.Count} of {rows} rows");
        }

        return (rows / seconds, new FileInfo(path).Length);
    }

    private static async Task<double> ImportAsync(string path, long rows, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var opened = await ParquetRows.OpenAsync(path, cancellationToken);
        await using var parquet = opened.Succeeded ? opened.Value : throw new CommandLine.CliException($"bench export: {opened.Error}");
        long n = 0, chars = 0;
        await foreach (var row in parquet.ReadAsync(cancellationToken))
        {
            n++;
            chars += row.Json.Length;
        }

        var seconds = stopwatch.Elapsed.TotalSeconds;
        if (n != rows || chars == 0)
        {
            throw new CommandLine.CliException($"bench export: read back {n} of {rows} rows");
        }

        return rows / seconds;
    }
}
