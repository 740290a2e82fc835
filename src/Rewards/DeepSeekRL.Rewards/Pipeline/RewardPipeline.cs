using System.Diagnostics.Metrics;
using System.Text.Json;

namespace DeepSeekRL.Rewards.Pipeline;

/// <summary>One completion to score.</summary>
/// <param name="Prompt">The prompt.</param>
/// <param name="Completion">The completion.</param>
/// <param name="Answer">The gold answer, if any.</param>
/// <param name="CompletionTokens">The completion's length in tokens, if known.</param>
/// <param name="Fields">Further fields of the row (test cases, Countdown numbers, ...).</param>
/// <param name="Seed">The seed for rules that need randomness.</param>
public sealed record RewardInput(
    string Prompt, string Completion, string? Answer, int? CompletionTokens = null,
    IReadOnlyDictionary<string, JsonElement>? Fields = null, int Seed = 0);

/// <summary>The scores of one completion.</summary>
/// <param name="Scores">Each rule's score by rule name, in pipeline order; <see langword="null"/> is missing.</param>
/// <param name="Reward">The weighted sum over the present scores.</param>
/// <param name="Missing">The rules whose score is missing, in pipeline order.</param>
/// <param name="Reasons">Why scores are missing (or rule notes), by rule name.</param>
public sealed record RewardResult(
    IReadOnlyList<KeyValuePair<string, double?>> Scores, double Reward, IReadOnlyList<string> Missing,
    IReadOnlyDictionary<string, string> Reasons)
{
    /// <summary>The score of <paramref name="rule"/>, or <see langword="null"/> when missing or not in the pipeline.</summary>
    /// <param name="rule">The rule name.</param>
    /// <returns>The score.</returns>
    public double? this[string rule] => Scores.FirstOrDefault(s => s.Key == rule).Value;
}

/// <summary>Per-rule counts since the pipeline was built.</summary>
/// <param name="Rule">The rule name.</param>
/// <param name="Scored">Scores produced.</param>
/// <param name="Missing">Missing scores returned by the rule itself (it could not judge).</param>
/// <param name="Errors">Calls that threw.</param>
/// <param name="Timeouts">Calls that exceeded the time limit.</param>
/// <param name="NotFinite">Scores that were NaN or infinite.</param>
public sealed record RewardRuleStats(string Rule, long Scored, long Missing, long Errors, long Timeouts, long NotFinite);

/// <summary>
/// Scores completions with every rule, in parallel over completions. A rule that throws, times out or returns a
/// non-finite number gives a missing score for that rule only, counted in <see cref="GetStats"/>; it never sinks the
/// batch and never silently becomes 0 or 1.
/// </summary>
/// <remarks>Thread-safe. Build once, use for many batches.</remarks>
public sealed class RewardPipeline
{
    private static readonly Meter Meter = new("DeepSeekRL.Rewards");
    private static readonly Counter<long> MissingCounter = Meter.CreateCounter<long>("deepseekrl.rewards.missing", description: "Missing reward scores, by rule and cause");
    private readonly RewardRuleEntry[] _rules;
    private readonly int _parallelism;
    private readonly TimeProvider _timeProvider;
    private readonly long[,] _counts;

    internal RewardPipeline(RewardRuleEntry[] rules, int parallelism, TimeProvider timeProvider)
    {
        _rules = rules;
        _parallelism = parallelism;
        _timeProvider = timeProvider;
        _counts = new long[rules.Length, 5];
    }

    /// <summary>The rules, in order.</summary>
    public IReadOnlyList<RewardRuleEntry> Rules => _rules;

    /// <summary>Scores a batch. Batch-relative rules see the statistics of this batch.</summary>
    /// <param name="inputs">The completions.</param>
    /// <param name="cancellationToken">Cancels the batch.</param>
    /// <returns>One result per input, in order.</returns>
    public async Task<IReadOnlyList<RewardResult>> ScoreAsync(IReadOnlyList<RewardInput> inputs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var batch = BatchInfo(inputs);
        var args = new RewardArguments[inputs.Count];
        for (var i = 0; i < inputs.Count; i++)
        {
            var x = inputs[i];
            args[i] = new RewardArguments(x.Prompt, x.Completion, x.Answer, x.CompletionTokens, x.Fields, batch, x.Seed, _timeProvider);
        }

        // outcomes[rule][input]
        var outcomes = new RewardOutcome[_rules.Length][];
        for (var r = 0; r < _rules.Length; r++)
        {
            outcomes[r] = new RewardOutcome[inputs.Count];
            if (_rules[r].Rule is IBatchRewardRule batchRule)
            {
                outcomes[r] = await ScoreBatchRuleAsync(r, batchRule, args, cancellationToken);
            }
        }

        var perInputRules = Enumerable.Range(0, _rules.Length).Where(r => _rules[r].Rule is not IBatchRewardRule).ToArray();
        if (perInputRules.Length > 0)
        {
            await Parallel.ForEachAsync(
                Partitions(inputs.Count), new ParallelOptions { MaxDegreeOfParallelism = _parallelism, CancellationToken = cancellationToken },
                async (range, ct) =>
                {
                    for (var i = range.Start; i < range.End; i++)
                    {
                        foreach (var r in perInputRules)
                        {
                            outcomes[r][i] = await ScoreOneAsync(r, args[i], ct);
                        }
                    }
                });
        }

        var results = new RewardResult[inputs.Count];
        for (var i = 0; i < inputs.Count; i++)
        {
            var scores = new KeyValuePair<string, double?>[_rules.Length];
            var missing = new List<string>();
            var reasons = new Dictionary<string, string>();
            var reward = 0.0;
            for (var r = 0; r < _rules.Length; r++)
            {
                var outcome = outcomes[r][i];
                scores[r] = new(_rules[r].Name, outcome.Value);
                if (outcome.Value is double v)
                {
                    reward += _rules[r].Weight * v;
                }
                else
                {
                    missing.Add(_rules[r].Name);
                }

                if (outcome.Reason is not null)
                {
                    reasons[_rules[r].Name] = outcome.Reason;
                }
            }

            results[i] = new RewardResult(scores, reward, missing, reasons);
        }

        return results;
    }

