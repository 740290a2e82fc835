using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Readability;

/// <summary>
/// <c>code_in_reasoning</c>: 1 when the chain of thought holds at most
/// <see cref="CodeInReasoningRewardOptions.MaxBlocks"/> fenced code blocks (default none), else 0. 1 = clean.
/// </summary>
/// <remarks>
/// A block opens at a line starting (after at most three spaces) with ``` or ~~~ and closes at the next such line; an
/// unclosed block counts. Inline backticks are not blocks. As a filter, keep samples scoring 1. Thread-safe; no allocation.
/// </remarks>
[RewardRule("code_in_reasoning")]
internal sealed class CodeInReasoningRule : IRewardRule
{
    private readonly int _maxBlocks;
    private readonly ReasoningScope _scope;

    /// <summary>Creates the rule.</summary>
    /// <param name="options">Its options (validated).</param>
    public CodeInReasoningRule(CodeInReasoningRewardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _maxBlocks = options.MaxBlocks;
        _scope = options.Scope;
    }

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken)
    {
        var blocks = CountBlocks(ChainOfThought.Select(args.Completion, _scope));
        return ValueTask.FromResult(blocks > _maxBlocks
            ? RewardOutcome.Score(0, blocks == 1 ? "1 code block in the reasoning" : $"{blocks} code blocks in the reasoning")
            : RewardOutcome.Score(1));
    }

    /// <summary>Counts fenced code blocks.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The number of blocks opened.</returns>
    public static int CountBlocks(ReadOnlySpan<char> text)
    {
        if (!text.Contains("```", StringComparison.Ordinal) && !text.Contains("~~~", StringComparison.Ordinal))
        {
            return 0;
        }

        var blocks = 0;
        var inside = false;
        foreach (var line in text.EnumerateLines())
        {
            if (ChainOfThought.IsFence(line))
            {
                blocks += inside ? 0 : 1;
                inside = !inside;
            }
        }

        return blocks;
    }
}
