using System.Diagnostics;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Sampling;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Reflection;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>
/// A rollout worker of the pool: samples G completions per prompt with per-token log-probs, in-process with the
/// latent KV cache for a native policy, through the OpenAI-compatible API for an endpoint policy; also evaluates.
/// One turn at a time per worker.
/// </summary>
/// <param name="catalog">The campaign definitions.</param>
/// <param name="policies">The held native policy versions.</param>
/// <param name="endpoints">The endpoint clients.</param>
public sealed class RolloutSampler(CampaignCatalog catalog, NativePolicyCache policies, EndpointPolicies endpoints)
{
    private readonly SemaphoreSlim _turn = new(1, 1);

    /// <inheritdoc/>
    public async Task<RolloutResult> RolloutAsync(RolloutWork work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        await _turn.WaitAsync(cancellationToken);
        try
        {
            var definition = await catalog.GetAsync(work.CampaignId, cancellationToken);
            var prompt = definition.Train[work.PromptIndex].Prompt;
            var algorithm = definition.Spec.Algorithm;
            if (definition.Spec.Policy is EndpointPolicySpec)
            {
                var started = Stopwatch.GetTimestamp();
                var (samples, errors) = await endpoints.SampleAsync(definition, definition.RenderPrompt(prompt), work.GroupSize,
                    algorithm.Temperature, algorithm.TopP, algorithm.MaxNewTokens, work.Seed, cancellationToken);
                return new RolloutResult(samples, samples.Sum(s => (long)s.LogProbs.Length), Stopwatch.GetElapsedTime(started).TotalSeconds, 0, errors);
            }

            var (policy, loadSeconds) = await policies.GetAsync(work.CampaignId, work.PolicyVersion, cancellationToken);
            return SampleNative(definition, policy, [work], loadSeconds, cancellationToken)[0];
        }
        finally
        {
            _turn.Release();
        }
    }

    /// <summary>
    /// Rolls out several items of one campaign and policy version with a native policy in one batched generation:
    /// each item's G samples come from the random streams it would use alone (its seed, indices 0..G-1), and each
    /// sequence's rows are computed independently of the others, so the results equal <see cref="RolloutAsync"/>'s.
    /// </summary>
    /// <param name="works">The items (same campaign, same policy version).</param>
    /// <param name="cancellationToken">Cancels between decode steps.</param>
    /// <returns>One result per item, in order; null when the campaign's policy is an endpoint (roll out one by one).</returns>
    public async Task<IReadOnlyList<RolloutResult>?> RolloutManyAsync(IReadOnlyList<RolloutWork> works, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(works);
        if (works.Count == 0)
        {
            return [];
        }

        if (works.Any(w => w.CampaignId != works[0].CampaignId || w.PolicyVersion != works[0].PolicyVersion))
        {
            throw new ArgumentException("a batched rollout needs items of one campaign and one policy version", nameof(works));
        }

        await _turn.WaitAsync(cancellationToken);
        try
        {
            var definition = await catalog.GetAsync(works[0].CampaignId, cancellationToken);
            if (definition.Spec.Policy is EndpointPolicySpec)
            {
                return null;
            }

            var (policy, loadSeconds) = await policies.GetAsync(works[0].CampaignId, works[0].PolicyVersion, cancellationToken);
            return SampleNative(definition, policy, works, loadSeconds, cancellationToken);
        }
        finally
        {
            _turn.Release();
        }
    }

    // Samples each item's G completions in one batched generation, item i's j-th from the stream (seed_i, j); the
    // batch's time is shared out by the tokens each item generated, the policy's load time goes to the first item.
    private static List<RolloutResult> SampleNative(
        CampaignDefinition definition, LoadedPolicy policy, IReadOnlyList<RolloutWork> works, double loadSeconds, CancellationToken cancellationToken)
    {
        var algorithm = definition.Spec.Algorithm;
        var t0 = Stopwatch.GetTimestamp();
        var prompts = new List<int[]>();
        var streams = new List<(ulong, int)>();
        foreach (var work in works)
        {
            var ids = definition.EncodePrompt(definition.Train[work.PromptIndex].Prompt);
            for (var j = 0; j < work.GroupSize; j++)
            {
                prompts.Add(ids);
                streams.Add((work.Seed, j));
            }
        }

        var options = Sampling(definition, (float)algorithm.Temperature, (float)algorithm.TopP, algorithm.MaxNewTokens, works[0].Seed);
        var result = policy.Sampler.Generate(prompts, streams, options, cancellationToken);
        var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        var allTokens = result.Sequences.Sum(s => (long)s.Tokens.Length);
        var results = new List<RolloutResult>(works.Count);
        var first = 0;
        foreach (var work in works)
        {
            var completions = result.Sequences.Skip(first).Take(work.GroupSize).Select(s => ToCompletion(definition, s)).ToList();
            first += work.GroupSize;
            var tokens = completions.Sum(c => (long)c.TokenIds.Length);
            var share = allTokens > 0 ? seconds * tokens / allTokens : seconds / works.Count;
            results.Add(new RolloutResult(completions, tokens, share, results.Count == 0 ? loadSeconds : 0, 0));
        }

        return results;
    }

