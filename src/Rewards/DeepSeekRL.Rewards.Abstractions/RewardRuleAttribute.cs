namespace DeepSeekRL.Rewards;

/// <summary>Names a reward rule; the name is what the rules JSON uses (<c>{"rule": "name", ...}</c>).</summary>
/// <param name="name">The rule name: lower-case letters, digits and underscores, unique within a pipeline.</param>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class RewardRuleAttribute(string name) : Attribute
{
    /// <summary>The rule name.</summary>
    public string Name { get; } = name;
}
