using System.Text.Json;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;

namespace DeepSeekRL.Model.Tests.Checkpoints;

public sealed class ModelCheckpointTests
{
    private static ParameterStore MicroStore(long seed = 5) =>
        ModelInit.Create(TestModels.Micro(), seed, new ModelInitOptions { Std = 0.25, BiasStd = 0.3 });

    /// <summary>A model directory whose weights file holds exactly <paramref name="tensors"/> in that order.</summary>
    private static void WriteModel(TempDirectory dir, DeepSeekV3Config config, IEnumerable<RawTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        config.Save(dir.File(ModelCheckpoint.ConfigFileName));
        RawSafetensors.Write(dir.File(ModelCheckpoint.WeightsFileName), tensors, metadata);
    }

    private static SafetensorsException LoadFails(TempDirectory dir) => Assert.Throws<SafetensorsException>(() => ModelCheckpoint.Load(dir.Path));

    [Fact]
    public void Save_ThenLoad_F32_IdenticalStore()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();

        ModelCheckpoint.Save(store, dir.Path);
        var loaded = ModelCheckpoint.Load(dir.Path);

        Assert.Equal(store.Config, loaded.Config);
        Assert.Equal(store.Data, loaded.Data);
        Assert.Equal(store.Specs.Select(s => s.Name), loaded.Specs.Select(s => s.Name));
        Safetensors.ReadHeader(dir.File(ModelCheckpoint.WeightsFileName), out var metadata);
        Assert.Equal("pt", metadata["format"]);
    }

    [Fact]
    public void Save_ThenLoad_BF16_RoundedToNearestEven()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();

        ModelCheckpoint.Save(store, dir.Path, SafetensorsDtype.BF16);
        var loaded = ModelCheckpoint.Load(dir.Path);

        var expected = store.Data.Select(v => BitConverter.Int32BitsToSingle(Safetensors.SingleToBFloat16(v) << 16)).ToArray();
        Assert.Equal(expected, loaded.Data);
        Assert.Equal(store.Data.Length * 2, new FileInfo(dir.File(ModelCheckpoint.WeightsFileName)).Length - Safetensors.ReadHeader(dir.File(ModelCheckpoint.WeightsFileName), out _).DataStart);
    }

    [Fact]
    public void Load_AnyTensorOrderMetadataAndMtpCopies_Accepted()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        var tensors = RawSafetensors.FromStore(store);
        tensors.Reverse();
        var l = store.Config.NumHiddenLayers;
        tensors.Insert(7, RawTensor.F32($"model.layers.{l}.embed_tokens.weight", [64, 32], store["model.embed_tokens.weight"]));
        tensors.Add(RawTensor.F32($"model.layers.{l}.shared_head.head.weight", [64, 32], store["lm_head.weight"]));
        WriteModel(dir, store.Config, tensors, new Dictionary<string, string> { ["format"] = "pt", ["origin"] = "test" });

        var loaded = ModelCheckpoint.Load(dir.Path);

        Assert.Equal(store.Data, loaded.Data);
    }

    [Fact]
    public void Load_F16Weights_Decoded()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        var tensors = RawSafetensors.FromStore(store);
        var i = tensors.FindIndex(t => t.Name == "model.layers.0.self_attn.kv_b_proj.weight");
        tensors[i] = RawTensor.F16(tensors[i].Name, tensors[i].Shape, store[i]);
        WriteModel(dir, store.Config, tensors);

        var loaded = ModelCheckpoint.Load(dir.Path);

        Assert.Equal(store[i].ToArray().Select(v => (float)(Half)v), loaded[i].ToArray());
        Assert.Equal(store["lm_head.weight"].ToArray(), loaded["lm_head.weight"].ToArray());
    }

    [Fact]
    public void Load_Fp8WithPartialScaleBlocks_DequantisedPerBlock()
    {
        // V = 300, D = 160: the [300, 160] embedding and head have 3 x 2 scale blocks, the last row and column partial.
        using var dir = new TempDirectory();
        var config = TestModels.Micro() with { VocabSize = 300, HiddenSize = 160 };
        var store = ModelInit.Create(config, 9, new ModelInitOptions { Std = 0.25 });
        var tensors = RawSafetensors.FromStore(store);
        var expected = (float[])store.Data.Clone();
        var quantised = 0;
        for (var p = 0; p < store.Specs.Count; p++)
        {
            if (store.Specs[p].Shape.Length != 2)
            {
                continue;
            }

            var (bytes, scale, decoded) = Fp8Quantise(store[p], store.Specs[p].Shape[0], store.Specs[p].Shape[1]);
            var t = tensors.FindIndex(x => x.Name == store.Specs[p].Name);
            tensors[t] = new RawTensor(store.Specs[p].Name, "F8_E4M3", tensors[t].Shape, bytes);
            tensors.Insert(t, RawTensor.F32(store.Specs[p].Name + "_scale_inv", [(store.Specs[p].Shape[0] + 127) / 128, (store.Specs[p].Shape[1] + 127) / 128], scale));
            decoded.CopyTo(expected.AsSpan((int)store.Offsets[p]));
            quantised++;
        }

        WriteModel(dir, config, tensors);

        var loaded = ModelCheckpoint.Load(dir.Path);

        Assert.True(quantised > 50);
        Assert.Equal(expected, loaded.Data);
        Assert.Equal(6, tensors.Single(t => t.Name == "model.embed_tokens.weight_scale_inv").Bytes.Length / 4);

        // The quantisation error is bounded by half an e4m3 step (relative 2^-4) of each block's scale.
        var embed = store["model.embed_tokens.weight"].ToArray();
        var back = loaded["model.embed_tokens.weight"].ToArray();
        Assert.All(Enumerable.Range(0, embed.Length), k => Assert.InRange(back[k] - embed[k], -0.07 * Math.Abs(embed[k]) - 1e-3, 0.07 * Math.Abs(embed[k]) + 1e-3));
    }

    /// <summary>Quantises [rows, cols] to e4m3 with one scale per 128x128 block (scale = amax/448, nearest code).</summary>
    private static (byte[] Bytes, float[] Scale, float[] Decoded) Fp8Quantise(ReadOnlySpan<float> w, int rows, int cols)
    {
        int br = (rows + 127) / 128, bc = (cols + 127) / 128;
        var scale = new float[br * bc];
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < cols; j++)
            {
                ref var s = ref scale[((i / 128) * bc) + (j / 128)];
                s = Math.Max(s, Math.Abs(w[(i * cols) + j]) / 448f);
            }
        }

        var codes = Enumerable.Range(0, 256).Where(b => !float.IsNaN(Safetensors.Fp8E4M3ToSingle((byte)b))).ToArray();
        var bytes = new byte[rows * cols];
        var decoded = new float[rows * cols];
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < cols; j++)
            {
                var s = scale[((i / 128) * bc) + (j / 128)];
                var target = w[(i * cols) + j] / s;
                var best = codes.MinBy(b => Math.Abs(Safetensors.Fp8E4M3ToSingle((byte)b) - target));
                bytes[(i * cols) + j] = (byte)best;
                decoded[(i * cols) + j] = Safetensors.Fp8E4M3ToSingle((byte)best) * s;
            }
        }

        return (bytes, scale, decoded);
    }

    [Fact]
    public void Load_Fp8WithoutScale_NamesTheScale()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        var tensors = RawSafetensors.FromStore(store);
        var t = tensors.FindIndex(x => x.Name == "model.layers.1.self_attn.o_proj.weight");
        tensors[t] = new RawTensor(tensors[t].Name, "F8_E4M3", tensors[t].Shape, new byte[tensors[t].Bytes.Length / 4]);
        WriteModel(dir, store.Config, tensors);

        var ex = LoadFails(dir);

        Assert.Contains("'model.layers.1.self_attn.o_proj.weight_scale_inv' is missing", ex.Message);
    }

    [Fact]
    public void Load_Sharded_ReadsEveryShard()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        var tensors = RawSafetensors.FromStore(store);
        var first = tensors.Where((_, k) => k % 3 == 0).ToList();
        var second = tensors.Where((_, k) => k % 3 != 0).ToList();
        store.Config.Save(dir.File(ModelCheckpoint.ConfigFileName));
        RawSafetensors.Write(dir.File("model-00001-of-00002.safetensors"), first);
        RawSafetensors.Write(dir.File("model-00002-of-00002.safetensors"), second, new Dictionary<string, string> { ["format"] = "pt" });
        var map = first.ToDictionary(x => x.Name, _ => "model-00001-of-00002.safetensors");
        foreach (var x in second)
        {
            map[x.Name] = "model-00002-of-00002.safetensors";
        }

        File.WriteAllText(dir.File(ModelCheckpoint.IndexFileName), JsonSerializer.Serialize(new { metadata = new { total_size = store.Data.Length * 4 }, weight_map = map }));

        var loaded = ModelCheckpoint.Load(dir.Path);

        Assert.Equal(store.Data, loaded.Data);
    }

    [Fact]
    public void Load_IndexPointsToMissingShard_NamesTensorAndFile()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        ModelCheckpoint.Save(store, dir.Path);
        File.WriteAllText(dir.File(ModelCheckpoint.IndexFileName), """{"metadata": {}, "weight_map": {"lm_head.weight": "model-2.safetensors"}}""");

        var ex = LoadFails(dir);

        Assert.Contains("'lm_head.weight' is mapped to model-2.safetensors, which does not exist", ex.Message);
    }

    [Theory]
    [InlineData("""{"weight_map": {"lm_head.weight": "../model.safetensors"}}""", "expected a file name")]
    [InlineData("""{"weight_map": {"lm_head.weight": 3}}""", "expected a file name")]
    [InlineData("""{"metadata": {}}""", "weight_map")]
    [InlineData("""{"weight_map": """, "invalid JSON")]
    public void Load_BadIndex_OneLineError(string index, string problem)
    {
        using var dir = new TempDirectory();
        ModelCheckpoint.Save(MicroStore(), dir.Path);
        File.WriteAllText(dir.File(ModelCheckpoint.IndexFileName), index);

        var ex = LoadFails(dir);

        Assert.StartsWith(dir.File(ModelCheckpoint.IndexFileName), ex.Message);
        Assert.Contains(problem, ex.Message);
    }

    [Fact]
    public void Load_MissingTensor_NamesFileAndTensor()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        WriteModel(dir, store.Config, RawSafetensors.FromStore(store).Where(t => t.Name != "model.layers.2.mlp.experts.5.up_proj.weight"));

        var ex = LoadFails(dir);

        Assert.Equal($"{dir.File(ModelCheckpoint.WeightsFileName)}: tensor 'model.layers.2.mlp.experts.5.up_proj.weight' [16,32] is missing", ex.Message);
    }

    [Fact]
    public void Load_WrongShape_NamesFileTensorAndShapes()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        var tensors = RawSafetensors.FromStore(store);
        var t = tensors.FindIndex(x => x.Name == "lm_head.weight");
        tensors[t] = tensors[t] with { Shape = [32, 64] };
        WriteModel(dir, store.Config, tensors);

        var ex = LoadFails(dir);

        Assert.Equal($"{dir.File(ModelCheckpoint.WeightsFileName)}: tensor 'lm_head.weight' has shape [32,64], expected [64,32]", ex.Message);
    }

    [Fact]
    public void Load_WrongShapeOfMtpCopy_Rejected()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        var tensors = RawSafetensors.FromStore(store);
        tensors.Add(RawTensor.F32("model.layers.3.embed_tokens.weight", [2, 32], new float[64]));
        WriteModel(dir, store.Config, tensors);

        Assert.Contains("'model.layers.3.embed_tokens.weight' has shape [2,32], expected [64,32]", LoadFails(dir).Message);
    }

    [Fact]
    public void Load_UnknownTensor_NamesItAndTheConfig()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        var tensors = RawSafetensors.FromStore(store);
        tensors.Add(RawTensor.F32("model.layers.4.input_layernorm.weight", [32], new float[32]));
        WriteModel(dir, store.Config, tensors);

        var ex = LoadFails(dir);

        Assert.Contains("'model.layers.4.input_layernorm.weight' is not a parameter of this config (num_hidden_layers = 3", ex.Message);
    }

    [Theory]
    [InlineData("I64", 8)]
    [InlineData("F64", 8)]
    [InlineData("U8", 1)]
    public void Load_NonWeightDtype_NamesFileAndTensor(string dtype, int size)
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        var tensors = RawSafetensors.FromStore(store);
        var t = tensors.FindIndex(x => x.Name == "model.norm.weight");
        tensors[t] = new RawTensor("model.norm.weight", dtype, [32], new byte[32 * size]);
        WriteModel(dir, store.Config, tensors);

        var ex = LoadFails(dir);

        Assert.Equal($"{dir.File(ModelCheckpoint.WeightsFileName)}: tensor 'model.norm.weight': dtype {dtype} is not a weight dtype (F32, BF16, F16, F8_E4M3)", ex.Message);
    }

    [Fact]
    public void Load_UnknownDtype_NamesFileAndTensor()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        var tensors = RawSafetensors.FromStore(store);
        var t = tensors.FindIndex(x => x.Name == "model.norm.weight");
        tensors[t] = new RawTensor("model.norm.weight", "F8_E5M2", [32], new byte[32]);
        WriteModel(dir, store.Config, tensors);

        var ex = LoadFails(dir);

        Assert.StartsWith($"{dir.File(ModelCheckpoint.WeightsFileName)}: tensor 'model.norm.weight': dtype 'F8_E5M2' is not supported", ex.Message);
    }

    [Fact]
    public void Load_TruncatedFile_NamesFileAndTensor()
    {
        using var dir = new TempDirectory();
        ModelCheckpoint.Save(MicroStore(), dir.Path);
        var path = dir.File(ModelCheckpoint.WeightsFileName);
        using (var file = File.OpenWrite(path))
        {
            file.SetLength(file.Length - 100);
        }

        var ex = LoadFails(dir);

        Assert.StartsWith(path + ": tensor 'model.norm.weight'", ex.Message); // the last tensor in name order
    }

    [Fact]
    public void Load_OverlappingOffsets_NamesFileAndTensor()
    {
        using var dir = new TempDirectory();
        var store = MicroStore();
        var tensors = RawSafetensors.FromStore(store);
        tensors[1] = tensors[1] with { Offsets = [4, 4 + tensors[1].Bytes.Length] };
        WriteModel(dir, store.Config, tensors);

        var ex = LoadFails(dir);

        Assert.Contains("overlaps", ex.Message);
        Assert.StartsWith(dir.File(ModelCheckpoint.WeightsFileName), ex.Message);
    }

    [Fact]
    public void Load_ConfigMissingKey_NamesConfigAndKey()
    {
        using var dir = new TempDirectory();
        ModelCheckpoint.Save(MicroStore(), dir.Path);
        var text = File.ReadAllText(dir.File("config.json")).Replace("\"kv_lora_rank\"", "\"kv_rank\"", StringComparison.Ordinal);
        File.WriteAllText(dir.File("config.json"), text);

        var ex = LoadFails(dir);

        Assert.Equal($"{dir.File("config.json")}: kv_lora_rank is missing", ex.Message);
    }

    [Fact]
    public void Load_NoWeights_SaysWhichFilesWereLookedFor()
    {
        using var dir = new TempDirectory();
        TestModels.Micro().Save(dir.File("config.json"));

        Assert.Contains("neither model.safetensors nor model.safetensors.index.json exists", LoadFails(dir).Message);
    }

    [Fact]
    public void Load_TinyCheckpoint_DecodesFromTheMappedFileWithoutReadingItWhole()
    {
        using var dir = new TempDirectory();
        var config = DeepSeekV3Config.Load(Path.Combine(TestModels.RepositoryRoot(), "examples", "models", "tiny.json")).Config!;
        var store = ModelInit.Create(config, 4);
        ModelCheckpoint.Save(store, dir.Path);
        var fileBytes = new FileInfo(dir.File(ModelCheckpoint.WeightsFileName)).Length;

        var before = GC.GetAllocatedBytesForCurrentThread();
        var loaded = ModelCheckpoint.Load(dir.Path);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(store.Data, loaded.Data);
        // The store itself (11 MB) plus the header and bookkeeping; a whole-file read would double it.
        Assert.InRange(allocated, store.Data.Length * 4L, (store.Data.Length * 4L) + (fileBytes / 10));
    }

    [Fact]
    public void Store_IndexerAndOffsets_SliceTheBlockInLayoutOrder()
    {
        var store = MicroStore();

        long offset = 0;
        for (var p = 0; p < store.Specs.Count; p++)
        {
            Assert.Equal(offset, store.Offsets[p]);
            Assert.Equal(offset, store.Offset(store.Specs[p].Name));
            offset += store.Specs[p].Count;
        }

        Assert.Equal(offset, store.Data.Length);
        store["model.norm.weight"][3] = 42f;
        Assert.Equal(42f, store.Data[store.Offset("model.norm.weight") + 3]);
        Assert.Equal([32], store.Shape("model.norm.weight"));
        Assert.Throws<KeyNotFoundException>(() => store.IndexOf("nope"));
    }
}
