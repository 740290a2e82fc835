using System.Text;
using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Plugins;
using DeepSeekRL.Storage.Parquet;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Text;
using DeepSeekRL.Tokenizers;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>A campaign that was created, with what was reported while reading its inputs.</summary>
/// <param name="Id">The new campaign id.</param>
/// <param name="TrainRows">Training prompts stored.</param>
/// <param name="EvalRows">Evaluation prompts stored.</param>
/// <param name="Warnings">One line per malformed dataset row (first 20) and other notes.</param>
/// <param name="MalformedRows">Dataset rows skipped as malformed.</param>
public sealed record CreatedCampaign(long Id, int TrainRows, int EvalRows, IReadOnlyList<string> Warnings, int MalformedRows);

/// <summary>Creates campaigns: checks the reward rules, the tokenizer and the model, reads the dataset, and freezes
/// everything into the campaign store.</summary>
/// <param name="store">The campaign store.</param>
public sealed class CampaignCreator(CampaignStore store)
{
    /// <summary>The largest dataset line read (bytes); longer lines are malformed rows.</summary>
    public const int MaxRowBytes = 1 << 20;

    /// <summary>
    /// Creates a campaign from a validated spec: checks the reward rules, the tokenizer and the model, reads the
    /// dataset (malformed rows are counted and skipped), stores everything and publishes policy version 0.
    /// </summary>
    /// <param name="spec">The validated spec.</param>
    /// <param name="specJson">The spec's JSON text (stored as given).</param>
    /// <param name="baseDirectory">The spec's directory.</param>
    /// <param name="registry">The policy registry (version 0 of a native policy is published there).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The campaign, or a one-line error naming the field or file.</returns>
    public async Task<Outcome<CreatedCampaign>> CreateAsync(
        CampaignSpec spec, string specJson, string baseDirectory, PolicyRegistry registry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(registry);
        using (var plugins = new PluginLoader())
        {
            var (built, error) = RulesFile.Build(spec.Rewards.Json, baseDirectory, plugins);
            if (built is null)
            {
                return Outcome<CreatedCampaign>.Failure($"rewards: {error}");
            }
        }

        var warnings = new List<string>();
        var malformed = 0;
        var read = await ReadRowsAsync("dataset.path", spec.Dataset.Path, spec.Dataset, spec.Dataset.MaxRows, warnings, cancellationToken);
        if (!read.Succeeded)
        {
            return Outcome<CreatedCampaign>.Failure(read.Error!);
        }

        var rows = read.Value.Rows;
        malformed += read.Value.Malformed;
        List<CampaignPrompt> train, eval;
        if (spec.Dataset.EvalPath is { } evalPath)
        {
            train = rows;
            read = await ReadRowsAsync("dataset.eval_path", evalPath, spec.Dataset, null, warnings, cancellationToken);
            if (!read.Succeeded)
            {
                return Outcome<CreatedCampaign>.Failure(read.Error!);
            }

            eval = read.Value.Rows;
            malformed += read.Value.Malformed;
        }
        else
        {
            (train, eval) = Split(rows, spec.Dataset.EvalFraction, spec.Seed);
        }

        if (spec.Evaluation.SetPath is { } setPath)
        {
            read = await ReadRowsAsync("evaluation.set_path", setPath, spec.Dataset, null, warnings, cancellationToken);
            if (!read.Succeeded)
            {
                return Outcome<CreatedCampaign>.Failure(read.Error!);
            }

            eval = read.Value.Rows;
            malformed += read.Value.Malformed;
        }

        if (train.Count == 0)
        {
            return Outcome<CreatedCampaign>.Failure($"dataset.path = {spec.Dataset.Path}: no usable training rows ({malformed} malformed); expected JSONL objects or Parquet rows with \"{spec.Dataset.PromptField}\"");
        }

        if (spec.Evaluation.EverySteps > 0 && eval.Count == 0)
        {
            return Outcome<CreatedCampaign>.Failure("evaluation: the evaluation set is empty; expected at least one usable row (or evaluation.every_steps = 0)");
        }

        string? tokenizerText = null, configText = null;
        string? checkpoint = null;
        try
        {
            if (spec.Policy is NativePolicySpec native)
            {
                var prepared = PrepareNative(native);
                if (!prepared.Succeeded)
                {
                    return Outcome<CreatedCampaign>.From(prepared);
                }

                (tokenizerText, configText, checkpoint) = prepared.Value;
            }

            // As parsed by the validator: jsonb refuses a lone surrogate escape, which decodes to U+FFFD.
            var id = await store.InsertAsync(new NewCampaign(
                spec.Name, JsonText.ReplaceLoneSurrogates(specJson), spec.Mode, spec.Algorithm.Steps, baseDirectory, tokenizerText, configText,
                train, eval, malformed), cancellationToken);

            if (checkpoint is not null)
            {
                var published = await registry.PublishAsync(id, 0, checkpoint, cancellationToken: cancellationToken);
                if (!published.Succeeded)
                {
                    return Outcome<CreatedCampaign>.Failure(published.Error!);
                }
            }

            return Outcome<CreatedCampaign>.Success(new CreatedCampaign(id, train.Count, eval.Count, warnings, malformed));
        }
        finally
        {
            if (checkpoint is not null)
            {
                File.Delete(checkpoint);
            }
        }
    }

