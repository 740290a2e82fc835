using DeepSeekRL.Campaigns.Specs;

namespace DeepSeekRL.Grains;

/// <summary>Where a campaign is in its life.</summary>
[GenerateSerializer]
[Alias("deepseekrl.CampaignState")]
public enum CampaignState
{
    /// <summary>Stored; no step has started.</summary>
    Created,

    /// <summary>Steps are being cut and run.</summary>
    Running,

    /// <summary>No new step is cut; work already handed out finishes.</summary>
    Paused,

    /// <summary>Stopped for good by a user; pending work was cancelled.</summary>
    Cancelled,

    /// <summary>Every step and the final evaluation are done.</summary>
    Completed,

    /// <summary>Stopped by an error that retrying cannot fix (see the status's error).</summary>
    Failed,
}

/// <summary>A campaign as the cluster sees it.</summary>
/// <param name="Id">The campaign id.</param>
/// <param name="Name">The spec's name.</param>
/// <param name="State">The state.</param>
/// <param name="Mode">Train or collect.</param>
/// <param name="StepsCompleted">Steps whose update (or, in collect mode, whose round) is done.</param>
/// <param name="TotalSteps">Steps in the spec.</param>
/// <param name="PolicyVersion">The newest published policy version.</param>
/// <param name="Error">Why the campaign failed, if it did.</param>
/// <param name="CreatedAt">When it was created.</param>
/// <param name="UpdatedAt">When its state last changed.</param>
/// <param name="Counters">Reported problems and totals by name (malformed dataset rows, missing reward scores by rule, endpoint errors, samples generated and accepted, ...).</param>
public sealed record CampaignStatus(
    long Id, string Name, CampaignState State, CampaignMode Mode, int StepsCompleted, int TotalSteps, int PolicyVersion,
    string? Error, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, IReadOnlyDictionary<string, long> Counters);

/// <summary>One rollout work item: G samples for each of a few prompts of a step, with the policy version to use.</summary>
/// <param name="CampaignId">The campaign.</param>
/// <param name="Step">The step (0-based).</param>
/// <param name="Round">0, or the dynamic-sampling round that asked for more groups.</param>
/// <param name="Slot">The item's position within the step and round (orders groups deterministically).</param>
/// <param name="PromptIndex">The prompt's index in the campaign's train split.</param>
/// <param name="GroupSize">Samples to draw (G).</param>
/// <param name="PolicyVersion">The policy version to sample with.</param>
/// <param name="Seed">The sampling seed of this group.</param>
public sealed record RolloutWork(long CampaignId, int Step, int Round, int Slot, int PromptIndex, int GroupSize, int PolicyVersion, ulong Seed);

/// <summary>One sampled completion.</summary>
/// <param name="Text">The completion text (stop token removed).</param>
/// <param name="TokenIds">Its token ids (the stop token included; empty for an endpoint policy, which reports no ids).</param>
/// <param name="LogProbs">The sampling log-probability of each token id (same length as <paramref name="TokenIds"/>).</param>
/// <param name="FinishReason"><c>stop</c> or <c>length</c>.</param>
public sealed record SampledCompletion(string Text, int[] TokenIds, float[] LogProbs, string FinishReason);

/// <summary>What a rollout produced.</summary>
/// <param name="Completions">The completions (G, or fewer when an endpoint failed for some; the failures are counted).</param>
/// <param name="CompletionTokens">Tokens generated.</param>
/// <param name="Seconds">Sampling time.</param>
/// <param name="PolicyLoadSeconds">Time spent fetching and loading the policy version (0 when it was held).</param>
/// <param name="EndpointErrors">Samples an endpoint failed to return (garbage, errors after retries).</param>
public sealed record RolloutResult(IReadOnlyList<SampledCompletion> Completions, long CompletionTokens, double Seconds, double PolicyLoadSeconds, int EndpointErrors);

/// <summary>One reward work item: score one rollout item's completions.</summary>
/// <param name="CampaignId">The campaign.</param>
/// <param name="Step">The step.</param>
/// <param name="RolloutItemId">The rollout item whose completions to score.</param>
public sealed record RewardWork(long CampaignId, int Step, long RolloutItemId);