    /// <summary>
    /// Drops the held policies of campaigns that finished, between turns (so never under a running generation): a
    /// sampler holds a copy of the model, and the engine's native memory for a libtorch one.
    /// </summary>
    /// <param name="campaignIds">The finished campaigns.</param>
    /// <param name="cancellationToken">Cancels the wait for the current turn.</param>
    /// <returns>How many campaigns' policies were dropped.</returns>
    public async Task<int> ReleaseAsync(IEnumerable<long> campaignIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(campaignIds);
        await _turn.WaitAsync(cancellationToken);
        try
        {
            return campaignIds.Count(policies.Forget);
        }
        finally
        {
            _turn.Release();
        }
    }

    /// <inheritdoc/>
    public async Task<EvaluationChunkResult> EvaluateAsync(EvaluationWork work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        await _turn.WaitAsync(cancellationToken);
        try
        {
            var definition = await catalog.GetAsync(work.CampaignId, cancellationToken);
            var evaluation = definition.Spec.Evaluation;
            var k = evaluation.Mode == EvaluationMode.Greedy ? 1 : evaluation.K;
            var temperature = evaluation.Mode == EvaluationMode.Greedy ? 0f : (float)definition.Spec.Algorithm.Temperature;
            var rows = definition.Eval.Skip(work.FirstPrompt).Take(work.Count).ToList();
            var samples = new List<(int Row, SampledCompletion Completion)>();
            var seed = unchecked((ulong)definition.Spec.Seed * 0x9E3779B97F4A7C15UL) ^ (ulong)(work.Step + 2) ^ ((ulong)work.FirstPrompt << 32);
            if (definition.Spec.Policy is EndpointPolicySpec)
            {
                for (var r = 0; r < rows.Count; r++)
                {
                    var (got, _) = await endpoints.SampleAsync(definition, definition.RenderPrompt(rows[r].Prompt), k, temperature,
                        definition.Spec.Algorithm.TopP, definition.Spec.Algorithm.MaxNewTokens, seed + (ulong)r, cancellationToken);
                    samples.AddRange(got.Select(c => (r, c)));
                }
            }
            else
            {
                var (policy, _) = await policies.GetAsync(work.CampaignId, work.PolicyVersion, cancellationToken);
                var prompts = new List<int[]>();
                foreach (var row in rows)
                {
                    var ids = definition.EncodePrompt(row.Prompt);
                    for (var j = 0; j < k; j++)
                    {
                        prompts.Add(ids);
                    }
                }

                var options = Sampling(definition, temperature, temperature == 0 ? 1f : (float)definition.Spec.Algorithm.TopP, definition.Spec.Algorithm.MaxNewTokens, seed);
                var result = policy.Sampler.Generate(prompts, Enumerable.Range(0, prompts.Count).Select(i => (options.Seed, i)).ToArray(), options, cancellationToken);
                for (var i = 0; i < result.Sequences.Count; i++)
                {
                    samples.Add((i / k, ToCompletion(definition, result.Sequences[i])));
                }
            }

            var inputs = samples.Select(s => new RewardInput(
                rows[s.Row].Prompt, definition.ScoredText(s.Completion.Text), rows[s.Row].Answer, s.Completion.TokenIds.Length, rows[s.Row].Fields)).ToList();
            var scores = await definition.Rewards.ScoreAsync(inputs, cancellationToken);
            var solved = new bool[rows.Count];
            double rewardSum = 0;
            long lengthSum = 0;
            int reasoning = 0, correctWhenReasoning = 0;
            var reflection = new ReflectionCounts();
            for (var i = 0; i < samples.Count; i++)
            {
                var correct = Evaluation.IsCorrect(definition, scores[i]);
                reflection.Add(Evaluation.Reflect(inputs[i].Completion), correct);
                solved[samples[i].Row] |= correct;
                rewardSum += scores[i].Reward;
                lengthSum += samples[i].Completion.TokenIds.Length > 0 ? samples[i].Completion.TokenIds.Length : samples[i].Completion.LogProbs.Length;
                if (Evaluation.WritesReasoning(definition.ScoredText(samples[i].Completion.Text)))
                {
                    reasoning++;
                    correctWhenReasoning += correct ? 1 : 0;
                }
            }

            return new EvaluationChunkResult(rows.Count, solved.Count(s => s), rewardSum, samples.Count, lengthSum, reasoning, correctWhenReasoning,
                Evaluation.Totals(reflection));
        }
        finally
        {
            _turn.Release();
        }
    }

