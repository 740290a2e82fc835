using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Silo.CommandLine;

namespace DeepSeekRL.Silo.Model;

/// <summary>
/// <c>deepseekrl model ...</c>: <c>init</c> here; the engine's <c>forward</c>/<c>generate</c> subcommands are added
/// to the same command from their own file (one line in <see cref="Create"/>).
/// </summary>
public static class ModelCommands
{
    /// <summary>Creates the <c>model</c> command with its subcommands.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var command = new Command("model", "DeepSeek-V3 model files: create, run and inspect checkpoints (config.json + model.safetensors).");
        command.Subcommands.Add(CreateInit());
        ModelEngineCommands.AddTo(command);
        ModelTrainingCommands.AddTo(command);
        return command;
    }

    /// <summary><c>model init --config CONFIG.json --seed N --out DIR [--std X] [--bias-std Y] [--dtype f32|bf16]</c>.</summary>
    /// <returns>The command.</returns>
    public static Command CreateInit()
    {
        var config = new Option<FileInfo>("--config") { Description = "An HF config.json with DeepseekV3Config keys (e.g. examples/models/tiny.json).", Required = true };
        var seed = new Option<long>("--seed") { Description = "The seed: the same seed and config give the same weights on every machine.", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "The model directory to write (config.json + model.safetensors; created if missing).", Required = true };
        var std = new Option<double?>("--std") { Description = "Standard deviation of the weight matrices (default: the config's initializer_range)." };
        var biasStd = new Option<double>("--bias-std") { Description = "Standard deviation of e_score_correction_bias (default 0: all zeros).", DefaultValueFactory = _ => 0.0 };
        var dtype = new Option<string>("--dtype") { Description = "Weight dtype in the file: f32 or bf16 (round to nearest even).", DefaultValueFactory = _ => "f32" };
        var command = new Command("init", "Create a model with fresh deterministic weights: N(0, std) matrices, unit norms, zero (or --bias-std) expert bias.");
        command.Options.Add(config);
        command.Options.Add(seed);
        command.Options.Add(output);
        command.Options.Add(std);
        command.Options.Add(biasStd);
        command.Options.Add(dtype);
        command.SetHandler((parseResult, cancellationToken) =>
        {
            var (parsed, error) = DeepSeekV3Config.Load(parseResult.GetValue(config)!.FullName);
            if (parsed is null)
            {
                throw new CliException("--config: " + error);
            }

            var fileDtype = parseResult.GetValue(dtype) switch
            {
                "f32" => SafetensorsDtype.F32,
                "bf16" => SafetensorsDtype.BF16,
                var other => throw new CliException($"--dtype: '{other}' is not f32 or bf16"),
            };
            var options = new ModelInitOptions { Std = parseResult.GetValue(std), BiasStd = parseResult.GetValue(biasStd) };
            if (options.Std is double s && (!double.IsFinite(s) || s < 0))
            {
                throw new CliException($"--std: {s.ToString(CultureInfo.InvariantCulture)} is not a finite value >= 0");
            }

            if (!double.IsFinite(options.BiasStd) || options.BiasStd < 0)
            {
                throw new CliException($"--bias-std: {options.BiasStd.ToString(CultureInfo.InvariantCulture)} is not a finite value >= 0");
            }

            // The block of float32 parameters is allocated at once: say so before, not with an OutOfMemoryException.
            var parameters = ParameterLayout.Count(parsed);
            var needed = parameters * sizeof(float);
            if (SystemMemory.AvailableBytes() is { } available && needed > available)
            {
                throw new CliException(string.Create(CultureInfo.InvariantCulture,
                    $"--config: the model has {parameters:N0} parameters and needs {DeepSeekV3Config.FormatBytes(needed)} of memory as float32; {DeepSeekV3Config.FormatBytes(available)} is available"));
            }

            var stopwatch = Stopwatch.StartNew();
            var store = ModelInit.Create(parsed, parseResult.GetValue(seed), options);
            var directory = parseResult.GetValue(output)!.FullName;
            ModelCheckpoint.Save(store, directory, fileDtype);
            long trainable = 0;
            foreach (var spec in store.Specs)
            {
                trainable += spec.Trainable ? spec.Count : 0;
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {directory}: {store.Data.Length} parameters ({trainable} trainable) as {fileDtype} in {stopwatch.Elapsed.TotalSeconds:0.00} s"));
            return Task.FromResult(0);
        });
        return command;
    }
}