    /// <summary>Reads the native policy's tokenizer and config and writes its initial weights to a temporary file.</summary>
    private static Outcome<(string Tokenizer, string Config, string Checkpoint)> PrepareNative(NativePolicySpec native)
    {
        var tokenizerPath = native.TokenizerPath!;
        BpeTokenizer tokenizer;
        try
        {
            tokenizer = TokenizerJson.Load(tokenizerPath);
        }
        catch (TokenizerFormatException ex)
        {
            return Outcome<(string, string, string)>.Failure($"policy.native.tokenizer: {ex.Message}");
        }

        var configPath = native.ConfigPath ?? Path.Combine(native.ModelDirectory!, ModelCheckpoint.ConfigFileName);
        var (config, configError) = DeepSeekV3Config.Load(configPath);
        if (config is null)
        {
            return Outcome<(string, string, string)>.Failure($"policy.native: {configError}");
        }

        if (tokenizer.TokenToId(ChatTemplate.Bos) is not { } bos || tokenizer.TokenToId(ChatTemplate.Eos) is not { } eos)
        {
            return Outcome<(string, string, string)>.Failure($"policy.native.tokenizer = {tokenizerPath}: expected the special tokens {ChatTemplate.Bos} and {ChatTemplate.Eos}");
        }

        if (tokenizer.VocabSize > config.VocabSize || bos >= config.VocabSize || eos >= config.VocabSize)
        {
            return Outcome<(string, string, string)>.Failure(
                $"policy.native.tokenizer = {tokenizerPath}: {tokenizer.VocabSize} tokens; expected at most the model's vocab_size {config.VocabSize}");
        }

        ParameterStore store;
        if (native.ModelDirectory is { } directory)
        {
            try
            {
                store = ModelCheckpoint.Load(directory);
            }
            catch (Exception ex) when (ex is SafetensorsException or IOException or InvalidDataException)
            {
                return Outcome<(string, string, string)>.Failure($"policy.native.model = {directory}: {ex.Message}");
            }
        }
        else
        {
            store = ModelInit.Create(config, native.InitSeed);
        }

        var temp = Directory.CreateTempSubdirectory("deepseekrl-v0-").FullName;
        try
        {
            ModelCheckpoint.Save(store, temp);
            var file = Path.Combine(Path.GetTempPath(), $"deepseekrl-v0-{Guid.NewGuid():N}.safetensors");
            File.Move(Path.Combine(temp, ModelCheckpoint.WeightsFileName), file);
            return Outcome<(string, string, string)>.Success(
                (File.ReadAllText(tokenizerPath), File.ReadAllText(Path.Combine(temp, ModelCheckpoint.ConfigFileName)), file));
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>Reads dataset rows, JSONL or Parquet (by the <c>.parquet</c> extension or the <c>PAR1</c> magic);
    /// malformed rows are counted and described (the first 20); an unreadable Parquet file is an error naming the field.</summary>
    private static async Task<Outcome<(List<CampaignPrompt> Rows, int Malformed)>> ReadRowsAsync(
        string field, string path, DatasetSpec dataset, int? maxRows, List<string> warnings, CancellationToken cancellationToken)
    {
        if (!ParquetRows.IsParquet(path))
        {
            var malformed = 0;
            return Outcome<(List<CampaignPrompt>, int)>.Success((ReadRows(path, dataset, maxRows, warnings, ref malformed), malformed));
        }

        var opened = await ParquetRows.OpenAsync(path, cancellationToken);
        if (!opened.Succeeded)
        {
            return Outcome<(List<CampaignPrompt>, int)>.Failure($"{field} = {path}: {opened.Error}");
        }

        await using var parquet = opened.Value;
        var name = Path.GetFileName(path);
        foreach (var column in parquet.SkippedColumns)
        {
            warnings.Add($"{name}: column \"{column}\" is nested (list, struct or map); only flat columns are read; ignored");
        }

        var rows = new List<CampaignPrompt>();
        var bad = 0;
        try
        {
            await foreach (var row in parquet.ReadAsync(cancellationToken))
            {
                if (maxRows is { } max && rows.Count >= max)
                {
                    break;
                }

                // The same mapping and checks as a JSONL line; a row's columns are its fields.
                var problem = ParseRow(row.Json, dataset, out var prompt);
                if (problem is not null)
                {
                    bad++;
                    if (warnings.Count < 20)
                    {
                        warnings.Add($"{name} {row.Where}: {problem.Replace("field \"", "column \"", StringComparison.Ordinal)}; skipped");
                    }

                    continue;
                }

                rows.Add(prompt!);
            }
        }
        catch (InvalidDataException ex)
        {
            return Outcome<(List<CampaignPrompt>, int)>.Failure($"{field} = {path}: {ex.Message}");
        }

        return Outcome<(List<CampaignPrompt>, int)>.Success((rows, bad));
    }

    /// <summary>Reads JSONL dataset rows; malformed rows are counted and described (the first 20).</summary>
    private static List<CampaignPrompt> ReadRows(string path, DatasetSpec dataset, int? maxRows, List<string> warnings, ref int malformed)
    {
        var rows = new List<CampaignPrompt>();
        var name = Path.GetFileName(path);
        var line = 0;
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, new FileStreamOptions { BufferSize = 1 << 16 });
        while (reader.ReadLine() is { } text)
        {
            line++;
            if (maxRows is { } max && rows.Count >= max)
            {
                break;
            }

            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            var problem = ParseRow(text, dataset, out var row);
            if (problem is not null)
            {
                malformed++;
                if (warnings.Count < 20)
                {
                    warnings.Add($"{name} line {line}: {problem}; skipped");
                }

                continue;
            }

            rows.Add(row!);
        }

        return rows;
    }

