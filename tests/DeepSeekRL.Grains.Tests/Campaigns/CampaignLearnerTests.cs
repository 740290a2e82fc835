using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Storage.Stores;

namespace DeepSeekRL.Grains.Tests.Campaigns;

/// <summary>The learner's advantages over a whole step (issue 19, D10).</summary>
public sealed class CampaignLearnerTests
{
    // Two groups of 4 with different spreads: group 0 rewards {0,0,1,1}, group 1 rewards {0,0,0,3}.
    private static readonly double[][] Rewards = [[0, 0, 1, 1], [0, 0, 0, 3]];

    private static List<List<StepSample>> Groups() =>
        Rewards.Select((g, r) => g.Select((x, i) => new StepSample(r * 4 + i, r, i, r, 0, [1], [], x, "stop")).ToList()).ToList();

    [Fact]
    public void StepAdvantages_D10_BatchNormalisationWithGroupsOfDifferentSpreads_DividesByTheStepStd()
    {
        var advantages = CampaignLearner.StepAdvantages(Groups(), 4, AdvantageNormalization.Batch);

        // TRL scale_rewards="batch": (r - group mean) / (std of all 8 rewards, Bessel) + eps.
        var all = Rewards.SelectMany(g => g).ToArray();
        var mean = all.Average();
        var std = Math.Sqrt(all.Sum(x => (x - mean) * (x - mean)) / (all.Length - 1));
        var k = 0;
        foreach (var group in Rewards)
        {
            var groupMean = group.Average();
            foreach (var r in group)
            {
                Assert.Equal((r - groupMean) / (std + 1e-4), advantages[k++], 12);
            }
        }
    }

    [Fact]
    public void StepAdvantages_D10_BatchDiffersFromGroup_WhenTheGroupsSpreadsDiffer()
    {
        var batch = CampaignLearner.StepAdvantages(Groups(), 4, AdvantageNormalization.Batch);
        var group = CampaignLearner.StepAdvantages(Groups(), 4, AdvantageNormalization.Group);

        // Group normalisation divides group 0 by its own std (0.577) and group 1 by its own (1.5).
        Assert.Equal(0.5 / (Math.Sqrt(1.0 / 3) + 1e-4), group[2], 12);
        Assert.Equal(2.25 / (1.5 + 1e-4), group[7], 12);
        Assert.NotEqual(group[2], batch[2], 6);
        Assert.NotEqual(group[7], batch[7], 6);
    }
}
