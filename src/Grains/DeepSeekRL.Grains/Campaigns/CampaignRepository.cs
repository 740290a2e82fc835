using System.Globalization;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Model.Tokenization;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Plugins;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Resilience;
using DeepSeekRL.Text;
using Npgsql;
using NpgsqlTypes;
using Polly;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>A campaign that was created, with what was reported while reading its inputs.</summary>
/// <param name="Id">The new campaign id.</param>
/// <param name="TrainRows">Training prompts stored.</param>
/// <param name="EvalRows">Evaluation prompts stored.</param>
/// <param name="Warnings">One line per malformed dataset row (first 20) and other notes.</param>
/// <param name="MalformedRows">Dataset rows skipped as malformed.</param>
public sealed record CreatedCampaign(long Id, int TrainRows, int EvalRows, IReadOnlyList<string> Warnings, int MalformedRows);

/// <summary>Stores campaigns and their state: creation (inputs frozen into the database), lifecycle, counters, status.</summary>
/// <param name="dataSource">The database.</param>
/// <param name="pipeline">The database resilience pipeline.</param>
public sealed class CampaignRepository(NpgsqlDataSource dataSource, ResiliencePipeline? pipeline = null)
{
    /// <summary>The largest dataset line read (bytes); longer lines are malformed rows.</summary>
    public const int MaxRowBytes = 1 << 20;

    private readonly ResiliencePipeline _pipeline = pipeline ?? DatabaseResilience.Default;

    /// <summary>The database.</summary>
    public NpgsqlDataSource DataSource => dataSource;

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
        var rows = ReadRows(spec.Dataset.Path, spec.Dataset, spec.Dataset.MaxRows, warnings, ref malformed);
        List<CampaignPrompt> train, eval;
        if (spec.Dataset.EvalPath is { } evalPath)
        {
            train = rows;
            eval = ReadRows(evalPath, spec.Dataset, null, warnings, ref malformed);
        }
        else
        {
            (train, eval) = Split(rows, spec.Dataset.EvalFraction, spec.Seed);
        }

        if (spec.Evaluation.SetPath is { } setPath)
        {
            eval = ReadRows(setPath, spec.Dataset, null, warnings, ref malformed);
        }

