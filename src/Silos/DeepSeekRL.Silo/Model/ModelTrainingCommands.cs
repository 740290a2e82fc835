using System.CommandLine;
using System.Globalization;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;

namespace DeepSeekRL.Silo.Model;

/// <summary>
/// <c>deepseekrl model grads</c>: the training loss and the gradient of every parameter for a token batch, for
/// comparison with the PyTorch reference. Added to the <c>model</c> command by <see cref="AddTo"/>.
/// </summary>
public static class ModelTrainingCommands
{
    /// <summary>Adds <c>grads</c> to the <c>model</c> command.</summary>
    /// <param name="model">The <c>model</c> command.</param>
    public static void AddTo(Command model)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Subcommands.Add(CreateGrads());
        model.Subcommands.Add(TrainSftCommand.Create());
    }

    /// <summary><c>model grads --model DIR --tokens 1,2,3 [--tokens ...] [--mtp-weight W] [--threads N] [--backend native|torch] [--device D] --out FILE.safetensors</c>.</summary>
    /// <returns>The command.</returns>
    public static Command CreateGrads()
    {
        var dir = new Option<DirectoryInfo>("--model") { Description = "The model directory (config.json + model.safetensors).", Required = true };
        var tokens = new Option<string[]>("--tokens") { Description = "Comma-separated token ids (at least 2); repeat the option for a batch of equal-length sequences.", Required = true, AllowMultipleArgumentsPerToken = false };
        var mtpWeight = new Option<float>("--mtp-weight") { Description = "W, the weight of the MTP loss (default 0: main loss only).", DefaultValueFactory = _ => 0f };
        var threads = new Option<int>("--threads") { Description = "Kernel threads: OpenBLAS, or libtorch's with --backend torch (default 2).", DefaultValueFactory = _ => 2 };
        var output = new Option<FileInfo>("--out") { Description = "Output safetensors: 'loss', 'main_loss', 'mtp_loss' [1] and every parameter's gradient under its checkpoint name (F32).", Required = true };
        var backend = BackendOptions.Backend();
        var device = BackendOptions.Device();
        var command = new Command("grads", "Loss (mean next-token cross-entropy + W x MTP loss) and the gradient of every parameter for a token batch (autograd with --backend torch).");
        foreach (var option in new Option[] { dir, tokens, mtpWeight, threads, output, backend, device })
        {
            command.Options.Add(option);
        }

        command.SetHandler((parseResult, cancellationToken) =>
        {
            var (engine, on) = BackendOptions.Read(parseResult, backend, device);
            var (weights, error) = ModelWeights.LoadDirectory(parseResult.GetValue(dir)!.FullName);
            if (weights is null)
            {
                throw new CliException("--model: " + error);
            }

            var c = weights.Config;
            var sequences = parseResult.GetValue(tokens)!.Select(s => ParseTokens(s, c.VocabSize)).ToList();
            var t = sequences[0].Length;
            if (t < 2 || sequences.Any(s => s.Length != t))
            {
                throw new CliException($"--tokens: every sequence needs the same length of at least 2 (got {string.Join(", ", sequences.Select(s => s.Length))})");
            }

            if (t > Math.Min(c.MaxPositionEmbeddings, 8192))
            {
                throw new CliException($"--tokens: {t} tokens exceed max_position_embeddings = {c.MaxPositionEmbeddings}");
            }

            var w = parseResult.GetValue(mtpWeight);
            if (w != 0 && c.NumNextnPredictLayers == 0)
            {
                throw new CliException("--mtp-weight: the model has no MTP module (num_nextn_predict_layers = 0)");
            }

            var grads = new Gradients(c);
            var (model, options) = BackendOptions.Engine(engine, on, parseResult.GetValue(threads));
            using var trainer = model.CreateTrainer(weights, new AdamWOptions(), null, options);
            var (loss, main, mtp) = trainer.Gradients(sequences.SelectMany(s => s).ToArray(), sequences.Count, w, grads.Data);

            var file = parseResult.GetValue(output)!.FullName;
            grads.Save(file, new Dictionary<string, float> { ["loss"] = (float)loss, ["main_loss"] = (float)main, ["mtp_loss"] = (float)mtp });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {file}: loss {loss:F6} (main {main:F6}, mtp {mtp:F6} x {w}), {grads.Specs.Count} gradients, {engine} engine"));
            return Task.FromResult(0);
        });
        return command;
    }

    private static int[] ParseTokens(string text, int vocab)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]) || ids[i] < 0 || ids[i] >= vocab)
            {
                throw new CliException($"--tokens: '{parts[i]}' is not a token id in [0, {vocab})");
            }
        }

        return ids;
    }
}
