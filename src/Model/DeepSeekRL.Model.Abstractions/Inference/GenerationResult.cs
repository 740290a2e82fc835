using DeepSeekRL.Model.Sampling;

namespace DeepSeekRL.Model.Inference;

// What generation returns, whichever engine decoded: the sequences, their log-probs and why each ended.

/// <summary>Why a sequence ended.</summary>
public enum FinishReason
{
    /// <summary>It produced <see cref="SamplingOptions.MaxTokens"/> tokens (or filled the context).</summary>
    Length,

    /// <summary>It produced a stop token id.</summary>
    StopToken,

    /// <summary>Its text contains a stop string.</summary>
    StopString,
}

/// <summary>One generated sequence.</summary>
/// <param name="Tokens">The generated tokens (without the prompt).</param>
/// <param name="LogProbs">log_softmax(logits)[token] of each generated token, from the raw (unscaled) model logits.</param>
/// <param name="Finish">Why it ended.</param>
/// <param name="TopLogProbs">
/// With <see cref="SamplingOptions.TopLogProbs"/> = k > 0: for each generated token, the k most likely tokens of the same
/// distribution as <paramref name="LogProbs"/>, most likely first (ties to the lower id); else <see langword="null"/>.
/// </param>
public sealed record GeneratedSequence(int[] Tokens, float[] LogProbs, FinishReason Finish, TokenLogProb[][]? TopLogProbs = null);

/// <summary>A token and its log-probability.</summary>
/// <param name="Id">The token id.</param>
/// <param name="LogProb">log_softmax(logits)[Id].</param>
public readonly record struct TokenLogProb(int Id, float LogProb);

/// <summary>The result of <c>Generator.Generate</c>.</summary>
/// <param name="Sequences">One per prompt, in prompt order.</param>
/// <param name="DraftsProposed">MTP drafts proposed (speculative mode; else 0).</param>
/// <param name="DraftsAccepted">MTP drafts accepted.</param>
public sealed record GenerationResult(IReadOnlyList<GeneratedSequence> Sequences, int DraftsProposed, int DraftsAccepted)
{
    /// <summary>Accepted / proposed drafts (0 when none were proposed).</summary>
    public double AcceptanceRate => DraftsProposed == 0 ? 0 : DraftsAccepted / (double)DraftsProposed;
}
