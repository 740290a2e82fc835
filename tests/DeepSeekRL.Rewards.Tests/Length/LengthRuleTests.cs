using System.Text.Json;
using DeepSeekRL.Rewards.Accuracy;
using DeepSeekRL.Rewards.Length;

namespace DeepSeekRL.Rewards.Tests.Length;

public sealed class LengthRuleTests
{
    private static List<JsonElement> Cases(string function) =>
        TestData.ReadJsonLines("open-r1-reward-cases.jsonl").Where(r => r.Str("function") == function).ToList();

    [Fact]
    public async Task AccuracyRule_OpenR1Cases_AllPass()
    {
        var rule = new AccuracyRule(new AccuracyRewardOptions());
        foreach (var c in Cases("accuracy_reward"))
        {
            var outcome = await rule.ScoreAsync(new RewardArguments(string.Empty, c.Str("completion")!, c.Str("solution")), TestContext.Current.CancellationToken);
            Assert.Equal(c.GetProperty("expected").GetDouble(), outcome.Value);
        }
    }

    [Fact]
    public async Task AccuracyRule_UnparsableGold_IsMissingNotOne()
    {
        var rule = new AccuracyRule(new AccuracyRewardOptions());
        var outcome = await rule.ScoreAsync(new RewardArguments(string.Empty, "\\boxed{answer}", "unparseable_latex"), TestContext.Current.CancellationToken);
        Assert.True(outcome.IsMissing);
    }

    [Fact]
    public async Task AccuracyRule_Gsm8kSolutionAsGold_ReadsAfterMarker()
    {
        var rule = new AccuracyRule(new AccuracyRewardOptions());
        var outcome = await rule.ScoreAsync(new RewardArguments(string.Empty, "The answer is 1,200.", "so 12*100=<<12*100=1200>>1200\n#### 1,200"), TestContext.Current.CancellationToken);
        Assert.Equal(1.0, outcome.Value);
    }

    [Fact]
    public async Task CosineRule_OpenR1Cases_MatchWithinTolerance()
    {
        foreach (var c in Cases("cosine_scaled_reward"))
        {
            var p = c.GetProperty("params");
            var rule = new CosineRule(new CosineRewardOptions
            {
                MinValueWrong = p.GetProperty("min_value_wrong").GetDouble(),
                MaxValueWrong = p.GetProperty("max_value_wrong").GetDouble(),
                MinValueCorrect = p.GetProperty("min_value_correct").GetDouble(),
                MaxValueCorrect = p.GetProperty("max_value_correct").GetDouble(),
                MaxLength = p.GetProperty("max_len").GetInt32(),
            });
            var outcome = await rule.ScoreAsync(new RewardArguments(string.Empty, c.Str("completion")!, c.Str("solution")), TestContext.Current.CancellationToken);
            var expected = c.TryGetProperty("expected_exact", out var exact) ? exact.GetDouble() : c.GetProperty("expected").GetDouble();
            Assert.Equal(expected, outcome.Value!.Value, 5e-3);
        }
    }

    [Fact]
    public void CosineRule_Clamp_StaysAtTheLongEndPastMaxLength()
    {
        var o = new CosineRewardOptions { MaxLength = 100, Clamp = true };
        Assert.Equal(0.5, CosineRule.Reward(true, 200, o), 12);
        Assert.Equal(-0.5, CosineRule.Reward(false, 200, o), 12);
        Assert.Equal(1.0, CosineRule.Reward(true, 200, new CosineRewardOptions { MaxLength = 100 }), 12);
    }

    [Fact]
    public async Task CosineRule_UnparsableGold_IsMissing()
    {
        var rule = new CosineRule(new CosineRewardOptions());
        var outcome = await rule.ScoreAsync(new RewardArguments(string.Empty, "\\boxed{answer}", "unparseable_latex"), TestContext.Current.CancellationToken);
        Assert.True(outcome.IsMissing);
    }

    /// <summary>open-r1 <c>len_reward</c> cases. Deliberate difference: test_unparseable_solution (gold
    /// "unparseable_latex") expects ±0.5 because open-r1 treats an unparsable gold as correct; ours is missing.</summary>
    [Fact]
    public async Task KimiLengthRule_OpenR1Cases_MatchExceptUnparsableGold()
    {
        var rule = new KimiLengthRule(new KimiLengthRewardOptions());
        foreach (var c in Cases("len_reward"))
        {
            var lengths = c.GetProperty("group_completions").EnumerateArray().Select(e => e.GetString()!.Length).ToArray();
            var batch = new RewardBatchInfo(lengths.Length, lengths.Min(), lengths.Max(), null, null);
            var outcome = await rule.ScoreAsync(new RewardArguments(string.Empty, c.Str("completion")!, c.Str("solution"), batch: batch), TestContext.Current.CancellationToken);
            if (c.Str("solution") == "unparseable_latex")
            {
                Assert.True(outcome.IsMissing);
                continue;
            }

            Assert.Equal(c.GetProperty("expected").GetDouble(), outcome.Value!.Value, 12);
        }
    }
}
