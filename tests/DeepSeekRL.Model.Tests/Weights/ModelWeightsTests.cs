using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Tests.Inference;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Model.Tests.Weights;

public sealed class ModelWeightsTests
{
    [Fact]
    public void Constructor_MicroConfig_SlicesFollowLayoutAndNormsAreOne()
    {
        var config = TestModels.Micro();
        var w = new ModelWeights(config);
        var specs = ParameterLayout.Parameters(config);
        Assert.Equal(specs.Sum(s => s.Count), w.Data.Length);
        long offset = 0;
        foreach (var spec in specs)
        {
            Assert.Equal(offset, w.Offset(spec.Name));
            offset += spec.Count;
        }

        Assert.All(w.Get("model.norm.weight").ToArray(), x => Assert.Equal(1f, x));
        Assert.Throws<KeyNotFoundException>(() => w.Get("model.nope.weight"));
    }

    [Fact]
    public void SaveDirectoryThenLoadDirectory_RoundTripsEveryParameter()
    {
        var w = TestModels.Weights(TestModels.Micro(yarn: true));
        var dir = Path.Combine(Path.GetTempPath(), $"dsrl-weights-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            w.SaveDirectory(dir);
            var (loaded, error) = ModelWeights.LoadDirectory(dir);
            Assert.True(loaded is not null, error);
            Assert.Equal(w.Data, loaded.Data);
            Assert.Equal(w.Config.RopeScaling, loaded.Config.RopeScaling);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void LoadDirectory_WrongShape_OneLineErrorNamingTensor()
    {
        var w = TestModels.Weights(TestModels.Micro());
        var dir = Path.Combine(Path.GetTempPath(), $"dsrl-weights-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            w.SaveDirectory(dir);
            var file = Path.Combine(dir, "model.safetensors");
            var tensors = Safetensors.ReadAll(file);
            var list = tensors.Select(t => (t.Key, t.Key == "model.norm.weight" ? new long[] { 31 } : t.Value.Shape, (ReadOnlyMemory<float>)(t.Key == "model.norm.weight" ? t.Value.Data[..31] : t.Value.Data))).ToList();
            Safetensors.Write(file, list);
            var (loaded, error) = ModelWeights.LoadDirectory(dir);
            Assert.Null(loaded);
            Assert.Contains("model.norm.weight", error, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', error!);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void WrapConstructor_ExternalBlock_SharedWithoutCopy()
    {
        var source = TestModels.Weights(TestModels.Micro());
        var block = (float[])source.Data.Clone();
        var wrapped = new ModelWeights(source.Config, block);
        Assert.Same(block, wrapped.Data);
        var model = new Transformer(wrapped);
        int[] tokens = [1, 2, 3];
        var before = model.ForwardSequence(tokens);
        block.AsSpan(wrapped.Offset("lm_head.weight"), 32).Clear(); // token 0's head row
        var after = model.ForwardSequence(tokens);
        Assert.Equal(0f, after[0]);
        Assert.NotEqual(before[0], after[0]);
        Assert.Throws<ArgumentException>(() => new ModelWeights(source.Config, new float[10]));
    }
}
