using System.Text.Json;

namespace DeepSeekRL.Rewards.Tests;

/// <summary>Reads the JSONL case files under Data/.</summary>
internal static class TestData
{
    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "Data", name);

    public static string? Str(this JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static IReadOnlyList<JsonElement> ReadJsonLines(string file)
    {
        var path = PathOf(file);
        var rows = new List<JsonElement>();
        foreach (var line in File.ReadLines(path))
        {
            if (!string.IsNullOrWhiteSpace(line))
            {
                rows.Add(JsonDocument.Parse(line).RootElement.Clone());
            }
        }

        return rows;
    }

    public static double Run(this IRewardRule rule, string completion, int? tokens = null, IReadOnlyDictionary<string, JsonElement>? fields = null)
    {
        var outcome = rule.ScoreAsync(new RewardArguments(string.Empty, completion, null, tokens, fields), TestContext.Current.CancellationToken)
            .AsTask().GetAwaiter().GetResult();
        Assert.False(outcome.IsMissing, $"unexpected missing score: {outcome.Reason}");
        return outcome.Value!.Value;
    }

    public static RewardOutcome Outcome(this IRewardRule rule, string completion, int? tokens = null, IReadOnlyDictionary<string, JsonElement>? fields = null) =>
        rule.ScoreAsync(new RewardArguments(string.Empty, completion, null, tokens, fields), TestContext.Current.CancellationToken)
            .AsTask().GetAwaiter().GetResult();
}
