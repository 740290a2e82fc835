using System.Text.Json.Nodes;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Model;

/// <summary><c>model init</c> as a user runs it.</summary>
public sealed class ModelCommandsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepseekrl-model-cli-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Init_D6_HiddenSizeOneBillion_OneLineWithTheParameterCountAndItsMemory()
    {
        var config = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(RepositoryPaths.Root, "examples", "models", "quick.json"), Ct))!;
        config["hidden_size"] = 1_000_000_000;
        var path = Path.Combine(_dir, "huge.json");
        await File.WriteAllTextAsync(path, config.ToJsonString(), Ct);

        var run = await CliProcess.RunAsync(["model", "init", "--config", path, "--seed", "1", "--out", Path.Combine(_dir, "m")], null, Ct);

        Assert.Equal(1, run.ExitCode);
        var line = Assert.Single(CliProcess.Lines(run.StandardError));
        // eh_proj alone (the MTP block's [d, 2d]) is 2·10^18 parameters, 8 EB as float32.
        Assert.StartsWith($"deepseekrl: error: --config: {path}: the model has 2,000,", line, StringComparison.Ordinal);
        Assert.Contains(" parameters (8.0 EB as float32); this engine holds at most 2,147,483,591 (one float[] block)", line, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_dir, "m")));
    }
}