    /// <summary>PostgreSQL text cannot hold NUL: generated NULs become U+FFFD (the token ids keep the truth).</summary>
    /// <param name="text">The text.</param>
    /// <returns>Storable text.</returns>
    public static string Storable(string text) => text.Contains('\0', StringComparison.Ordinal) ? text.Replace('\0', '\uFFFD') : text;

    private static SamplingOptions Sampling(CampaignDefinition definition, float temperature, float topP, int maxTokens, ulong seed) => new()
    {
        Temperature = temperature,
        TopP = topP,
        MaxTokens = maxTokens,
        Seed = seed,
        StopTokenIds = definition.Eos is { } eos ? [eos] : [],
    };

    private static SampledCompletion ToCompletion(CampaignDefinition definition, GeneratedSequence sequence)
    {
        var tokens = sequence.Tokens;
        var textTokens = sequence.Finish == FinishReason.StopToken ? tokens.AsSpan(0, tokens.Length - 1) : tokens;
        // A model's vocabulary may be padded past the tokenizer's: such ids have no text.
        var vocab = definition.Tokenizer!.VocabSize;
        var known = textTokens.ToArray().Where(id => id >= 0 && id < vocab).ToArray();
        var text = definition.Tokenizer.Decode(known, skipSpecialTokens: true);
        return new SampledCompletion(Storable(text), tokens, sequence.LogProbs, sequence.Finish == FinishReason.Length ? "length" : "stop");
    }
}

/// <summary>How evaluations judge a sample.</summary>
public static class Evaluation
{
    /// <summary>
    /// Whether a sample is correct. The campaign's correctness rules are its rules named <c>accuracy*</c> or
    /// <c>countdown*</c>, in pipeline order; the sample is judged by the first of them whose score for this sample is
    /// present (correct when that score is at least 1), so a campaign mixing task kinds (arithmetic rows scored by
    /// <c>accuracy</c>, Countdown rows by <c>countdown</c>) judges every row by the rule that applies to it. When the
    /// campaign has correctness rules but all are missing for the sample, it is not correct; with no correctness rule
    /// at all, a sample is correct when its total reward is above 0.
    /// </summary>
    /// <param name="definition">The campaign.</param>
    /// <param name="result">The sample's scores.</param>
    /// <returns>Whether it is correct.</returns>
    public static bool IsCorrect(CampaignDefinition definition, RewardResult result)
    {
        ArgumentNullException.ThrowIfNull(definition);
        return IsCorrect(definition.Rewards, result);
    }

    /// <summary>Whether a sample is correct, judged as <see cref="IsCorrect(CampaignDefinition, RewardResult)"/> does.</summary>
    /// <param name="rules">The campaign's reward pipeline (its rule order decides which correctness rule comes first).</param>
    /// <param name="result">The sample's scores from that pipeline.</param>
    /// <returns>Whether it is correct.</returns>
    public static bool IsCorrect(RewardPipeline rules, RewardResult result)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(result);
        if (CorrectnessRules(rules).Count == 0)
        {
            return result.Reward > 0;
        }

