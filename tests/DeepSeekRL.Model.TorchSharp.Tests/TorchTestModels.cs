using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Tests.Inference;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.TorchSharp.Tests;

/// <summary>The configs both engines are checked on (the native tests' TestModels, linked) and comparison helpers.</summary>
internal static class TorchTestModels
{
    public static DeepSeekV3Config Micro(bool yarn = false, bool qLora = true, bool interleave = true) => TestModels.Micro(yarn, qLora, interleave);

    public static DeepSeekV3Config Tiny() => TestModels.Tiny();

    public static ModelWeights Weights(DeepSeekV3Config config, int seed = 11, double std = 0.25) => TestModels.Weights(config, seed, std);

    public static int[] Tokens(int count, int vocab, int seed) => TestModels.Tokens(count, vocab, seed);

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
