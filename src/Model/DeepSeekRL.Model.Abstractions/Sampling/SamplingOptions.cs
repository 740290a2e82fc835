namespace DeepSeekRL.Model.Sampling;

// The knobs of generation: how a token is drawn (temperature, top-k, top-p, seed) and when a sequence ends (max tokens,
// stop ids, stop strings). A plain options object; the drawing is in Sampler, the loop in Inference.Generator.

/// <summary>How tokens are drawn and when generation stops.</summary>
public sealed class SamplingOptions
{
    /// <summary>The largest <see cref="TopLogProbs"/> (OpenAI's bound).</summary>
    public const int MaxTopLogProbs = 20;

    /// <summary>Softmax temperature; 0 = greedy (argmax). Default 1, at least 0.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep only the k most likely tokens; 0 = off (default).</summary>
    public int TopK { get; init; }

    /// <summary>Nucleus: keep the smallest set of most likely tokens whose mass reaches p; 1 = off (default). In (0, 1].</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>The seed; sequence i of a batch draws from its own stream seeded by (seed, i). Default 0.</summary>
    public ulong Seed { get; init; }

    /// <summary>Tokens to generate at most per sequence. Default 128.</summary>
    public int MaxTokens { get; init; } = 128;

    /// <summary>Token ids that end a sequence (the stop token is kept in the output). Default none.</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    /// <summary>Strings that end a sequence once the decoded completion contains one; needs <see cref="Detokenize"/>.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Turns generated token ids into text, for <see cref="StopStrings"/>. Default none.</summary>
    public Func<IReadOnlyList<int>, string>? Detokenize { get; init; }

    /// <summary>
    /// Also record, for every generated token, the k most likely tokens of the model's own distribution
    /// (log_softmax of the raw logits, before temperature, top-k and top-p, like <see cref="Inference.GeneratedSequence.LogProbs"/>).
    /// 0 = off (default, no cost); 0..20.
    /// </summary>
    public int TopLogProbs { get; init; }

    /// <summary>Use the MTP module for speculative decoding (one draft token per step). Default false.</summary>
    public bool SpeculativeMtp { get; init; }

    /// <summary>Checks the values.</summary>
    /// <returns>An error naming the option, or <see langword="null"/>.</returns>
    public string? Validate() =>
        !(Temperature >= 0) || float.IsInfinity(Temperature) ? $"temperature = {Temperature}: expected a finite value >= 0"
        : TopK < 0 ? $"top_k = {TopK}: expected >= 0"
        : !(TopP > 0 && TopP <= 1) ? $"top_p = {TopP}: expected a value in (0, 1]"
        : TopLogProbs is < 0 or > MaxTopLogProbs ? $"top_logprobs = {TopLogProbs}: expected 0..{MaxTopLogProbs}"
        : MaxTokens < 0 ? $"max_tokens = {MaxTokens}: expected >= 0"
        : StopStrings.Count > 0 && Detokenize is null ? "stop strings need a detokenizer"
        : null;
}
