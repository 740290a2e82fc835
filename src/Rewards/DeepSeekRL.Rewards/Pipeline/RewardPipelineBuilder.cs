namespace DeepSeekRL.Rewards.Pipeline;

/// <summary>One rule of a pipeline: its name, weight, implementation and time limit.</summary>
/// <param name="Name">The rule name (unique in the pipeline).</param>
/// <param name="Weight">The weight of its score in the total reward.</param>
/// <param name="Rule">The implementation.</param>
/// <param name="Timeout">The time limit of one call.</param>
public sealed record RewardRuleEntry(string Name, double Weight, IRewardRule Rule, TimeSpan Timeout);

/// <summary>
/// Builds a <see cref="RewardPipeline"/>. Built-in rules add themselves through extension methods
/// (<c>builder.AddAccuracyReward(options, weight)</c>), as Polly v8 strategies do; the rules JSON goes through
/// <see cref="RulesFile"/>, which binds options and calls the same methods.
/// </summary>
public sealed class RewardPipelineBuilder
{
    private readonly List<RewardRuleEntry> _rules = [];

    /// <summary>The default time limit of one rule call. Default 10 s.</summary>
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How many completions are scored at once. Default: the number of cores.</summary>
    public int MaxDegreeOfParallelism { get; set; } = Environment.ProcessorCount;

    /// <summary>The clock rules receive. Default the system clock.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>The rules added so far.</summary>
    public IReadOnlyList<RewardRuleEntry> Rules => _rules;

    /// <summary>Adds a rule.</summary>
    /// <param name="name">Its name; must be unique in the pipeline.</param>
    /// <param name="rule">The implementation.</param>
    /// <param name="weight">The weight of its score; finite.</param>
    /// <param name="timeout">Its time limit, or <see langword="null"/> for <see cref="DefaultTimeout"/>.</param>
    /// <returns>This builder.</returns>
    public RewardPipelineBuilder AddRule(string name, IRewardRule rule, double weight = 1.0, TimeSpan? timeout = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(rule);
        if (!double.IsFinite(weight))
        {
            throw new ArgumentOutOfRangeException(nameof(weight), weight, $"rule '{name}': weight must be a finite number");
        }

        if (_rules.Any(r => r.Name == name))
        {
            throw new ArgumentException($"rule '{name}' is already in the pipeline", nameof(name));
        }

        _rules.Add(new RewardRuleEntry(name, weight, rule, timeout ?? DefaultTimeout));
        return this;
    }

    /// <summary>Builds the pipeline.</summary>
    /// <returns>The pipeline.</returns>
    public RewardPipeline Build() =>
        _rules.Count == 0
            ? throw new InvalidOperationException("a reward pipeline needs at least one rule")
            : new RewardPipeline([.. _rules], Math.Max(1, MaxDegreeOfParallelism), TimeProvider);
}
