using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Reflection;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>A reward worker of the pool: scores completions with the campaign's reward pipeline.</summary>
/// <param name="catalog">The campaign definitions.</param>
public sealed class RewardScorer(CampaignCatalog catalog)
{
    /// <inheritdoc/>
    public async Task<RewardWorkResult> ScoreAsync(RewardWork work, IReadOnlyList<StoredCompletion> completions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        ArgumentNullException.ThrowIfNull(completions);
        var started = Stopwatch.GetTimestamp();
        var definition = await catalog.GetAsync(work.CampaignId, cancellationToken);
        var inputs = completions.Select(c =>
        {
            var row = definition.Train[c.PromptIndex];
            return new RewardInput(row.Prompt, definition.ScoredText(c.Text), row.Answer, c.Tokens, row.Fields,
                unchecked((int)(c.Id ^ definition.Spec.Seed)));
        }).ToList();
        var results = await definition.Rewards.ScoreAsync(inputs, cancellationToken);
        var missing = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var scores = new List<CompletionScores>(completions.Count);
        var reflection = new ReflectionCounts();
        for (var i = 0; i < completions.Count; i++)
        {
            var trace = Evaluation.Reflect(inputs[i].Completion);
            var correct = Evaluation.IsCorrect(definition, results[i]);
            reflection.Add(trace, correct);
            foreach (var rule in results[i].Missing)
            {
                missing[rule] = missing.GetValueOrDefault(rule) + 1;
            }

            scores.Add(new CompletionScores(completions[i].Id, results[i].Scores, results[i].Reward, Evaluation.Flags(trace, correct)));
        }

        return new RewardWorkResult(scores, missing, Stopwatch.GetElapsedTime(started).TotalSeconds, Evaluation.Totals(reflection));
    }
}

/// <summary>A campaign's dataset: the rejection-sampling filter, and export of the accepted samples.</summary>
/// <param name="definition">The campaign.</param>
/// <param name="dataSource">The database (for export).</param>
public sealed class SampleFilter(CampaignDefinition definition, Npgsql.NpgsqlDataSource dataSource)
{
    /// <inheritdoc/>
    public IReadOnlyList<AcceptedSample> Select(IReadOnlyList<StoredCompletion> completions, IReadOnlyList<CompletionScores> scores)
    {
        ArgumentNullException.ThrowIfNull(completions);
        ArgumentNullException.ThrowIfNull(scores);
        var accepted = new List<AcceptedSample>();
        for (var i = 0; i < completions.Count; i++)
        {
            var text = definition.ScoredText(completions[i].Text);
            var (reasoning, answer) = Evaluation.SplitReasoning(text);
            var verdicts = new SortedDictionary<string, bool>(StringComparer.Ordinal);
            var pass = true;
            foreach (var filter in definition.Spec.RejectionSampling)
            {
                bool ok;
                string key;
                if (filter.NoCodeInReasoning)
                {
                    key = "no_code_in_reasoning";
                    ok = !reasoning.Contains("```", StringComparison.Ordinal);
                }
                else
                {
                    key = $"{filter.Rule}{Symbol(filter.Operator)}{filter.Value.ToString("R", CultureInfo.InvariantCulture)}";
                    var value = scores[i].Scores.FirstOrDefault(s => s.Key == filter.Rule).Value;
                    ok = value is { } v ? Passes(v, filter.Operator, filter.Value) : filter.WhenMissing == MissingScorePolicy.Pass;
                }

                verdicts[key] = ok;
                pass &= ok;
            }

            if (pass)
            {
                var scoreObject = scores[i].Scores.ToDictionary(s => s.Key, s => s.Value, StringComparer.Ordinal);
                accepted.Add(new AcceptedSample(completions[i], reasoning, answer, scores[i].Reward,
                    JsonSerializer.Serialize(scoreObject), JsonSerializer.Serialize(verdicts)));
            }
        }

        return accepted;
    }

    /// <inheritdoc/>
    public async Task<long> ExportAsync(Stream destination, CancellationToken cancellationToken)
    {
        var (count, _) = await DeepSeekRL.Storage.Stores.SftExporter.ExportAsync(dataSource, new DeepSeekRL.Storage.Stores.SftExportFilter(definition.Id), destination, cancellationToken);
        return count;
    }

    private static bool Passes(double value, FilterOperator op, double threshold) => op switch
    {
        FilterOperator.Equal => Math.Abs(value - threshold) <= 1e-9,
        FilterOperator.GreaterOrEqual => value >= threshold - 1e-9,
        FilterOperator.LessOrEqual => value <= threshold + 1e-9,
        FilterOperator.Greater => value > threshold,
        FilterOperator.Less => value < threshold,
        _ => false,
    };

    private static string Symbol(FilterOperator op) => op switch
    {
        FilterOperator.Equal => "==",
        FilterOperator.GreaterOrEqual => ">=",
        FilterOperator.LessOrEqual => "<=",
        FilterOperator.Greater => ">",
        _ => "<",
    };
}
