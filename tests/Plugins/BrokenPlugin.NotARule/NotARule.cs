namespace BrokenPlugin.NotARule;

[DeepSeekRL.Rewards.RewardRule("not_a_rule")]
public sealed class NotARule
{
    public static double Score(string completion) => completion.Length;
}
