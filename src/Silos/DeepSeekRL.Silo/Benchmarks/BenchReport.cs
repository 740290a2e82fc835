using System.Globalization;
using System.Text.Json;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>A benchmark's results: metric name to number, written as one flat JSON object and shown as a table.</summary>
public sealed class BenchReport
{
    private readonly List<(string Name, double Value, string Note)> _metrics = [];

    /// <summary>Adds a metric.</summary>
    /// <param name="name">The metric name (stable: tests and checks read it).</param>
    /// <param name="value">The value.</param>
    /// <param name="note">What it is and, where there is one, the target.</param>
    public void Add(string name, double value, string note) => _metrics.Add((name, value, note));

    /// <summary>The metrics added so far, in order.</summary>
    public IEnumerable<(string Name, double Value)> Values => _metrics.Select(m => (m.Name, m.Value));

    /// <summary>The note of each metric added so far.</summary>
    public IEnumerable<(string Name, string Note)> Notes => _metrics.Select(m => (m.Name, m.Note));

    /// <summary>Writes the JSON file and prints the table.</summary>
    /// <param name="jsonPath">The JSON file, or <see langword="null"/>.</param>
    /// <param name="title">The table title.</param>
    public void Write(string? jsonPath, string title)
    {
        var width = _metrics.Count == 0 ? 10 : _metrics.Max(m => m.Name.Length);
        Console.WriteLine(title);
        foreach (var (name, value, note) in _metrics)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name.PadRight(width)}  {value,14:0.###}  {note}"));
        }

        if (jsonPath is null)
        {
            return;
        }

        using var stream = new FileStream(jsonPath, FileMode.Create, FileAccess.Write);
        using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        writer.WriteStartObject();
        foreach (var (name, value, _) in _metrics)
        {
            writer.WriteNumber(name, Math.Round(value, 6));
        }

        writer.WriteEndObject();
    }

    /// <summary>The median of <paramref name="values"/>.</summary>
    /// <param name="values">The values (at least one).</param>
    /// <returns>The median.</returns>
    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>The <paramref name="p"/>-th percentile (0..100) by nearest rank.</summary>
    /// <param name="values">The values (at least one).</param>
    /// <param name="p">The percentile.</param>
    /// <returns>The percentile.</returns>
    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}
