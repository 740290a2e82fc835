using System.Globalization;
using System.Text;
using DeepSeekRL.Grains;
using Npgsql;
using NpgsqlTypes;

namespace DeepSeekRL.Storage.Stores;

/// <summary>What the sample browser asks for.</summary>
/// <param name="CampaignId">The campaign.</param>
/// <param name="AfterId">Only completions with a larger id (paging).</param>
/// <param name="Limit">Page size.</param>
/// <param name="Step">Only this step.</param>
/// <param name="Rule">Only completions with a score of this rule ("reward": the total), within Min..Max.</param>
/// <param name="Min">Lowest score.</param>
/// <param name="Max">Highest score.</param>
/// <param name="Accepted">Only accepted (or only rejected) completions.</param>
/// <param name="Text">Only completions whose text or prompt contains this (case-insensitive, literal).</param>
/// <param name="Reflection">Only completions whose stored reflection has all of these bits (None: no filter).</param>
public sealed record CompletionFilter(
    long CampaignId, long AfterId, int Limit, int? Step, string? Rule, double? Min, double? Max, bool? Accepted, string? Text,
    ReflectionFlags Reflection = ReflectionFlags.None);

/// <summary>A page of completions.</summary>
/// <param name="Items">Each completion as a JSON object (text, scores, acceptance, reasoning, answer, verdicts, and
/// <c>reflection</c>: its self-verification bits, null until scored).</param>
/// <param name="NextAfterId">The id to continue after, or null on the last page.</param>
public sealed record CompletionPage(IReadOnlyList<string> Items, long? NextAfterId);

/// <summary>Pages through a campaign's completions for the sample browser.</summary>
/// <param name="dataSource">The database.</param>
public sealed class CompletionBrowser(NpgsqlDataSource dataSource)
{
    /// <summary>One page of a campaign's completions matching a filter, oldest first (parameterised SQL).</summary>
    /// <param name="filter">The filter.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The page.</returns>
    public async Task<CompletionPage> PageAsync(CompletionFilter filter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var (campaignId, AfterId, Limit, Step, Rule, Min, Max, Accepted, Text, Reflection) = filter;
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

        if (Reflection != ReflectionFlags.None)
        {
            // reflection > 0 lets the partial index completions_reflecting serve the page.
            var bits = Add((short)Reflection, NpgsqlDbType.Smallint);
            where.Append(" AND c.reflection > 0 AND (c.reflection & ").Append(bits).Append(") = ").Append(bits);
        }

        var limit = Add(Limit + 1, NpgsqlDbType.Integer);
        await using var command = dataSource.CreateCommand($$"""
            SELECT json_build_object(
                     'completion_id', c.id, 'step', c.step, 'policy_version', c.policy_version, 'prompt', c.prompt, 'text', c.text,
                     'finish_reason', c.finish_reason, 'tokens', cardinality(c.token_ids), 'reward', c.reward, 'reflection', c.reflection,
                     'scores', (SELECT coalesce(json_object_agg(r.rule, r.value), '{}'::json) FROM reward_scores r WHERE r.completion_id = c.id),
                     'accepted', s.id IS NOT NULL, 'reasoning', s.reasoning, 'answer', s.answer, 'verdicts', s.verdicts)::text, c.id
              FROM completions c LEFT JOIN sft_samples s ON s.completion_id = c.id
             WHERE {{where}}
             ORDER BY c.id
             LIMIT {{limit}}
            """);
        command.Parameters.AddRange(parameters.ToArray());
        var items = new List<string>();
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

            items.Add(reader.GetString(0));
            last = reader.GetInt64(1);
        }

        return new CompletionPage(items, more ? last : null);
    }
}
