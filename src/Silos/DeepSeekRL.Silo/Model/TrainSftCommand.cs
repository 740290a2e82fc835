using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Optimization;
using DeepSeekRL.Model.Tokenization;
using DeepSeekRL.Model.Training;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;

namespace DeepSeekRL.Silo.Model;

/// <summary>
/// <c>model train-sft --model DIR --data FILE.jsonl --out DIR</c>: supervised fine-tuning on chat-format JSONL (the
/// export format), training on the final assistant turn only, with AdamW, warm-up + cosine schedule, gradient
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
        var data = new Option<FileInfo>("--data") { Description = "Chat-format JSONL: {\"messages\": [{\"role\", \"content\"}, ...]} per line.", Required = true };
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
        var command = new Command("train-sft", "Supervised fine-tuning on chat-format JSONL (assistant tokens only), with progress, loss curve and throughput.");
        foreach (var option in new Option[] { model, tokenizer, data, output, epochs, batchSize, lr, warmup, maxTokens, mtpWeight, gamma, alpha, seed, threads, maxSteps, resume })
        {
            command.Options.Add(option);
        }

        command.SetHandler((parseResult, cancellationToken) =>
        {
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
            try
            {
                examples = SftDataset.Load(dataFile.FullName, bpe, limit, out skipped);
            }
            catch (ArgumentException ex)
            {
                throw new CliException($"--tokenizer: {ex.Message}");
            }

            foreach (var row in skipped.Take(5))
            {
                Console.Error.WriteLine($"deepseekrl: warning: {dataFile.Name} line {row.Line}: {row.Reason}; skipped");
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
            var stepsPerEpoch = (examples.Count + b - 1) / b;
            var totalSteps = stepsPerEpoch * nEpochs;
            var optimizerOptions = new AdamWOptions
            {
                WeightDecay = 0.0,
                Schedule = new LearningRateScheduleOptions
                {
                    PeakLearningRate = parseResult.GetValue(lr),
                    MinLearningRate = parseResult.GetValue(lr) * 0.1,
                    WarmupSteps = Math.Min(parseResult.GetValue(warmup), Math.Max(1, totalSteps / 2)),
                    TotalSteps = Math.Max(totalSteps, 2),
                },
            };

            // The run's identity: a resumed run must have the same data, batching and schedule to end where an
            // uninterrupted run ends.
            var runKey = string.Create(CultureInfo.InvariantCulture,
                $"{examples.Count}|{nEpochs}|{b}|{parseResult.GetValue(lr):R}|{optimizerOptions.Schedule.WarmupSteps}|{parseResult.GetValue(seed)}|{parseResult.GetValue(mtpWeight):R}|{parseResult.GetValue(gamma):R}|{parseResult.GetValue(alpha):R}");
            AdamW optimizer;
            var firstStep = 0;
            if (parseResult.GetValue(resume))
            {
                try
                {
                    optimizer = AdamW.Load(modelDir, ParameterLayout(config), optimizerOptions);
                }
                catch (Exception ex) when (ex is SafetensorsException or IOException or InvalidDataException)
                {
                    throw new CliException($"--resume: {ex.Message}");
                }

                if (!optimizer.Metadata.TryGetValue("sft.run", out var savedKey) || savedKey != runKey)
                {
                    throw new CliException($"--resume: {modelDir} was saved by a run with other data or settings (saved '{savedKey}', now '{runKey}')");
                }

                firstStep = (int)optimizer.StepCount;
            }
            else
            {
                optimizer = new AdamW(ParameterLayout(config), optimizerOptions);
            }

            optimizer.Metadata["sft.run"] = runKey;
            var stopAt = parseResult.GetValue(maxSteps) is > 0 and var ms ? Math.Min(ms, totalSteps) : totalSteps;
            var trainer = new TrainingModel(weights, parseResult.GetValue(threads));
            var grads = new Gradients(config);
            var lambda = config.NumNextnPredictLayers > 0 ? parseResult.GetValue(mtpWeight) : 0f;
            var order = Enumerable.Range(0, examples.Count).ToArray();
            var outDir = parseResult.GetValue(output)!.FullName;
            Directory.CreateDirectory(outDir);
            using var curve = new StreamWriter(Path.Combine(outDir, "loss.csv"));
            curve.WriteLine("step,epoch,loss,main_loss,mtp_loss,lr,grad_norm,tokens_per_s,expert_max_vio");
            var total = Stopwatch.StartNew();
            long trainedTokens = 0;
            var step = 0;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"train-sft: {examples.Count} examples ({skipped.Count} skipped), {nEpochs} epoch(s) x {stepsPerEpoch} steps of {b}, {examples.Sum(e => e.TargetCount)} target tokens per epoch"));
            for (var epoch = 1; epoch <= nEpochs && step < stopAt; epoch++)
            {
                // Each epoch's order depends only on (seed, epoch), so a resumed run sees the same batches.
                for (var i = 0; i < order.Length; i++)
                {
                    order[i] = i;
                }

                new Random((parseResult.GetValue(seed) * 7919) + epoch).Shuffle(order);
                for (var start = 0; start < order.Length && step < stopAt; start += b)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (step < firstStep)
                    {
                        step++;
                        continue;
                    }

                    var rows = order.AsSpan(start, Math.Min(b, order.Length - start));
                    var length = 0;
                    foreach (var i in rows)
                    {
                        length = Math.Max(length, examples[i].Tokens.Length);
                    }

                    // (B, T) padded with EOS; padding positions carry no loss.
                    var tokens = new int[rows.Length * length];
                    var mask = new float[rows.Length * length];
                    Array.Fill(tokens, eos);
                    for (var r = 0; r < rows.Length; r++)
                    {
                        var e = examples[rows[r]];
                        e.Tokens.CopyTo(tokens, r * length);
                        for (var t = 0; t < e.LossMask.Length; t++)
                        {
                            mask[(r * length) + t] = e.LossMask[t];
                        }
                    }

                    var t0 = Stopwatch.GetTimestamp();
                    var loss = trainer.Forward(tokens, rows.Length, mask, lambda, parseResult.GetValue(alpha));
                    var maxVio = MeanMaxViolation(trainer, config);
                    grads.Clear();
                    trainer.Backward(grads);
                    var result = optimizer.Step(weights.Data, grads.Data);
                    if (parseResult.GetValue(gamma) > 0)
                    {
                        trainer.UpdateRoutingBias(parseResult.GetValue(gamma));
                    }

                    var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                    trainedTokens += tokens.Length;
                    step++;
                    var rate = tokens.Length / seconds;
                    curve.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{step},{epoch},{loss:0.######},{trainer.MainLoss:0.######},{trainer.MtpLoss:0.######},{result.LearningRate:0.########},{result.GradNorm:0.######},{rate:0},{maxVio:0.####}"));
                    if (step == 1 || step % 10 == 0 || step == totalSteps)
                    {
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"  step {step,5}/{totalSteps}  epoch {epoch}  loss {loss,8:0.0000}  main {trainer.MainLoss,8:0.0000}  lr {result.LearningRate:0.0e0}  |g| {result.GradNorm,7:0.000}  MaxVio {maxVio,5:0.00}  {rate,8:0} tok/s"));
                    }
                }
            }

            var store = ParameterStore.Allocate(config);
            weights.Data.CopyTo(store.Data, 0);
            ModelCheckpoint.Save(store, outDir);
            optimizer.Save(outDir);
            File.Copy(tokenizerPath, Path.Combine(outDir, "tokenizer.json"), overwrite: true);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"train-sft: {step} steps, {trainedTokens} tokens in {total.Elapsed.TotalSeconds:0.0} s ({trainedTokens / total.Elapsed.TotalSeconds:0} tok/s); wrote {outDir}"));
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>Mean over the main model's MoE layers of MaxVio = (max load − mean load) / mean load in the last forward (DeepSeek-V3's balance metric).</summary>
    private static double MeanMaxViolation(TrainingModel trainer, DeepSeekRL.Model.Config.DeepSeekV3Config config)
    {
        double sum = 0;
        var layers = 0;
        for (var layer = config.FirstKDenseReplace; layer < config.NumHiddenLayers; layer++)
        {
            var load = trainer.ExpertLoad(layer);
            if (load.Length > 0)
            {
                sum += ExpertLoadBalancing.Statistics(Array.ConvertAll(load, x => (float)x)).MaxViolation;
                layers++;
            }
        }

        return layers == 0 ? 0 : sum / layers;
    }

    private static IReadOnlyList<DeepSeekRL.Model.Config.ParameterSpec> ParameterLayout(DeepSeekRL.Model.Config.DeepSeekV3Config config) =>
        DeepSeekRL.Model.Config.ParameterLayout.Parameters(config);
}
