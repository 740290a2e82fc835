namespace DeepSeekRL.Storage.Stores;

/// <summary>A sampled completion with its per-token log-probabilities.</summary>
/// <param name="CampaignId">The campaign.</param>
/// <param name="Step">The step it was sampled for.</param>
/// <param name="ItemId">The rollout work item that produced it.</param>
/// <param name="SampleIndex">Its index within the item's group (0..G-1).</param>
/// <param name="PolicyVersion">The policy version that sampled it.</param>
/// <param name="Prompt">The prompt text.</param>
/// <param name="TokenIds">The completion's token ids.</param>
/// <param name="Text">The completion's text.</param>
/// <param name="Logprobs">The sampling log-probability of each token (same length as <paramref name="TokenIds"/>).</param>
/// <param name="FinishReason"><c>stop</c>, <c>length</c>, ...</param>
public sealed record CompletionRecord(
    long CampaignId, int Step, long ItemId, int SampleIndex, int PolicyVersion, string Prompt,
    int[] TokenIds, string Text, float[] Logprobs, string FinishReason);

/// <summary>One rule's score of one completion; <see langword="null"/> is a missing score.</summary>
/// <param name="CompletionId">The completion.</param>
/// <param name="Rule">The rule name.</param>
/// <param name="Value">The score, or <see langword="null"/> when the rule could not judge.</param>
public sealed record RewardScore(long CompletionId, string Rule, double? Value);

/// <summary>An SFT sample with its provenance.</summary>
/// <param name="CampaignId">The campaign.</param>
/// <param name="Step">The step.</param>
/// <param name="PolicyVersion">The policy version that wrote it.</param>
/// <param name="CompletionId">The completion it came from (unique: a completion becomes at most one sample), if any.</param>
/// <param name="Prompt">The user prompt.</param>
/// <param name="Reasoning">The chain of thought (inside <c>&lt;think&gt;</c>).</param>
/// <param name="Answer">The final answer part.</param>
/// <param name="Reward">The total reward.</param>
/// <param name="ScoresJson">Per-rule scores, a JSON object (null values are missing scores).</param>
/// <param name="VerdictsJson">Rejection-sampling filter verdicts, a JSON object.</param>
public sealed record SftSample(
    long CampaignId, int Step, int PolicyVersion, long? CompletionId, string Prompt, string Reasoning, string Answer,
    double? Reward, string ScoresJson, string VerdictsJson);