        if (train.Count == 0)
        {
            return Outcome<CreatedCampaign>.Failure($"dataset.path = {spec.Dataset.Path}: no usable training rows ({malformed} malformed); expected JSONL objects with \"{spec.Dataset.PromptField}\"");
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

            var id = await _pipeline.ExecuteAsync(async ct =>
            {
                await using var connection = await dataSource.OpenConnectionAsync(ct);
                await using var transaction = await connection.BeginTransactionAsync(ct);
                long campaignId;
                await using (var insert = new NpgsqlCommand("""
                    INSERT INTO campaigns (name, state, spec, mode, total_steps, base_dir, tokenizer, model_config)
                    VALUES ($1, 'created', $2, $3, $4, $5, $6, $7) RETURNING id
                    """, connection, transaction))
                {
                    insert.Parameters.Add(new NpgsqlParameter { Value = spec.Name });
                    // As parsed by the validator: jsonb refuses a lone surrogate escape, which decodes to U+FFFD.
                    insert.Parameters.Add(new NpgsqlParameter { Value = JsonText.ReplaceLoneSurrogates(specJson), NpgsqlDbType = NpgsqlDbType.Jsonb });
                    insert.Parameters.Add(new NpgsqlParameter { Value = spec.Mode == CampaignMode.Train ? "train" : "collect" });
                    insert.Parameters.Add(new NpgsqlParameter { Value = spec.Algorithm.Steps });
                    insert.Parameters.Add(new NpgsqlParameter { Value = baseDirectory });
                    insert.Parameters.Add(new NpgsqlParameter { Value = (object?)tokenizerText ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                    insert.Parameters.Add(new NpgsqlParameter { Value = (object?)configText ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                    campaignId = (long)(await insert.ExecuteScalarAsync(ct))!;
                }

                await InsertPromptsAsync(connection, transaction, campaignId, "train", train, ct);
                await InsertPromptsAsync(connection, transaction, campaignId, "eval", eval, ct);
                await AddCountersAsync(connection, transaction, campaignId, [new("dataset_malformed_rows", malformed)], ct);
                await transaction.CommitAsync(ct);
                return campaignId;
            }, cancellationToken);

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

    /// <summary>Reads dataset rows; malformed rows are counted and described (the first 20).</summary>
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

    private static async Task InsertPromptsAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, long campaignId, string split, List<CampaignPrompt> rows, CancellationToken ct)
    {
        await using var importer = await connection.BeginBinaryImportAsync(
            "COPY campaign_prompts (campaign_id, split, idx, prompt, answer, fields) FROM STDIN (FORMAT BINARY)", ct);
        for (var i = 0; i < rows.Count; i++)
        {
            await importer.StartRowAsync(ct);
            await importer.WriteAsync(campaignId, NpgsqlDbType.Bigint, ct);
            await importer.WriteAsync(split, NpgsqlDbType.Text, ct);
            await importer.WriteAsync(i, NpgsqlDbType.Integer, ct);
            await importer.WriteAsync(rows[i].Prompt, NpgsqlDbType.Text, ct);
            if (rows[i].Answer is { } answer)
            {
                await importer.WriteAsync(answer, NpgsqlDbType.Text, ct);
            }
            else
            {
                await importer.WriteNullAsync(ct);
            }

            await importer.WriteAsync(JsonSerializer.Serialize(rows[i].Fields), NpgsqlDbType.Jsonb, ct);
        }

        await importer.CompleteAsync(ct);
    }

    /// <summary>Adds to counters inside the caller's transaction (so that work and its counts commit together).</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="transaction">The transaction.</param>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="deltas">Counter names and amounts (zero amounts still create the counter).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public static async Task AddCountersAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, long campaignId, IReadOnlyList<KeyValuePair<string, long>> deltas,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deltas);
        if (deltas.Count == 0)
        {
            return;
        }

        await using var command = new NpgsqlCommand("""
            INSERT INTO campaign_counters AS c (campaign_id, name, value)
            SELECT $1, n, sum(v) FROM unnest($2::text[], $3::bigint[]) AS d(n, v) GROUP BY n
            ON CONFLICT (campaign_id, name) DO UPDATE SET value = c.value + excluded.value
            """, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
        command.Parameters.Add(new NpgsqlParameter { Value = deltas.Select(d => d.Key).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = deltas.Select(d => d.Value).ToArray() });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Moves a campaign between states where the transition is allowed.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="to">The new state.</param>
    /// <param name="from">The states it may move from.</param>
    /// <param name="error">The error to record (failed state).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The state after the call, or null when the campaign does not exist.</returns>
    public async Task<CampaignState?> TransitionAsync(long campaignId, CampaignState to, IReadOnlyList<CampaignState> from, string? error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(from);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            await using (var command = new NpgsqlCommand("""
                UPDATE campaigns SET state = $2, updated_at = now(), error = coalesce($4, error),
                       finished_at = CASE WHEN $2 IN ('cancelled', 'completed', 'failed') THEN now() ELSE finished_at END
                 WHERE id = $1 AND state = ANY($3)
                """, connection, transaction))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = campaignId });
                command.Parameters.Add(new NpgsqlParameter { Value = StateName(to) });
                command.Parameters.Add(new NpgsqlParameter { Value = from.Select(StateName).ToArray() });
                command.Parameters.Add(new NpgsqlParameter { Value = (object?)error ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                await command.ExecuteNonQueryAsync(ct);
            }

            if (to == CampaignState.Cancelled)
            {
                await using var cancel = new NpgsqlCommand(
                    "UPDATE work_items SET state = 'cancelled', finished_at = now(), updated_at = now() WHERE campaign_id = $1 AND state = 'pending'",
                    connection, transaction);
                cancel.Parameters.Add(new NpgsqlParameter { Value = campaignId });
                await cancel.ExecuteNonQueryAsync(ct);
            }

            await using var read = new NpgsqlCommand("SELECT state FROM campaigns WHERE id = $1", connection, transaction);
            read.Parameters.Add(new NpgsqlParameter { Value = campaignId });
            var state = await read.ExecuteScalarAsync(ct) as string;
            await transaction.CommitAsync(ct);
            return state is null ? (CampaignState?)null : ParseState(state);
        }, cancellationToken);
    }

    /// <summary>Reads a campaign's status, or null when it does not exist.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The status.</returns>
    public async Task<CampaignStatus?> GetStatusAsync(long campaignId, CancellationToken cancellationToken) =>
        (await ListCoreAsync(campaignId, cancellationToken)).FirstOrDefault();

    /// <summary>Lists every campaign, newest first.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The statuses.</returns>
    public Task<IReadOnlyList<CampaignStatus>> ListAsync(CancellationToken cancellationToken) => ListCoreAsync(null, cancellationToken);

    /// <summary>The ids of campaigns that still need work (created, running or paused) and are ready to run (a native policy's version 0 published).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The ids.</returns>
    public async Task<IReadOnlyList<long>> ActiveAsync(CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            // A native campaign is ready once its policy version 0 is published (just after its row is committed).
            await using var command = dataSource.CreateCommand("""
                SELECT c.id FROM campaigns c
                 WHERE c.state IN ('created', 'running', 'paused')
                   AND (c.model_config IS NULL OR EXISTS (SELECT 1 FROM policy_versions p WHERE p.campaign_id = c.id AND p.version = 0))
                 ORDER BY c.id
                """);
            var ids = new List<long>();
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                ids.Add(reader.GetInt64(0));
            }

            return (IReadOnlyList<long>)ids;
        }, cancellationToken);

