using System.CommandLine;
using System.Globalization;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Storage.Parquet;
using DeepSeekRL.Tokenizers;

namespace DeepSeekRL.Silo.Model;

/// <summary>
/// <c>model train-sft --model DIR --data FILE --out DIR</c>: supervised fine-tuning on chat-format JSONL or Parquet (the
/// export formats), training on the final assistant turn only, with AdamW, warm-up + cosine schedule, gradient
/// clipping, the MTP loss and the auxiliary-loss-free routing-bias update. Writes the checkpoint, the optimizer state,
/// the tokenizer and a loss curve (<c>loss.csv</c>).
/// </summary>
public static class TrainSftCommand
{
    /// <summary>Creates the command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "The model directory (config.json + model.safetensors).", Required = true };
        var tokenizer = new Option<FileInfo?>("--tokenizer") { Description = "tokenizer.json (default: the one in the model directory)." };
        var data = new Option<FileInfo>("--data") { Description = "Chat-format JSONL ({\"messages\": [{\"role\", \"content\"}, ...]} per line) or Parquet with a messages column of {role, content} structs (a .parquet name or PAR1 magic).", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Where to write the fine-tuned model.", Required = true };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the data (default 1).", DefaultValueFactory = _ => 1 };
        var batchSize = new Option<int>("--batch-size") { Description = "Sequences per step, padded to the longest (default 8).", DefaultValueFactory = _ => 8 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (default 1e-3).", DefaultValueFactory = _ => 1e-3 };
        var warmup = new Option<int>("--warmup") { Description = "Warm-up steps (default 10).", DefaultValueFactory = _ => 10 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Rows longer than this are skipped (default: max_position_embeddings).", DefaultValueFactory = _ => 0 };
        var mtpWeight = new Option<float>("--mtp-weight") { Description = "λ, the MTP loss weight (default 0.3; 0 when the model has no MTP module).", DefaultValueFactory = _ => 0.3f };
        var gamma = new Option<float>("--bias-speed") { Description = "γ of the auxiliary-loss-free routing-bias update (default 1e-3; 0 = off).", DefaultValueFactory = _ => 1e-3f };
        var alpha = new Option<float>("--balance-alpha") { Description = "α of the complementary sequence-wise balance loss (default 0 = off; V3 used 1e-4).", DefaultValueFactory = _ => 0f };
        var seed = new Option<int>("--seed") { Description = "Shuffle seed (default 1).", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "Threads (default 2).", DefaultValueFactory = _ => 2 };
        var maxSteps = new Option<int>("--max-steps") { Description = "Stop after this many steps in total and save (the run can be continued with --resume).", DefaultValueFactory = _ => 0 };
        var resume = new Option<bool>("--resume") { Description = "Continue the interrupted run saved in --model (its optimizer.safetensors holds the step and the run's settings); ends bit-for-bit equal to an uninterrupted run." };
        var backend = BackendOptions.Backend();
        var device = BackendOptions.Device();
        var command = new Command("train-sft", "Supervised fine-tuning on chat-format JSONL or Parquet (assistant tokens only), with progress, loss curve and throughput.");
        foreach (var option in new Option[] { model, tokenizer, data, output, epochs, batchSize, lr, warmup, maxTokens, mtpWeight, gamma, alpha, seed, threads, maxSteps, resume, backend, device })
        {
            command.Options.Add(option);
        }

        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            var (engine, on) = BackendOptions.Read(parseResult, backend, device);
            _ = BackendOptions.Engine(engine, on, parseResult.GetValue(threads)); // libtorch loads and the device exists, before any work

            var modelDir = parseResult.GetValue(model)!.FullName;
            var (weights, error) = ModelWeights.LoadDirectory(modelDir);
            if (weights is null)
            {
                throw new CliException(error!);
            }

            var config = weights.Config;
            var tokenizerPath = parseResult.GetValue(tokenizer)?.FullName ?? Path.Combine(modelDir, "tokenizer.json");
            if (!File.Exists(tokenizerPath))
            {
                throw new CliException($"--tokenizer: {tokenizerPath} does not exist (pass --tokenizer or put tokenizer.json in the model directory)");
            }

            BpeTokenizer bpe;
            try
            {
                bpe = TokenizerJson.Load(tokenizerPath);
            }
            catch (TokenizerFormatException ex)
            {
                throw new CliException(ex.Message);
            }

            var b = parseResult.GetValue(batchSize);
            var nEpochs = parseResult.GetValue(epochs);
            if (b < 1 || nEpochs < 1)
            {
                throw new CliException($"--batch-size {b} and --epochs {nEpochs} must be positive");
            }

            var limit = parseResult.GetValue(maxTokens) is > 0 and var m ? Math.Min(m, config.MaxPositionEmbeddings) : config.MaxPositionEmbeddings;
            var dataFile = parseResult.GetValue(data)!;
            if (!dataFile.Exists)
            {
                throw new CliException($"--data: {dataFile.FullName} does not exist");
            }

            IReadOnlyList<SftExample> examples;
            IReadOnlyList<SftSkippedRow> skipped;
            ParquetRows? parquet = null;
            try
            {
                if (ParquetRows.IsParquet(dataFile.FullName))
                {
                    // Row group by row group: only the examples' tokens stay in memory, never the file's text.
                    var opened = await ParquetRows.OpenAsync(dataFile.FullName, cancellationToken);
                    parquet = opened.Succeeded ? opened.Value : throw new CliException($"--data: {opened.Error}");
                    examples = SftDataset.Load(
                        parquet.ReadAsync(cancellationToken).ToBlockingEnumerable(cancellationToken).Select(row => row.Json), bpe, limit, out skipped);
                }
                else
                {
                    examples = SftDataset.Load(dataFile.FullName, bpe, limit, out skipped);
                }
            }
            catch (ArgumentException ex)
            {
                throw new CliException($"--tokenizer: {ex.Message}");
            }
            catch (InvalidDataException ex)
            {
                throw new CliException($"--data: {ex.Message}");
            }

            foreach (var row in skipped.Take(5))
            {
                var where = parquet is null ? $"line {row.Line}" : parquet.Where(row.Line - 1);
                var reason = parquet is null ? row.Reason : row.Reason.Replace("field \"", "column \"", StringComparison.Ordinal);
                Console.Error.WriteLine($"deepseekrl: warning: {dataFile.Name} {where}: {reason}; skipped");
            }

            if (parquet is not null)
            {
                await parquet.DisposeAsync();
            }

            if (skipped.Count > 5)
            {
                Console.Error.WriteLine($"deepseekrl: warning: {skipped.Count - 5} more rows skipped");
            }

            if (examples.Count == 0)
            {
                throw new CliException($"--data: {dataFile.FullName} has no usable rows ({skipped.Count} skipped)");
            }

            var eos = bpe.TokenToId(ChatTemplate.Eos)!.Value;
            var options = new SftRunOptions
            {
                Epochs = nEpochs,
                BatchSize = b,
                LearningRate = parseResult.GetValue(lr),
                Warmup = parseResult.GetValue(warmup),
                MtpWeight = parseResult.GetValue(mtpWeight),
                BiasSpeed = parseResult.GetValue(gamma),
                BalanceAlpha = parseResult.GetValue(alpha),
                Seed = parseResult.GetValue(seed),
                Threads = parseResult.GetValue(threads),
                MaxSteps = parseResult.GetValue(maxSteps),
                Backend = engine,
                Device = on,
            };
            var resumed = parseResult.GetValue(resume) ? SftRun.LoadState(modelDir, config, options, examples.Count) : null;
            var outDir = parseResult.GetValue(output)!.FullName;
            var stepsPerEpoch = (examples.Count + b - 1) / b;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"train-sft: {examples.Count} examples ({skipped.Count} skipped), {nEpochs} epoch(s) x {stepsPerEpoch} steps of {b}, {examples.Sum(e => e.TargetCount)} target tokens per epoch"));
            var result = SftRun.Run(weights, examples, eos, options, outDir, resumed, (step, totalSteps, loss, rate) =>
            {
                if (step == 1 || step % 10 == 0 || step == totalSteps)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  step {step,5}/{totalSteps}  loss {loss,8:0.0000}  {rate,8:0} tok/s"));
                }
            }, cancellationToken);
            File.Copy(tokenizerPath, Path.Combine(outDir, "tokenizer.json"), overwrite: true);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"train-sft: {result.Steps} steps, {result.Tokens} tokens in {result.Seconds:0.0} s ({result.Tokens / Math.Max(1e-9, result.Seconds):0} tok/s); wrote {outDir}"));
            return 0;
        });
        return command;
    }
}
