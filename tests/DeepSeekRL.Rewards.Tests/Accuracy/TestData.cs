using System.Text.Json;

namespace DeepSeekRL.Rewards.Tests.Accuracy;

internal static class TestData
{
    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "Data", name);

    public static List<JsonElement> ReadJsonl(string name)
    {
        var rows = new List<JsonElement>();
        foreach (var line in File.ReadLines(PathOf(name)))
        {
            if (line.Length > 0)
            {
                rows.Add(JsonDocument.Parse(line).RootElement.Clone());
            }
        }

        return rows;
    }

    public static string? Str(this JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
