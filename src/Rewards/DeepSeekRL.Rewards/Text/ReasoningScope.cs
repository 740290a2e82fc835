namespace DeepSeekRL.Rewards.Text;

/// <summary>Which part of a completion a rule reads.</summary>
public enum ReasoningScope
{
    /// <summary>The chain of thought: the <c>&lt;think&gt;</c> block (the whole completion when it has none).</summary>
    Reasoning = 0,

    /// <summary>The whole completion, answer included.</summary>
    Completion,
}
