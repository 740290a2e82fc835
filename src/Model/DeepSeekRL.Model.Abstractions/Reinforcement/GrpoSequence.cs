namespace DeepSeekRL.Model.Reinforcement;

/// <summary>One rollout for a GRPO update: the prompt, the sampled completion, how it was sampled and its advantage.</summary>
/// <param name="Prompt">The prompt tokens (at least one: the last one predicts the first completion token).</param>
/// <param name="Completion">The completion tokens (at least one); only these carry loss.</param>
/// <param name="SamplingLogProbs">
/// logp of each completion token under the policy that sampled it (the rollout worker, at the same temperature), one
/// per completion token; empty when unknown, which disables the off-policy correction for this sequence.
/// </param>
/// <param name="Advantage">A, the same for every token of the completion (see <see cref="PolicyLosses.Advantages"/>).</param>
/// <remarks>Arrays are held by reference and not copied; do not mutate them while an update runs.</remarks>
public sealed record GrpoSequence(int[] Prompt, int[] Completion, float[] SamplingLogProbs, double Advantage);