        return CorrectnessRule(rules, result) is { } rule && result[rule] is >= 1 - 1e-9;
    }

    /// <summary>The correctness rules of a pipeline: the rules named <c>accuracy*</c> or <c>countdown*</c>, in pipeline order.</summary>
    /// <param name="rules">The reward pipeline.</param>
    /// <returns>Their names (empty when there is none).</returns>
    public static IReadOnlyList<string> CorrectnessRules(RewardPipeline rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return rules.Rules.Select(r => r.Name).Where(n =>
            n.StartsWith("accuracy", StringComparison.Ordinal) || n.StartsWith("countdown", StringComparison.Ordinal)).ToList();
    }

    /// <summary>
    /// The rule that judges one sample's correctness: the first correctness rule (<see cref="CorrectnessRules"/>) whose
    /// score for this sample is present, or null when there is none (no correctness rule, or all missing).
    /// </summary>
    /// <param name="rules">The reward pipeline.</param>
    /// <param name="result">The sample's scores.</param>
    /// <returns>The rule's name, or null.</returns>
    public static string? CorrectnessRule(RewardPipeline rules, RewardResult result)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(result);
        return CorrectnessRules(rules).FirstOrDefault(n => result[n] is not null);
    }

    /// <summary>The rule that judges one sample's correctness in a campaign (see <see cref="CorrectnessRule(RewardPipeline, RewardResult)"/>).</summary>
    /// <param name="definition">The campaign.</param>
    /// <param name="result">The sample's scores.</param>
    /// <returns>The rule's name, or null.</returns>
    public static string? CorrectnessRule(CampaignDefinition definition, RewardResult result)
    {
        ArgumentNullException.ThrowIfNull(definition);
        return CorrectnessRule(definition.Rewards, result);
    }

    /// <summary>The self-verification a completion's reasoning shows (its check lines and their verdicts).</summary>
    /// <param name="text">The completion as scored.</param>
    /// <returns>The trace.</returns>
    public static ReflectionTrace Reflect(string text) => ReflectionTrace.Read(SplitReasoning(text).Reasoning);

    /// <summary>Counts as the cluster's message carries them.</summary>
    /// <param name="counts">The counts.</param>
    /// <returns>The totals.</returns>
    public static ReflectionTotals Totals(ReflectionCounts counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        return new ReflectionTotals(
            counts.Samples, counts.Correct, counts.Verifying, counts.Detecting, counts.Repairing, counts.CorrectWhenVerifying, counts.FirstAttemptCorrect);
    }

    /// <summary>
    /// One completion's self-verification bits, counted as <see cref="ReflectionCounts.Add(ReflectionTrace, bool)"/>
    /// counts it: a repair needs a correct final answer.
    /// </summary>
    /// <param name="trace">Its reflection.</param>
    /// <param name="correct">Whether its final answer is correct.</param>
    /// <returns>The bits stored as <c>completions.reflection</c>.</returns>
    public static ReflectionFlags Flags(ReflectionTrace trace, bool correct) =>
        (trace.Verifies ? ReflectionFlags.Verifies : ReflectionFlags.None)
        | (trace.Detects ? ReflectionFlags.Detects : ReflectionFlags.None)
        | (trace.PassedAfterFailure && correct ? ReflectionFlags.Repairs : ReflectionFlags.None);

    /// <summary>Totals as counts again (to turn sums read back from results into shares).</summary>
    /// <param name="totals">The totals.</param>
    /// <returns>The counts.</returns>
    public static ReflectionCounts Counts(ReflectionTotals totals)
    {
        ArgumentNullException.ThrowIfNull(totals);
        return new ReflectionCounts
        {
            Samples = totals.Samples, Correct = totals.CorrectSamples, Verifying = totals.Verifying, Detecting = totals.Detecting,
            Repairing = totals.Repairing, CorrectWhenVerifying = totals.CorrectWhenVerifying, FirstAttemptCorrect = totals.FirstAttemptCorrect,
        };
    }

    /// <summary>Whether a completion writes out its reasoning: a non-blank <c>&lt;think&gt;…&lt;/think&gt;</c> block.</summary>
    /// <param name="text">The completion as scored.</param>
    /// <returns>Whether it reasons.</returns>
    public static bool WritesReasoning(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var (reasoning, _) = SplitReasoning(text);
        return !string.IsNullOrWhiteSpace(reasoning);
    }

    /// <summary>Splits a completion into the reasoning (inside <c>&lt;think&gt;</c>) and the answer (after <c>&lt;/think&gt;</c>).</summary>
    /// <param name="text">The completion as scored.</param>
    /// <returns>The parts (reasoning empty when there is no closed think block).</returns>
    public static (string Reasoning, string Answer) SplitReasoning(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var open = text.IndexOf("<think>", StringComparison.Ordinal);
        var close = text.IndexOf("</think>", StringComparison.Ordinal);
        if (close < 0)
        {
            return (string.Empty, text.Trim());
        }

        var start = open >= 0 && open < close ? open + "<think>".Length : 0;
        return (text[start..close].Trim(), text[(close + "</think>".Length)..].Trim());
    }
}