    private async Task<IReadOnlyList<CampaignStatus>> ListCoreAsync(long? campaignId, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async ct =>
        {
            await using var command = dataSource.CreateCommand($$"""
                SELECT c.id, c.name, c.state, c.mode, c.steps_completed, c.total_steps, c.policy_version, c.error, c.created_at, c.updated_at,
                       coalesce((SELECT jsonb_object_agg(name, value) FROM campaign_counters k WHERE k.campaign_id = c.id), '{}')::text
                  FROM campaigns c {{(campaignId is null ? string.Empty : "WHERE c.id = $1")}} ORDER BY c.id DESC
                """);
            if (campaignId is not null)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = campaignId.Value });
            }

            var list = new List<CampaignStatus>();
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var counters = JsonSerializer.Deserialize<Dictionary<string, long>>(reader.GetString(10)) ?? [];
                list.Add(new CampaignStatus(
                    reader.GetInt64(0), reader.GetString(1), ParseState(reader.GetString(2)),
                    reader.GetString(3) == "train" ? CampaignMode.Train : CampaignMode.Collect,
                    reader.GetInt32(4), reader.GetInt32(5), reader.GetInt32(6), reader.IsDBNull(7) ? null : reader.GetString(7),
                    reader.GetFieldValue<DateTimeOffset>(8), reader.GetFieldValue<DateTimeOffset>(9),
                    new SortedDictionary<string, long>(counters, StringComparer.Ordinal)));
            }

            return (IReadOnlyList<CampaignStatus>)list;
        }, cancellationToken);

    /// <summary>The database name of a state.</summary>
    /// <param name="state">The state.</param>
    /// <returns>The name.</returns>
    public static string StateName(CampaignState state) => state.ToString().ToLowerInvariant();

    /// <summary>Parses a database state name.</summary>
    /// <param name="name">The name.</param>
    /// <returns>The state.</returns>
    public static CampaignState ParseState(string name) =>
        Enum.Parse<CampaignState>(name, ignoreCase: true);

    /// <summary>Formats a number for metrics (invariant).</summary>
    internal static string Invariant(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
