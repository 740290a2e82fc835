using System.Text.Json;

namespace DeepSeekRL.Rewards;

/// <summary>
/// Everything a rule may look at for one completion. A readonly struct built through its constructor, so that fields
/// can be added later without breaking plugins (as Polly's <c>OnRetryArguments</c>).
/// </summary>
public readonly struct RewardArguments
{
    /// <summary>Creates the arguments.</summary>
    /// <param name="prompt">The prompt (user turn) text.</param>
    /// <param name="completion">The completion (assistant turn) text, including any <c>&lt;think&gt;</c> block.</param>
    /// <param name="answer">The gold answer, or <see langword="null"/> when the dataset has none.</param>
    /// <param name="completionTokens">The completion's length in tokens, when known.</param>
    /// <param name="fields">Further fields of the input row (e.g. test cases, Countdown numbers), by name.</param>
    /// <param name="batch">Statistics of the batch this completion is scored in (for batch-relative rules).</param>
    /// <param name="seed">A seed for any randomness the rule needs.</param>
    /// <param name="timeProvider">The clock the rule must use.</param>
    public RewardArguments(
        string prompt, string completion, string? answer, int? completionTokens = null,
        IReadOnlyDictionary<string, JsonElement>? fields = null, RewardBatchInfo? batch = null, int seed = 0,
        TimeProvider? timeProvider = null)
    {
        Prompt = prompt ?? string.Empty;
        Completion = completion ?? string.Empty;
        Answer = answer;
        CompletionTokens = completionTokens;
        Fields = fields ?? EmptyFields;
        Batch = batch ?? RewardBatchInfo.Single(Completion.Length, completionTokens);
        Seed = seed;
        TimeProvider = timeProvider ?? TimeProvider.System;
    }

    private static readonly IReadOnlyDictionary<string, JsonElement> EmptyFields = new Dictionary<string, JsonElement>();

    /// <summary>The prompt text.</summary>
    public string Prompt { get; }

    /// <summary>The completion text.</summary>
    public string Completion { get; }

    /// <summary>The gold answer, if any.</summary>
    public string? Answer { get; }

    /// <summary>The completion length in tokens, if known.</summary>
    public int? CompletionTokens { get; }

    /// <summary>Further fields of the input row.</summary>
    public IReadOnlyDictionary<string, JsonElement> Fields { get; }

    /// <summary>Statistics of the batch being scored.</summary>
    public RewardBatchInfo Batch { get; }

    /// <summary>The seed for randomness.</summary>
    public int Seed { get; }

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; }
}

/// <summary>Statistics of a batch of completions, for batch-relative rules such as Kimi's length penalty.</summary>
/// <param name="Count">Completions in the batch.</param>
/// <param name="MinChars">Shortest completion, in characters.</param>
/// <param name="MaxChars">Longest completion, in characters.</param>
/// <param name="MinTokens">Shortest completion in tokens, when every length is known.</param>
/// <param name="MaxTokens">Longest completion in tokens, when every length is known.</param>
public sealed record RewardBatchInfo(int Count, int MinChars, int MaxChars, int? MinTokens, int? MaxTokens)
{
    /// <summary>The statistics of a batch of one.</summary>
    /// <param name="chars">Its length in characters.</param>
    /// <param name="tokens">Its length in tokens, if known.</param>
    /// <returns>The statistics.</returns>
    public static RewardBatchInfo Single(int chars, int? tokens) => new(1, chars, chars, tokens, tokens);
}
