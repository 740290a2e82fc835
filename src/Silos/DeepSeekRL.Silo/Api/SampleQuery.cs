using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Npgsql;
using NpgsqlTypes;

namespace DeepSeekRL.Silo.Api;

/// <summary>A page of a campaign's completions for the sample browser: keyset-paged by id, filtered on the server.</summary>
internal sealed class SampleQuery
{
    private static readonly string[] Known = ["limit", "after_id", "step", "rule", "min", "max", "accepted", "q"];

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

        var q = Get("q");
        if (q is not null && q.Length > 200)
        {
            return Fail("q: expected at most 200 characters");
        }

        return new SampleQuery
        {
            Limit = limit, AfterId = after, Step = step, Rule = rule, Min = min, Max = max, Accepted = accepted,
            Text = string.IsNullOrEmpty(q) ? null : q,
        };
    }

    /// <summary>Runs the query (parameterised).</summary>
    public async Task<object> RunAsync(NpgsqlDataSource dataSource, long campaignId, CancellationToken cancellationToken)
    {
        var where = new StringBuilder("c.campaign_id = $1 AND c.id > $2");
        var parameters = new List<NpgsqlParameter>
        {
            new() { Value = campaignId },
            new() { Value = AfterId },
        };
        string Add(object value, NpgsqlDbType type)
        {
            parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = type });
            return "$" + parameters.Count.ToString(CultureInfo.InvariantCulture);
        }

        if (Step is { } step)
        {
            where.Append(" AND c.step = ").Append(Add(step, NpgsqlDbType.Integer));
        }

        if (Rule is { } rule)
        {
            if (rule == "reward")
            {
                where.Append(" AND c.reward IS NOT NULL");
                if (Min is { } lo)
                {
                    where.Append(" AND c.reward >= ").Append(Add(lo, NpgsqlDbType.Double));
                }

                if (Max is { } hi)
                {
                    where.Append(" AND c.reward <= ").Append(Add(hi, NpgsqlDbType.Double));
                }
            }
            else
            {
                where.Append(" AND EXISTS (SELECT 1 FROM reward_scores f WHERE f.completion_id = c.id AND f.rule = ").Append(Add(rule, NpgsqlDbType.Text));
                if (Min is { } lo)
                {
                    where.Append(" AND f.value >= ").Append(Add(lo, NpgsqlDbType.Double));
                }

                if (Max is { } hi)
                {
                    where.Append(" AND f.value <= ").Append(Add(hi, NpgsqlDbType.Double));
                }

                where.Append(')');
            }
        }

        if (Accepted is { } accepted)
        {
            where.Append(accepted ? " AND s.id IS NOT NULL" : " AND s.id IS NULL");
        }

        if (Text is { } text)
        {
            var pattern = Add("%" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%", NpgsqlDbType.Text);
            where.Append(" AND (c.text ILIKE ").Append(pattern).Append(" OR c.prompt ILIKE ").Append(pattern).Append(')');
        }

        var limit = Add(Limit + 1, NpgsqlDbType.Integer);
        await using var command = dataSource.CreateCommand($$"""
            SELECT json_build_object(
                     'completion_id', c.id, 'step', c.step, 'policy_version', c.policy_version, 'prompt', c.prompt, 'text', c.text,
                     'finish_reason', c.finish_reason, 'tokens', cardinality(c.token_ids), 'reward', c.reward,
                     'scores', (SELECT coalesce(json_object_agg(r.rule, r.value), '{}'::json) FROM reward_scores r WHERE r.completion_id = c.id),
                     'accepted', s.id IS NOT NULL, 'reasoning', s.reasoning, 'answer', s.answer, 'verdicts', s.verdicts)::text, c.id
              FROM completions c LEFT JOIN sft_samples s ON s.completion_id = c.id
             WHERE {{where}}
             ORDER BY c.id
             LIMIT {{limit}}
            """);
        command.Parameters.AddRange(parameters.ToArray());
        var items = new List<JsonElement>();
        long last = 0;
        var more = false;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            if (items.Count == Limit)
            {
                more = true;
                break;
            }

            using var document = JsonDocument.Parse(reader.GetString(0));
            items.Add(document.RootElement.Clone());
            last = reader.GetInt64(1);
        }

        return new Dictionary<string, object?> { ["items"] = items, ["next_after_id"] = more ? last : null };
    }

    private static SampleQuery Fail(string error) => new() { Error = error };

    private static string Cut(string s) => s.Length > 40 ? s[..40] + "..." : s;
}
