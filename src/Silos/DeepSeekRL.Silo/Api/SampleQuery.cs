using System.Globalization;
using System.Text.Json;
using DeepSeekRL.Grains;
using DeepSeekRL.Storage.Stores;
using Microsoft.AspNetCore.Http;
using Npgsql;

namespace DeepSeekRL.Silo.Api;

/// <summary>A page of a campaign's completions for the sample browser: keyset-paged by id, filtered on the server.</summary>
internal sealed class SampleQuery
{
    private static readonly string[] Known = ["limit", "after_id", "step", "rule", "min", "max", "accepted", "q", "reflection"];

    /// <summary>The endpoint's query parameters (its allow-list).</summary>
    public static QueryParameters Parameters { get; } = new(Known);

    public string? Error { get; private init; }

    private int Limit { get; init; } = 50;

    private long AfterId { get; init; }

    private int? Step { get; init; }

    private string? Rule { get; init; }

    private double? Min { get; init; }

    private double? Max { get; init; }

    private bool? Accepted { get; init; }

    private string? Text { get; init; }

    private ReflectionFlags Reflection { get; init; }

    /// <summary>Parses and validates the query string; every problem is a message naming the parameter.</summary>
    public static SampleQuery Parse(IQueryCollection query)
    {
        foreach (var key in query.Keys)
        {
            if (!Known.Contains(key))
            {
                return Fail($"unknown parameter '{Cut(key)}'; expected {string.Join(", ", Known)}");
            }
        }

        string? Get(string key) => query.TryGetValue(key, out var v) ? v.ToString() : null;
        var limit = 50;
        if (Get("limit") is { } l && !(int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out limit) && limit is >= 1 and <= 500))
        {
            return Fail($"limit = '{Cut(l)}': expected an integer in 1..500");
        }

        long after = 0;
        if (Get("after_id") is { } a && !long.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out after))
        {
            return Fail($"after_id = '{Cut(a)}': expected a non-negative integer");
        }

        int? step = null;
        if (Get("step") is { } s)
        {
            if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            {
                return Fail($"step = '{Cut(s)}': expected a non-negative integer");
            }

            step = parsed;
        }

        double? min = null, max = null;
        foreach (var (key, set) in new (string, Action<double>)[] { ("min", v => min = v), ("max", v => max = v) })
        {
            if (Get(key) is { } text)
            {
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
                {
                    return Fail($"{key} = '{Cut(text)}': expected a finite number");
                }

                set(v);
            }
        }

        if (min is { } low && max is { } high && low > high)
        {
            return Fail(string.Create(CultureInfo.InvariantCulture, $"min = {low} is greater than max = {high}: expected min <= max"));
        }

        var rule = Get("rule");
        if (rule is not null && (rule.Length is 0 or > 128))
        {
            return Fail("rule: expected a rule name of 1..128 characters");
        }

        if ((min is not null || max is not null) && rule is null)
        {
            return Fail("min/max: need rule=NAME (or rule=reward for the total)");
        }

        bool? accepted = null;
        if (Get("accepted") is { } acc)
        {
            accepted = acc switch
            {
                "true" => true,
                "false" => false,
                _ => null,
            };
            if (accepted is null)
            {
                return Fail($"accepted = '{Cut(acc)}': expected true or false");
            }
        }

        var reflection = ReflectionFlags.None;
        if (Get("reflection") is { } refl)
        {
            reflection = refl switch
            {
                "verify" => ReflectionFlags.Verifies,
                "detect" => ReflectionFlags.Detects,
                "repair" => ReflectionFlags.Repairs,
                _ => ReflectionFlags.None,
            };
            if (reflection == ReflectionFlags.None)
            {
                return Fail($"reflection = '{Cut(refl)}': expected verify, detect or repair");
            }
        }

        var q = Get("q");
        if (q is not null && q.Length > 200)
        {
            return Fail("q: expected at most 200 characters");
        }

        return new SampleQuery
        {
            Limit = limit, AfterId = after, Step = step, Rule = rule, Min = min, Max = max, Accepted = accepted,
            Text = string.IsNullOrEmpty(q) ? null : q, Reflection = reflection,
        };
    }

    /// <summary>Runs the query through the sample store (parameterised SQL).</summary>
    public async Task<object> RunAsync(NpgsqlDataSource dataSource, long campaignId, CancellationToken cancellationToken)
    {
        var page = await new CompletionBrowser(dataSource).PageAsync(
            new CompletionFilter(campaignId, AfterId, Limit, Step, Rule, Min, Max, Accepted, Text, Reflection), cancellationToken);
        var items = new List<JsonElement>(page.Items.Count);
        foreach (var item in page.Items)
        {
            using var document = JsonDocument.Parse(item);
            items.Add(document.RootElement.Clone());
        }

        return new Dictionary<string, object?> { ["items"] = items, ["next_after_id"] = page.NextAfterId };
    }

    private static SampleQuery Fail(string error) => new() { Error = error };

    private static string Cut(string s) => s.Length > 40 ? s[..40] + "..." : s;
}
