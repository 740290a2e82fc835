using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.TorchSharp.Tests;

/// <summary>The configs both engines are checked on (the native tests' micro and tiny shapes) and comparison helpers.</summary>
internal static class TorchTestModels
{
    public static DeepSeekV3Config Micro(bool yarn = false, bool qLora = true, bool interleave = true) => new()
    {
        VocabSize = 64,
        HiddenSize = 32,
        IntermediateSize = 64,
        MoeIntermediateSize = 16,
        NumHiddenLayers = 3,
        NumAttentionHeads = 2,
        NSharedExperts = 1,
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

    public static ModelWeights Weights(DeepSeekV3Config config, int seed = 11, double std = 0.25, double biasStd = 0.5) =>
        new(config, ModelInit.Create(config, seed, new ModelInitOptions { Std = std, BiasStd = biasStd }).Data);

    public static int[] Tokens(int count, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(vocab)).ToArray();
    }

    /// <summary>Asserts |expected − actual| ≤ tolerance × max|expected| everywhere.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 0, worst = 0;
        var at = -1;
        for (var i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }

        for (var i = 0; i < expected.Length; i++)
        {
            var d = Math.Abs(expected[i] - (double)actual[i]);
            if (!(d <= worst))
            {
                (worst, at) = (d, i);
            }
        }

        Assert.True(scale > 0, $"{what}: the expected values are all zero");
        Assert.True(worst <= tolerance * scale, $"{what}: |diff| {worst:G4} at {at} > {tolerance} × {scale:G4}");
    }
}
