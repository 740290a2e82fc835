using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Model;

public sealed class ModelTrainingCommandsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string MicroConfig => Path.Combine(RepositoryPaths.Root, "examples", "models", "micro.json");

    [Fact]
    public async Task Grads_MicroBatchWithMtp_WritesLossAndEveryGradientEqualToTheLibrary()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-grads-");
        try
        {
            var model = Path.Combine(dir.FullName, "model");
            var output = Path.Combine(dir.FullName, "grads.safetensors");
            var init = await CliProcess.RunAsync(["model", "init", "--config", MicroConfig, "--seed", "3", "--std", "0.3", "--bias-std", "0.3", "--out", model], null, Ct);
            Assert.True(init.ExitCode == 0, init.StandardError);

            var run = await CliProcess.RunAsync(["model", "grads", "--model", model, "--tokens", "1,2,3,4,5,6", "--tokens", "7,8,9,10,11,12", "--mtp-weight", "0.3", "--out", output], null, Ct);
            Assert.True(run.ExitCode == 0, run.StandardError);

            var (weights, error) = ModelWeights.LoadDirectory(model);
            Assert.True(weights is not null, error);
            var training = new TrainingModel(weights);
            var loss = training.Forward([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 2, default, 0.3f);
            var grads = new Gradients(weights.Config);
            training.Backward(grads);

            var file = Safetensors.ReadAll(output);
            Assert.Equal((float)loss, file["loss"].Data[0]);
            Assert.True(file["mtp_loss"].Data[0] > 0);
            foreach (var spec in weights.Specs)
            {
                Assert.True(file.ContainsKey(spec.Name), $"{spec.Name} is missing");
                Assert.Equal(spec.Shape.Select(x => (long)x), file[spec.Name].Shape);
                Assert.True(grads.Get(spec.Name).SequenceEqual(file[spec.Name].Data), $"{spec.Name} differs from the library's gradient");
            }

            var bad = await CliProcess.RunAsync(["model", "grads", "--model", model, "--tokens", "1,2,3", "--tokens", "4,5", "--out", output], null, Ct);
            Assert.NotEqual(0, bad.ExitCode);
            Assert.Contains("same length", bad.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