/// <summary>A stored completion, as reward rules and the dataset see it.</summary>
/// <param name="Id">The completion id.</param>
/// <param name="Step">The step.</param>
/// <param name="PolicyVersion">The policy version that sampled it.</param>
/// <param name="PromptIndex">The prompt's index in the train split.</param>
/// <param name="Prompt">The question.</param>
/// <param name="Text">The completion text.</param>
/// <param name="Tokens">Its length in tokens (null when unknown).</param>
/// <param name="FinishReason"><c>stop</c> or <c>length</c>.</param>
public sealed record StoredCompletion(long Id, int Step, int PolicyVersion, int PromptIndex, string Prompt, string Text, int? Tokens, string FinishReason);

/// <summary>One completion's scores.</summary>
/// <param name="CompletionId">The completion.</param>
/// <param name="Scores">Per-rule scores in pipeline order (null = missing).</param>
/// <param name="Reward">The weighted total.</param>
/// <param name="Reflection">What its reasoning shows of self-verification (stored as <c>completions.reflection</c>).</param>
public sealed record CompletionScores(long CompletionId, IReadOnlyList<KeyValuePair<string, double?>> Scores, double Reward, ReflectionFlags Reflection);

/// <summary>
/// One completion's self-verification, as the bits of <c>completions.reflection</c> (see <c>DeepSeekRL.Rewards.Reflection</c>);
/// a completion that repairs also verifies and detects, so a repair is 7.
/// </summary>
[Flags]
public enum ReflectionFlags
{
    /// <summary>No check line with a verdict.</summary>
    None = 0,

    /// <summary>At least one check line with a verdict.</summary>
    Verifies = 1,

    /// <summary>At least one check failed.</summary>
    Detects = 2,

    /// <summary>A check failed, a later one passed, and the final answer is judged correct.</summary>
    Repairs = 4,
}

/// <summary>What scoring produced.</summary>
/// <param name="Scores">One per completion, in order.</param>
/// <param name="MissingByRule">Missing scores by rule (the rule threw, timed out or could not judge).</param>
/// <param name="Seconds">Scoring time.</param>
/// <param name="Reflection">The completions' self-verification counts.</param>
public sealed record RewardWorkResult(IReadOnlyList<CompletionScores> Scores, IReadOnlyDictionary<string, int> MissingByRule, double Seconds, ReflectionTotals Reflection);

/// <summary>A completion accepted by the rejection-sampling filter.</summary>
/// <param name="Completion">The completion.</param>
/// <param name="Reasoning">The text inside <c>&lt;think&gt;</c>.</param>
/// <param name="Answer">The text after <c>&lt;/think&gt;</c>.</param>
/// <param name="Reward">The total reward.</param>
/// <param name="ScoresJson">Per-rule scores (JSON object).</param>
/// <param name="VerdictsJson">Each filter's verdict (JSON object).</param>
public sealed record AcceptedSample(StoredCompletion Completion, string Reasoning, string Answer, double Reward, string ScoresJson, string VerdictsJson);

/// <summary>One evaluation work item: a chunk of the evaluation set under a policy version.</summary>
/// <param name="CampaignId">The campaign.</param>
/// <param name="Step">The step after which the evaluation runs (-1 = before any update).</param>
/// <param name="PolicyVersion">The policy version evaluated.</param>
/// <param name="FirstPrompt">The first evaluation prompt of the chunk.</param>
/// <param name="Count">Prompts in the chunk.</param>
public sealed record EvaluationWork(long CampaignId, int Step, int PolicyVersion, int FirstPrompt, int Count);

