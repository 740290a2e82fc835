using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Tests.Checkpoints;

namespace DeepSeekRL.Model.Tests.Config;

public sealed class DeepSeekV3ConfigTests
{
    private static (DeepSeekV3Config? Config, string? Error) ParseMicroWith(Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(TestModels.MicroJson)!.AsObject();
        edit(node);
        using var document = JsonDocument.Parse(node.ToJsonString());
        return DeepSeekV3Config.Parse(document.RootElement);
    }

    [Theory]
    [InlineData("tiny.json", 2048, 128, 4)]
    [InlineData("micro.json", 64, 32, 3)]
    public void Load_ExampleConfigs_ParseWithTheirDimensions(string file, int vocab, int hidden, int layers)
    {
        var (config, error) = DeepSeekV3Config.Load(Path.Combine(TestModels.RepositoryRoot(), "examples", "models", file));

        Assert.Null(error);
        Assert.Equal(vocab, config!.VocabSize);
        Assert.Equal(hidden, config.HiddenSize);
        Assert.Equal(layers, config.NumHiddenLayers);
        Assert.Equal(1, config.NumNextnPredictLayers);
        Assert.True(config.UsesQLora);
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("kv_lora_rank")]
    [InlineData("num_experts_per_tok")]
    [InlineData("vocab_size")]
    public void Parse_MissingRequiredKey_NamesTheKey(string key)
    {
        var (config, error) = ParseMicroWith(c => c.Remove(key));

        Assert.Null(config);
        Assert.Contains($"{key} is missing", error);
    }

    [Theory]
    [InlineData("n_group", 3, "n_routed_experts = 8 must be divisible by n_group = 3")]
    [InlineData("topk_group", 4, "topk_group = 4 exceeds n_group = 2")]
    [InlineData("num_experts_per_tok", 9, "num_experts_per_tok = 9 exceeds n_routed_experts = 8")]
    [InlineData("num_experts_per_tok", 5, "num_experts_per_tok = 5 exceeds the experts in topk_group = 1 groups of 4")]
    [InlineData("first_k_dense_replace", 4, "first_k_dense_replace = 4 exceeds num_hidden_layers = 3")]
    [InlineData("qk_rope_head_dim", 5, "qk_rope_head_dim = 5 must be even")]
    [InlineData("num_key_value_heads", 1, "num_key_value_heads = 1 must equal num_attention_heads = 2")]
    [InlineData("num_nextn_predict_layers", 2, "num_nextn_predict_layers = 2")]
    [InlineData("eos_token_id", 64, "eos_token_id = 64 is outside vocab_size = 64")]
    public void Parse_ContradictoryKeys_NamesBothKeys(string key, int value, string expected)
    {
        var (config, error) = ParseMicroWith(c => c[key] = value);

        Assert.Null(config);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void Parse_TiedEmbeddings_Rejected()
    {
        var (_, error) = ParseMicroWith(c => c["tie_word_embeddings"] = true);

        Assert.Contains("tie_word_embeddings", error);
    }

    [Fact]
    public void Parse_WrongTypes_NameTheKeys()
    {
        var (_, error) = ParseMicroWith(c =>
        {
            c["hidden_size"] = "32";
            c["rms_norm_eps"] = "small";
            c["rope_interleave"] = 1;
        });

        Assert.Contains("hidden_size = \"32\": expected an integer", error);
        Assert.Contains("rms_norm_eps", error);
        Assert.Contains("rope_interleave", error);
    }

    [Fact]
    public void Parse_UnsupportedRopeScaling_NamesTheType()
    {
        var (_, error) = ParseMicroWith(c => c["rope_scaling"] = JsonNode.Parse("""{"type": "linear", "factor": 2}"""));

        Assert.Contains("rope_scaling.type = 'linear'", error);
    }

    [Fact]
    public void Parse_YarnWithoutOriginalContext_NamesTheKey()
    {
        var (_, error) = ParseMicroWith(c => c["rope_scaling"] = JsonNode.Parse("""{"type": "yarn", "factor": 4}"""));

        Assert.Contains("rope_scaling.original_max_position_embeddings", error);
    }

    [Fact]
    public void Load_NotJson_OneLineErrorNamingTheFile()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("config.json"), "{ \"vocab_size\": ");

        var (config, error) = DeepSeekV3Config.Load(dir.File("config.json"));

        Assert.Null(config);
        Assert.StartsWith(dir.File("config.json") + ": invalid JSON", error);
        Assert.DoesNotContain("\n", error!, StringComparison.Ordinal);
    }

    [Fact]
    public void Save_ThenLoad_RoundTripsEveryKey()
    {
        using var dir = new TempDirectory();
        var (config, _) = ParseMicroWith(c =>
        {
            c["q_lora_rank"] = null;
            c["rope_interleave"] = false;
            c["routed_scaling_factor"] = 1.5;
            c["rope_scaling"] = JsonNode.Parse("""{"type": "yarn", "factor": 4, "original_max_position_embeddings": 8, "mscale": 1, "mscale_all_dim": 1}""");
        });

        config!.Save(dir.File("config.json"));
        var (loaded, error) = DeepSeekV3Config.Load(dir.File("config.json"));

        Assert.Null(error);
        Assert.Equal(config, loaded! with { });
        Assert.Equal(config.RopeScaling, loaded.RopeScaling);
        Assert.False(loaded.UsesQLora);
    }
}
