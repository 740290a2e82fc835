using DeepSeekRL.Model.Layers;

namespace DeepSeekRL.Model.Tests.Layers;

public sealed class MoeRouterTests
{
    private static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    [Fact]
    public void Route_BiasFavoursDiscardedLookingGroup_SelectsWithBiasWeightsWithout()
    {
        // 8 experts in 4 groups of 2, keep 2 groups, top-2. Biased group sums: g0 1.751, g1 0.538, g2 1.221, g3 3.124.
        float[] logits = [2.0f, 1.9f, -1f, -1f, 0.5f, 0.4f, 0.3f, 0.2f];
        float[] bias = [0, 0, 0, 0, 0, 0, 1f, 1f];
        var experts = new int[2];
        var weights = new float[2];
        MoeRouter.Route(logits, bias, 4, 2, 2.5f, true, experts, weights);
        Assert.Equal([6, 7], experts);
        var sum = Sigmoid(0.3f) + Sigmoid(0.2f);
        Assert.Equal(2.5f * Sigmoid(0.3f) / sum, weights[0], 5);
        Assert.Equal(2.5f * Sigmoid(0.2f) / sum, weights[1], 5);
    }

    [Fact]
    public void Route_NegativeBiasedScores_MasksDiscardedGroupsWithMinusInfinity()
    {
        // All biases −1: every biased score is negative. A 0.0 fill (HF) would pick experts of discarded groups;
        // −∞ keeps the choice inside the kept groups g0 and g2: experts 0, 1 and then 4.
        float[] logits = [2.0f, 1.9f, -1f, -1f, 0.5f, 0.4f, 0.3f, 0.2f];
        var bias = Enumerable.Repeat(-1f, 8).ToArray();
        var experts = new int[3];
        var weights = new float[3];
        MoeRouter.Route(logits, bias, 4, 2, 1f, true, experts, weights);
        Assert.Equal([0, 1, 4], experts);
        Assert.Equal(1f, weights.Sum(), 5);
    }

    [Fact]
    public void Route_WithoutNormalisation_ScalesRawScores()
    {
        float[] logits = [0.1f, 0.9f, -0.3f, 0.4f];
        var experts = new int[2];
        var weights = new float[2];
        MoeRouter.Route(logits, new float[4], 1, 1, 2.5f, false, experts, weights);
        Assert.Equal([1, 3], experts);
        Assert.Equal(2.5f * Sigmoid(0.9f), weights[0], 5);
        Assert.Equal(2.5f * Sigmoid(0.4f), weights[1], 5);
    }

    [Fact]
    public void Route_Ties_PreferLowerIndex()
    {
        var experts = new int[2];
        MoeRouter.Route(new float[4], new float[4], 2, 1, 1f, true, experts, new float[2]);
        Assert.Equal([0, 1], experts);
    }
}