/// <summary>An evaluation chunk's result.</summary>
/// <param name="Prompts">Prompts evaluated.</param>
/// <param name="Correct">Prompts solved (pass@k: any of k samples).</param>
/// <param name="RewardSum">Sum of rewards over all samples.</param>
/// <param name="Samples">Samples drawn.</param>
/// <param name="LengthSum">Sum of completion lengths in tokens over all samples.</param>
/// <param name="Reasoning">Samples that wrote out a non-empty reasoning block.</param>
/// <param name="CorrectWhenReasoning">Of those, samples judged correct.</param>
/// <param name="Reflection">The samples' self-verification counts.</param>
public sealed record EvaluationChunkResult(
    int Prompts, int Correct, double RewardSum, int Samples, long LengthSum, int Reasoning, int CorrectWhenReasoning, ReflectionTotals Reflection);

/// <summary>Self-verification counts over some completions (see <c>DeepSeekRL.Rewards.Reflection</c>): summed as they
/// are, turned into shares when reported.</summary>
/// <param name="Samples">Completions counted.</param>
/// <param name="CorrectSamples">Completions judged correct.</param>
/// <param name="Verifying">Completions with a check line.</param>
/// <param name="Detecting">Completions with a failed check.</param>
/// <param name="Repairing">Completions with a failed check, a later passing one, and a correct answer.</param>
/// <param name="CorrectWhenVerifying">Correct completions among those that verify.</param>
/// <param name="FirstAttemptCorrect">Correct completions whose first check (if any) passed.</param>
public sealed record ReflectionTotals(
    long Samples, long CorrectSamples, long Verifying, long Detecting, long Repairing, long CorrectWhenVerifying, long FirstAttemptCorrect);

/// <summary>A step as the learner closed it.</summary>
/// <param name="Step">The step.</param>
/// <param name="PolicyVersion">The policy version published after it (unchanged in collect mode).</param>
/// <param name="Metrics">The metrics written for it (a JSON object).</param>
/// <param name="Replayed">True when the step had been closed before and was recomputed from stored data after a restart.</param>
[GenerateSerializer]
[Immutable]
[Alias("deepseekrl.LearnerStepResult")]
public sealed record LearnerStepResult(int Step, int PolicyVersion, string Metrics, bool Replayed);

/// <summary>Where an opened learner stands.</summary>
/// <param name="NextStep">The first step after its checkpoint (the next to close).</param>
/// <param name="PolicyVersion">The policy version it holds.</param>
/// <param name="Epoch">The epoch of the learner lease it took (its writes are fenced by it).</param>
[GenerateSerializer]
[Immutable]
[Alias("deepseekrl.LearnerPosition")]
public sealed record LearnerPosition(int NextStep, int PolicyVersion, long Epoch);

/// <summary>A work item claimed (leased) by a silo, handed to a worker grain on that silo.</summary>
/// <param name="Id">The item id.</param>
/// <param name="CampaignId">Its campaign.</param>
/// <param name="Kind">rollout, eval or reward.</param>
/// <param name="IdempotencyKey">Its key within the campaign.</param>
/// <param name="Payload">Its payload (JSON).</param>
/// <param name="Attempt">This attempt's number (1 on the first claim).</param>
/// <param name="PolicyVersion">The policy version it needs, if any.</param>
/// <param name="Holder">The silo holding the lease (its name).</param>
/// <param name="HolderGeneration">That silo's Orleans generation.</param>
/// <param name="LeaseExpiresAt">When the lease expires unless renewed.</param>
[GenerateSerializer]
[Immutable]
[Alias("deepseekrl.ClaimedWork")]
public sealed record ClaimedWork(
    long Id, long CampaignId, string Kind, string IdempotencyKey, string Payload, int Attempt, int? PolicyVersion,
    string Holder, long HolderGeneration, DateTimeOffset LeaseExpiresAt);

/// <summary>What became of a claimed item.</summary>
/// <param name="ItemId">The item.</param>
/// <param name="Completed">Whether its result was written (or had been, by an earlier attempt's lost reply); for a
/// rollout, whether its result went to the write that commits it just after the call returns.</param>
/// <param name="Error">Why not: the item was failed with this error (retried while attempts remain), or its lease had been lost.</param>
[GenerateSerializer]
[Immutable]
[Alias("deepseekrl.WorkOutcome")]
public sealed record WorkOutcome(long ItemId, bool Completed, string? Error);
