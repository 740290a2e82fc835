using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Tests.Inference;

/// <summary>Small configs (reference §15) with weights large enough that logits span several units.</summary>
internal static class TestModels
{
    public static DeepSeekV3Config Micro(bool yarn = false, bool qLora = true, bool interleave = true, int shared = 1) => new()
    {
        VocabSize = 64,
        HiddenSize = 32,
        IntermediateSize = 64,
        MoeIntermediateSize = 16,
        NumHiddenLayers = 3,
        NumAttentionHeads = 2,
        NSharedExperts = shared,
        NRoutedExperts = 8,
        RoutedScalingFactor = 2.5,
        KvLoraRank = 16,
        QLoraRank = qLora ? 24 : null,
        QkRopeHeadDim = 4,
        VHeadDim = 8,
        QkNopeHeadDim = 8,
        NGroup = 2,
        TopkGroup = 1,
        NumExpertsPerTok = 2,
        FirstKDenseReplace = 1,
        MaxPositionEmbeddings = 64,
        NumNextnPredictLayers = 1,
        RopeScaling = yarn ? new YarnScaling(4, 16, 32, 1, 1, 1) : null,
        RopeInterleave = interleave,
        EosTokenId = 1,
    };

    public static DeepSeekV3Config Tiny() => new()
    {
        VocabSize = 2048,
        HiddenSize = 128,
        IntermediateSize = 384,
        MoeIntermediateSize = 64,
        NumHiddenLayers = 4,
        NumAttentionHeads = 4,
        NSharedExperts = 1,
        NRoutedExperts = 16,
        RoutedScalingFactor = 2.5,
        KvLoraRank = 64,
        QLoraRank = 96,
        QkRopeHeadDim = 16,
        VHeadDim = 32,
        QkNopeHeadDim = 32,
        NGroup = 4,
        TopkGroup = 2,
        NumExpertsPerTok = 4,
        FirstKDenseReplace = 1,
        MaxPositionEmbeddings = 256,
        NumNextnPredictLayers = 1,
    };

    public static ModelWeights Weights(DeepSeekV3Config config, int seed = 11, double std = 0.25)
    {
        var store = ModelInit.Create(config, seed, new ModelInitOptions { Std = std, BiasStd = 0.5 });
        return new ModelWeights(config, store.Data);
    }

    public static int[] Tokens(int count, int vocab, int seed)
    {
        var rng = new Random(seed);
        var t = new int[count];
        for (var i = 0; i < count; i++)
        {
            t[i] = rng.Next(vocab);
        }

        return t;
    }

    public static float MaxAbs(ReadOnlySpan<float> x)
    {
        float m = 0;
        foreach (var v in x)
        {
            m = Math.Max(m, Math.Abs(v));
        }

        return m;
    }

    /// <summary>Asserts max |a − b| ≤ tol · max|a|, reporting the first mismatch.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relative, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = MaxAbs(expected);
        double worst = 0;
        var at = -1;
        for (var i = 0; i < expected.Length; i++)
        {
            var diff = Math.Abs(expected[i] - actual[i]);
            if (diff > worst)
            {
                (worst, at) = (diff, i);
            }
        }

        Assert.True(worst <= relative * scale, $"{what}: max |diff| {worst:g4} at {at} (expected {(at >= 0 ? expected[at] : 0)}, got {(at >= 0 ? actual[at] : 0)}), limit {relative * scale:g4}");
    }
}