    /// <summary>The per-rule counts since the pipeline was built.</summary>
    /// <returns>One entry per rule.</returns>
    public IReadOnlyList<RewardRuleStats> GetStats()
    {
        var stats = new RewardRuleStats[_rules.Length];
        for (var r = 0; r < _rules.Length; r++)
        {
            stats[r] = new RewardRuleStats(_rules[r].Name, Volatile.Read(ref _counts[r, 0]), Volatile.Read(ref _counts[r, 1]),
                Volatile.Read(ref _counts[r, 2]), Volatile.Read(ref _counts[r, 3]), Volatile.Read(ref _counts[r, 4]));
        }

        return stats;
    }

    private async ValueTask<RewardOutcome> ScoreOneAsync(int r, RewardArguments args, CancellationToken cancellationToken)
    {
        var entry = _rules[r];
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        linked.CancelAfter(entry.Timeout);
        try
        {
            var task = entry.Rule.ScoreAsync(args, linked.Token);
            var outcome = task.IsCompletedSuccessfully ? task.Result : await task.AsTask().WaitAsync(entry.Timeout, cancellationToken);
            return Count(r, outcome);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Fail(r, 3, $"timed out after {entry.Timeout.TotalMilliseconds:0} ms");
        }
        catch (TimeoutException)
        {
            return Fail(r, 3, $"timed out after {entry.Timeout.TotalMilliseconds:0} ms");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return Fail(r, 2, $"{ex.GetType().Name}: {ex.Message}");
        }
    }

    private async Task<RewardOutcome[]> ScoreBatchRuleAsync(int r, IBatchRewardRule rule, RewardArguments[] args, CancellationToken cancellationToken)
    {
        var entry = _rules[r];
        var outcomes = new RewardOutcome[args.Length];
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(entry.Timeout);
            var scored = await rule.ScoreBatchAsync(args, timeout.Token).AsTask().WaitAsync(entry.Timeout, cancellationToken);
            if (scored.Count != args.Length)
            {
                Array.Fill(outcomes, Fail(r, 2, $"returned {scored.Count} scores for {args.Length} completions", args.Length));
                return outcomes;
            }

            for (var i = 0; i < args.Length; i++)
            {
                outcomes[i] = Count(r, scored[i]);
            }
        }
        catch (Exception ex) when ((ex is OperationCanceledException or TimeoutException) && !cancellationToken.IsCancellationRequested)
        {
            Array.Fill(outcomes, Fail(r, 3, $"timed out after {entry.Timeout.TotalMilliseconds:0} ms", args.Length));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Array.Fill(outcomes, Fail(r, 2, $"{ex.GetType().Name}: {ex.Message}", args.Length));
        }

        return outcomes;
    }

    private RewardOutcome Count(int r, RewardOutcome outcome)
    {
        if (outcome.Value is double v)
        {
            if (!double.IsFinite(v))
            {
                return Fail(r, 4, $"returned {v}");
            }

            Interlocked.Increment(ref _counts[r, 0]);
            return outcome;
        }

        Interlocked.Increment(ref _counts[r, 1]);
        MissingCounter.Add(1, new KeyValuePair<string, object?>("rule", _rules[r].Name), new KeyValuePair<string, object?>("cause", "rule"));
        return outcome;
    }

    private RewardOutcome Fail(int r, int kind, string reason, int count = 1)
    {
        Interlocked.Add(ref _counts[r, kind], count);
        var cause = kind switch { 2 => "error", 3 => "timeout", _ => "not_finite" };
        MissingCounter.Add(count, new KeyValuePair<string, object?>("rule", _rules[r].Name), new KeyValuePair<string, object?>("cause", cause));
        return RewardOutcome.Missing($"{_rules[r].Name} {cause}: {reason}");
    }

    private IEnumerable<(int Start, int End)> Partitions(int count)
    {
        // Chunks of a few completions amortise the scheduling; small batches still spread over the cores.
        var chunk = Math.Clamp(count / (_parallelism * 8), 1, 64);
        for (var start = 0; start < count; start += chunk)
        {
            yield return (start, Math.Min(count, start + chunk));
        }
    }

    private static RewardBatchInfo BatchInfo(IReadOnlyList<RewardInput> inputs)
    {
        if (inputs.Count == 0)
        {
            return new RewardBatchInfo(0, 0, 0, null, null);
        }

        int minChars = int.MaxValue, maxChars = 0, minTokens = int.MaxValue, maxTokens = 0;
        var tokensKnown = true;
        foreach (var x in inputs)
        {
            minChars = Math.Min(minChars, x.Completion.Length);
            maxChars = Math.Max(maxChars, x.Completion.Length);
            if (x.CompletionTokens is int t)
            {
                minTokens = Math.Min(minTokens, t);
                maxTokens = Math.Max(maxTokens, t);
            }
            else
            {
                tokensKnown = false;
            }
        }

        return new RewardBatchInfo(inputs.Count, minChars, maxChars, tokensKnown ? minTokens : null, tokensKnown ? maxTokens : null);
    }
}
