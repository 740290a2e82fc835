using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Silo.Model;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Model;

public sealed class SftRunGroupsTests
{
    private const int Eos = 1;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // 5 short examples (4 tokens, group 0) and 3 long ones (12 tokens, group 1; micro.json's RoPE table holds 16), interleaved so that ungrouped batches mix them.
    private static readonly int[] GroupOf = [0, 1, 0, 0, 1, 0, 1, 0];

    private static SftRunOptions Options(IReadOnlyList<int>? groups, int maxSteps = 0) => new()
    {
        Epochs = 2,
        BatchSize = 2,
        LearningRate = 1e-2,
        Warmup = 2,
        Seed = 5,
        Threads = 1,
        MaxSteps = maxSteps,
        Groups = groups,
    };

    [Fact]
    public void Run_WithGroups_StepsAndPaddedTokensFollowTheGroupsAndAResumedRunEndsOnTheSameWeights()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-sftgroups-");
        try
        {
            string P(string name) => Path.Combine(dir.FullName, name);
            var config = MicroConfig();
            var examples = Examples();

            var full = SftRun.Run(Weights(config), examples, Eos, Options(GroupOf), P("full"), null, null, Ct);

            // Per epoch: ceil(5 / 2) + ceil(3 / 2) = 3 + 2 steps (not ceil(8 / 2) = 4); every batch is padded only to its
            // own group's length: 5 rows × 4 + 3 rows × 12 = 56 tokens per epoch.
            Assert.Equal(10, full.TotalSteps);
            Assert.Equal(10, full.Steps);
            Assert.Equal(2 * ((5 * 4) + (3 * 12)), full.Tokens);
            Assert.True(double.IsFinite(full.LastLoss));
            Assert.Equal(11, File.ReadAllLines(P(Path.Combine("full", "loss.csv"))).Length);

            // Without groups the same data mixes short and long rows in a batch and pads the short ones to 12.
            var ungrouped = SftRun.Run(Weights(config), examples, Eos, Options(null), P("ungrouped"), null, null, Ct);
            Assert.Equal(8, ungrouped.TotalSteps);
            Assert.True(ungrouped.Tokens > full.Tokens, $"ungrouped {ungrouped.Tokens} tokens, grouped {full.Tokens}");

            // Stopped after 3 steps, resumed from the saved model and optimizer state: the same final weights, byte for byte.
            var part = SftRun.Run(Weights(config), examples, Eos, Options(GroupOf, maxSteps: 3), P("part"), null, null, Ct);
            Assert.Equal(3, part.Steps);
            Assert.Equal(10, part.TotalSteps);
            var (partWeights, error) = ModelWeights.LoadDirectory(P("part"));
            Assert.True(partWeights is not null, error);
            var state = SftRun.LoadState(P("part"), config, Options(GroupOf), examples.Count);
            var resumed = SftRun.Run(partWeights, examples, Eos, Options(GroupOf), P("resumed"), state, null, Ct);
            Assert.Equal(10, resumed.Steps);
            Assert.Equal(full.Tokens, part.Tokens + resumed.Tokens);
            Assert.Equal(
                File.ReadAllBytes(P(Path.Combine("full", "model.safetensors"))),
                File.ReadAllBytes(P(Path.Combine("resumed", "model.safetensors"))));

            // A state saved by a grouped run does not resume a run with other groups (nor without groups).
            int[] otherGroups = [0, 1, 1, 0, 1, 0, 1, 0];
            var (again, _) = ModelWeights.LoadDirectory(P("part"));
            Assert.Throws<CliException>(() => SftRun.Run(again!, examples, Eos, Options(otherGroups), P("other"), SftRun.LoadState(P("part"), config, Options(otherGroups), examples.Count), null, Ct));
            Assert.Throws<CliException>(() => SftRun.Run(again!, examples, Eos, Options(null), P("none"), SftRun.LoadState(P("part"), config, Options(null), examples.Count), null, Ct));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Run_GroupsOfTheWrongLength_Throws()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-sftgroups-");
        try
        {
            var config = MicroConfig();
            var examples = Examples();

            Assert.Throws<ArgumentException>(() => SftRun.Run(Weights(config), examples, Eos, Options([0, 1, 0]), dir.FullName, null, null, Ct));
            Assert.Throws<ArgumentException>(() => SftRun.Run(Weights(config), examples, Eos, Options([.. GroupOf, 0]), dir.FullName, null, null, Ct));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static DeepSeekV3Config MicroConfig()
    {
        var (config, error) = DeepSeekV3Config.Load(Path.Combine(RepositoryPaths.Root, "examples", "models", "micro.json"));
        Assert.True(config is not null, error);
        return config;
    }

    private static ModelWeights Weights(DeepSeekV3Config config) => new(config, ModelInit.Create(config, 4).Data);

    private static List<SftExample> Examples()
    {
        var rng = new Random(17);
        var examples = new List<SftExample>();
        for (var i = 0; i < GroupOf.Length; i++)
        {
            var length = GroupOf[i] == 0 ? 4 : 12;
            var tokens = new int[length];
            var mask = new byte[length];
            for (var t = 0; t < length; t++)
            {
                tokens[t] = t == length - 1 ? Eos : rng.Next(2, 64);
                mask[t] = (byte)(t == 0 ? 0 : 1);
            }

            examples.Add(new SftExample(tokens, mask, i + 1));
        }

        return examples;
    }
}