    /// <summary>Parses one row; returns what is wrong with it, or null.</summary>
    internal static string? ParseRow(string text, DatasetSpec dataset, out CampaignPrompt? row)
    {
        row = null;
        if (text.Length > MaxRowBytes)
        {
            return $"{text.Length} characters; expected at most {MaxRowBytes}";
        }

        try
        {
            using var document = JsonText.Parse(text, new JsonDocumentOptions { MaxDepth = 32 });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return $"a JSON {root.ValueKind.ToString().ToLowerInvariant()}; expected an object";
            }

            if (!root.TryGetProperty(dataset.PromptField, out var prompt) || prompt.ValueKind != JsonValueKind.String || prompt.GetString()!.Length == 0)
            {
                return $"field \"{dataset.PromptField}\" is {(root.TryGetProperty(dataset.PromptField, out var p) ? p.ValueKind.ToString().ToLowerInvariant() : "missing")}; expected a non-empty string";
            }

            string? answer = null;
            if (root.TryGetProperty(dataset.AnswerField, out var a))
            {
                answer = a.ValueKind switch
                {
                    JsonValueKind.String => a.GetString(),
                    JsonValueKind.Number => a.GetRawText(),
                    JsonValueKind.Null => null,
                    _ => throw new FormatException($"field \"{dataset.AnswerField}\" is {a.ValueKind.ToString().ToLowerInvariant()}; expected a string or number"),
                };
            }

            var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name != dataset.PromptField && property.Name != dataset.AnswerField)
                {
                    fields[property.Name] = property.Value.Clone();
                }
            }

            // PostgreSQL text and jsonb cannot hold U+0000: such a row is malformed, not a failed campaign.
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name.Contains('\0', StringComparison.Ordinal) || ContainsNul(property.Value))
                {
                    return $"field {JsonSerializer.Serialize(property.Name)}: contains U+0000, which PostgreSQL text cannot store";
                }
            }

            row = new CampaignPrompt(prompt.GetString()!, answer, fields);
            return null;
        }
        catch (JsonException ex)
        {
            return $"invalid JSON ({ex.Message.Split('.')[0]})";
        }
        catch (FormatException ex)
        {
            return ex.Message;
        }
    }

    private static bool ContainsNul(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return element.GetString()!.Contains('\0', StringComparison.Ordinal);
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (property.Name.Contains('\0', StringComparison.Ordinal) || ContainsNul(property.Value))
                    {
                        return true;
                    }
                }

                return false;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    if (ContainsNul(item))
                    {
                        return true;
                    }
                }

                return false;
            default:
                return false;
        }
    }

    /// <summary>A seeded hold-out: round(n × fraction) rows (at least 1 when the fraction is positive) go to eval.</summary>
    internal static (List<CampaignPrompt> Train, List<CampaignPrompt> Eval) Split(List<CampaignPrompt> rows, double fraction, long seed)
    {
        if (fraction <= 0 || rows.Count < 2)
        {
            return (rows, []);
        }

        var order = Enumerable.Range(0, rows.Count).ToArray();
        new Random(unchecked((int)(seed ^ (seed >> 32)) ^ 0x5EED)).Shuffle(order);
        var evalCount = Math.Clamp((int)Math.Round(rows.Count * fraction), 1, rows.Count - 1);
        var evalSet = order.Take(evalCount).Order().ToArray();
        var isEval = new bool[rows.Count];
        foreach (var i in evalSet)
        {
            isEval[i] = true;
        }

        return (rows.Where((_, i) => !isEval[i]).ToList(), evalSet.Select(i => rows[i]).ToList());
    }
}
