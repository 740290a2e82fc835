using System.CommandLine;
using System.Globalization;
using System.Text;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Sampling;
using DeepSeekRL.Model.Weights;
using DeepSeekRL.Silo.CommandLine;

namespace DeepSeekRL.Silo.Model;

/// <summary>
/// <c>deepseekrl model forward|generate</c>: run an engine (native, or libtorch with <c>--backend torch</c>) on a model
/// directory (config.json + model.safetensors). Added to the <c>model</c> command by <see cref="AddTo"/>.
/// </summary>
public static class ModelEngineCommands
{
    /// <summary>Adds <c>forward</c> and <c>generate</c> to the <c>model</c> command.</summary>
    /// <param name="model">The <c>model</c> command.</param>
    public static void AddTo(Command model)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Subcommands.Add(CreateForward());
        model.Subcommands.Add(CreateGenerate());
    }

    private static Option<DirectoryInfo> ModelOption() => new("--model") { Description = "The model directory (config.json + model.safetensors).", Required = true };

    private static Option<int> ThreadsOption() => new("--threads") { Description = "Kernel threads: OpenBLAS, or libtorch's with --backend torch (default 2).", DefaultValueFactory = _ => 2 };

    private static Option<string> CacheOption() => new("--cache") { Description = "KV cache: absorbed (the MLA latent cache, default) or naive.", DefaultValueFactory = _ => "absorbed" };

    /// <summary><c>model forward --model DIR --tokens 1,2,3 [--decode] [--cache absorbed|naive] --out FILE.safetensors</c>.</summary>
    /// <returns>The command.</returns>
    public static Command CreateForward()
    {
        var dir = ModelOption();
        var tokens = new Option<string>("--tokens") { Description = "Comma-separated token ids.", Required = true };
        var decode = new Option<bool>("--decode") { Description = "Run token by token through the KV cache instead of one prefill." };
        var cache = CacheOption();
        var output = new Option<FileInfo>("--out") { Description = "Output safetensors file: 'logits' [T, vocab] float32 (and 'mtp_logits' [T-1, vocab] with an MTP module).", Required = true };
        var threads = ThreadsOption();
        var backend = BackendOptions.Backend();
        var device = BackendOptions.Device();
        var command = new Command("forward", "Logits at every position of a token sequence (prefill, or token-by-token decode with --decode).");
        foreach (var option in new Option[] { dir, tokens, decode, cache, output, threads, backend, device })
        {
            command.Options.Add(option);
        }

        command.SetHandler((parseResult, cancellationToken) =>
        {
            var (engine, on) = BackendOptions.Read(parseResult, backend, device);
            var weights = LoadWeights(parseResult.GetValue(dir)!, parseResult.GetValue(threads));
            var v = weights.Config.VocabSize;
            var ids = ParseTokens("--tokens", parseResult.GetValue(tokens)!, v);
            if (ids.Length > weights.Config.MaxPositionEmbeddings)
            {
                throw new CliException($"--tokens: {ids.Length} tokens exceed max_position_embeddings = {weights.Config.MaxPositionEmbeddings}");
            }

            var kind = ParseCache(parseResult.GetValue(cache)!);
            var (model, options) = BackendOptions.Engine(engine, on, parseResult.GetValue(threads));
            using var sampler = model.CreateSampler(weights, options);
            float[] logits, mtp;
            try
            {
                (logits, mtp) = sampler.SequenceLogits(ids, parseResult.GetValue(decode), kind);
            }
            catch (NotSupportedException e)
            {
                throw new CliException("--cache: " + e.Message);
            }

            var tensors = new List<(string, long[], ReadOnlyMemory<float>)> { ("logits", [ids.Length, v], logits) };
            if (mtp.Length > 0)
            {
                tensors.Add(("mtp_logits", [ids.Length - 1, v], mtp));
            }

            var file = parseResult.GetValue(output)!.FullName;

            Safetensors.Write(file, tensors);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {file}: logits [{ids.Length}, {v}] ({(parseResult.GetValue(decode) ? "decode" : "prefill")}, {kind} cache, {engine} engine)"));
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary><c>model generate --model DIR --prompt 1,2,3 [--max-tokens --temperature --top-p --top-k --seed --stop-ids --mtp]</c>.</summary>
    /// <returns>The command.</returns>
    public static Command CreateGenerate()
    {
        var dir = ModelOption();
        var prompt = new Option<string[]>("--prompt", "--tokens") { Description = "Prompt token ids, comma-separated; repeat the option for a batch.", Required = true, AllowMultipleArgumentsPerToken = false };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens to generate per prompt (default 64).", DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature") { Description = "Temperature; 0 = greedy (default 1).", DefaultValueFactory = _ => 1f };
        var topP = new Option<float>("--top-p") { Description = "Nucleus mass in (0, 1] (default 1 = off).", DefaultValueFactory = _ => 1f };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens (default 0 = off)." };
        var seed = new Option<ulong>("--seed") { Description = "Sampling seed (default 0)." };
        var stopIds = new Option<string?>("--stop-ids") { Description = "Comma-separated stop token ids (default: eos_token_id of the config)." };
        var mtp = new Option<bool>("--mtp") { Description = "MTP speculative decoding (needs num_nextn_predict_layers = 1); reports the acceptance rate." };
        var cache = CacheOption();
        var threads = ThreadsOption();
        var backend = BackendOptions.Backend();
        var device = BackendOptions.Device();
        var command = new Command("generate", "Sample completions for one or more prompts with the latent KV cache; prints tokens and log-probs.");
        foreach (var option in new Option[] { dir, prompt, maxTokens, temperature, topP, topK, seed, stopIds, mtp, cache, threads, backend, device })
        {
            command.Options.Add(option);
        }

        command.SetHandler((parseResult, cancellationToken) =>
        {
            var (engine, on) = BackendOptions.Read(parseResult, backend, device);
            var weights = LoadWeights(parseResult.GetValue(dir)!, parseResult.GetValue(threads));
            var v = weights.Config.VocabSize;
            var prompts = parseResult.GetValue(prompt)!.Select(p => ParseTokens("--prompt", p, v)).ToList();
            var stops = parseResult.GetValue(stopIds) is { } s
                ? ParseTokens("--stop-ids", s, v)
                : weights.Config.EosTokenId is int eos ? [eos] : [];
            var options = new SamplingOptions
            {
                MaxTokens = parseResult.GetValue(maxTokens),
                Temperature = parseResult.GetValue(temperature),
                TopP = parseResult.GetValue(topP),
                TopK = parseResult.GetValue(topK),
                Seed = parseResult.GetValue(seed),
                StopTokenIds = stops,
                SpeculativeMtp = parseResult.GetValue(mtp),
            };
            if (options.Validate() is { } error)
            {
                throw new CliException(error);
            }

            if (options.SpeculativeMtp && weights.Config.NumNextnPredictLayers == 0)
            {
                throw new CliException("--mtp: the model has no MTP module (num_nextn_predict_layers = 0)");
            }

            var longest = prompts.Max(p => p.Length);
            if (longest >= weights.Config.MaxPositionEmbeddings)
            {
                throw new CliException($"--prompt: {longest} tokens leave no room in max_position_embeddings = {weights.Config.MaxPositionEmbeddings}");
            }

            var kind = ParseCache(parseResult.GetValue(cache)!);
            var (model, engineOptions) = BackendOptions.Engine(engine, on, parseResult.GetValue(threads));
            using var sampler = model.CreateSampler(weights, engineOptions);
            GenerationResult result;
            try
            {
                result = sampler.Generate(prompts, Enumerable.Range(0, prompts.Count).Select(i => (options.Seed, i)).ToArray(), options, kind, cancellationToken);
            }
            catch (NotSupportedException e)
            {
                throw new CliException((options.SpeculativeMtp ? "--mtp: " : "--cache: ") + e.Message);
            }

            for (var i = 0; i < result.Sequences.Count; i++)
            {
                var seq = result.Sequences[i];
                var text = new StringBuilder();
                text.Append(CultureInfo.InvariantCulture, $"[{i}] finish={seq.Finish} tokens={string.Join(',', seq.Tokens)}");
                text.Append(CultureInfo.InvariantCulture, $"\n[{i}] logprobs={string.Join(',', seq.LogProbs.Select(x => x.ToString("0.####", CultureInfo.InvariantCulture)))}");
                Console.WriteLine(text.ToString());
            }

            if (options.SpeculativeMtp)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"mtp: {result.DraftsAccepted}/{result.DraftsProposed} drafts accepted (acceptance rate {result.AcceptanceRate:0.###})"));
            }

            return Task.FromResult(0);
        });
        return command;
    }

    private static ModelWeights LoadWeights(DirectoryInfo directory, int threads)
    {
        if (threads < 1)
        {
            throw new CliException($"--threads: {threads} is not a positive number");
        }

        var (loaded, error) = ModelWeights.LoadDirectory(directory.FullName);
        return loaded ?? throw new CliException("--model: " + error);
    }

    private static KvCacheKind ParseCache(string value) => value switch
    {
        "absorbed" or "absorb" or "latent" => KvCacheKind.Absorbed,
        "naive" => KvCacheKind.Naive,
        _ => throw new CliException($"--cache: '{value}' is not absorbed or naive"),
    };

    private static int[] ParseTokens(string option, string text, int vocab)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            throw new CliException($"{option}: no token ids in '{text}'");
        }

        var ids = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]) || ids[i] < 0 || ids[i] >= vocab)
            {
                throw new CliException($"{option}: '{parts[i]}' is not a token id in [0, {vocab})");
            }
        }

        return ids;
    }
}
