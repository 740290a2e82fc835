using System.Security.Cryptography;
using System.Text.Json;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Tests.Checkpoints;

/// <summary>
/// The golden data of infra/reference/make_golden.sh is present and well-formed, and ModelInit still re-creates the
/// exact weights the PyTorch reference saw (the forward-vs-golden parity test lives with the engine).
/// </summary>
public sealed class GoldenDataTests
{
    public static TheoryData<string> Cases => ["micro", "micro-qproj", "tiny", "tiny-yarn"];

    private static string Folder(string name) => Path.Combine(AppContext.BaseDirectory, "Data", "golden", name);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Golden_Case_FilesHaveTheDocumentedShapes(string name)
    {
        var (config, error) = DeepSeekV3Config.Load(Path.Combine(Folder(name), "config.json"));
        Assert.Null(error);
        using var golden = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Folder(name), "golden.json")));
        var root = golden.RootElement;
        Assert.Equal(name, root.GetProperty("name").GetString());
        Assert.Equal(1e-4, root.GetProperty("tolerance").GetProperty("relative_to_max_abs_logit").GetDouble());

        var sequences = root.GetProperty("sequences").EnumerateArray().ToList();
        Assert.True(sequences.Count >= 3);
        foreach (var sequence in sequences)
        {
            var tokens = sequence.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray();
            Assert.All(tokens, t => Assert.InRange(t, 0, config!.VocabSize - 1));
            Assert.InRange(tokens.Length, 2, config!.MaxPositionEmbeddings);
            var tensors = Safetensors.ReadAll(Path.Combine(Folder(name), sequence.GetProperty("file").GetString()!));
            Assert.Equal([tokens.Length, config.VocabSize], tensors["logits"].Shape);
            Assert.Equal([tokens.Length - 1, config.VocabSize], tensors["mtp_logits"].Shape);
            var max = tensors["logits"].Data.Max(MathF.Abs);
            Assert.Equal(sequence.GetProperty("max_abs_logit").GetDouble(), max, 1e-5 * max);

            // Logits must span several units, so that a scaling or routing error cannot hide in tiny numbers.
            Assert.InRange(max, 4, 100);
            Assert.DoesNotContain(tensors["logits"].Data, float.IsNaN);
            Assert.True(sequence.GetProperty("routing").GetProperty("tokens_changed_by_group_limit").GetInt32() > 0);
            Assert.True(sequence.GetProperty("routing").GetProperty("tokens_changed_by_bias").GetInt32() > 0);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ModelInit_GoldenSeedAndStd_RecreatesTheReferenceWeights(string name)
    {
        var config = DeepSeekV3Config.Load(Path.Combine(Folder(name), "config.json")).Config!;
        using var golden = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Folder(name), "golden.json")));
        var root = golden.RootElement;
        using var dir = new TempDirectory();

        var store = ModelInit.Create(config, root.GetProperty("seed").GetInt64(),
            new ModelInitOptions { Std = root.GetProperty("std").GetDouble(), BiasStd = root.GetProperty("bias_std").GetDouble() });
        ModelCheckpoint.Save(store, dir.Path);

        var sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(dir.File(ModelCheckpoint.WeightsFileName))));
        Assert.Equal(root.GetProperty("weights_sha256").GetString(), sha);
    }

    [Fact]
    public void Golden_Readme_DescribesEveryCase()
    {
        var readme = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "golden", "README.md"));

        foreach (var name in new[] { "micro", "micro-qproj", "tiny", "tiny-yarn" })
        {
            Assert.Contains($"`{name}/`", readme, StringComparison.Ordinal);
        }
    }
}
