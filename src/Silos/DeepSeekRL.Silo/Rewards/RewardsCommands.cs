using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Plugins;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Text;

namespace DeepSeekRL.Silo.Rewards;

/// <summary><c>deepseekrl rewards score --rules RULES.json --input IN.jsonl --out OUT.jsonl</c>.</summary>
public static class RewardsCommands
{
    private const int Chunk = 2048;

    /// <summary>Creates the <c>rewards</c> command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var rules = new Option<FileInfo>("--rules") { Description = "The rules JSON: {\"rules\": [{\"rule\": \"accuracy\", \"weight\": 1.0, \"options\": {...}}], \"plugins\": \"DIR\"}.", Required = true };
        var input = new Option<FileInfo>("--input") { Description = "JSONL, one {\"prompt\", \"completion\", \"answer\", ...} object per line.", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "JSONL: each input object plus \"scores\" {rule: value or null}, \"reward\" and \"missing\".", Required = true };
        var score = new Command("score", "Score completions with a rules file. Lines are scored in chunks (batch-relative rules see the chunk); order is kept.");
        score.Options.Add(rules);
        score.Options.Add(input);
        score.Options.Add(output);
        score.SetHandler(async (parseResult, cancellationToken) =>
        {
            var rulesFile = parseResult.GetValue(rules)!;
            var inputFile = parseResult.GetValue(input)!;
            var outputFile = parseResult.GetValue(output)!;
            using var plugins = new PluginLoader();
            var (pipeline, error) = RulesFile.Load(rulesFile.FullName, plugins);
            if (pipeline is null)
            {
                throw new CliException(error!);
            }

            if (!inputFile.Exists)
            {
                throw new CliException($"--input: {inputFile.FullName} does not exist");
            }

            var stopwatch = Stopwatch.StartNew();
            var temp = outputFile.FullName + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            long scored = 0, skipped = 0;
            try
            {
                using (var reader = new StreamReader(inputFile.FullName, Encoding.UTF8))
                await using (var writer = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                {
                    var lineNumber = 0L;
                    var rows = new List<(JsonElement Row, RewardInput Input)>(Chunk);
                    string? line;
                    while (true)
                    {
                        line = await reader.ReadLineAsync(cancellationToken);
                        if (line is not null)
                        {
                            lineNumber++;
                            if (string.IsNullOrWhiteSpace(line))
                            {
                                continue;
                            }

                            var (row, parsed, problem) = ParseRow(line);
                            if (problem is not null)
                            {
                                skipped++;
                                await Console.Error.WriteLineAsync($"deepseekrl: warning: {inputFile.Name} line {lineNumber}: {problem}; line skipped");
                                continue;
                            }

                            rows.Add((row, parsed!));
                        }

                        if (rows.Count == Chunk || (line is null && rows.Count > 0))
                        {
                            var results = await pipeline.ScoreAsync(rows.Select(r => r.Input).ToList(), cancellationToken);
                            for (var i = 0; i < rows.Count; i++)
                            {
                                WriteResult(writer, rows[i].Row, results[i]);
                            }

                            scored += rows.Count;
                            rows.Clear();
                        }

                        if (line is null)
                        {
                            break;
                        }
                    }
                }

                File.Move(temp, outputFile.FullName, overwrite: true);
            }
            finally
            {
                File.Delete(temp);
            }

            var seconds = stopwatch.Elapsed.TotalSeconds;
            var missing = string.Join(", ", pipeline.GetStats().Where(s => s.Missing + s.Errors + s.Timeouts + s.NotFinite > 0)
                .Select(s => $"{s.Rule} {s.Missing + s.Errors + s.Timeouts + s.NotFinite} (errors {s.Errors}, time-outs {s.Timeouts}, not finite {s.NotFinite})"));
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"scored {scored} completions in {seconds:0.00} s ({scored / Math.Max(seconds, 1e-9):0} per s); {skipped} malformed lines skipped; missing scores: {(missing.Length == 0 ? "none" : missing)}"));
            return 0;
        });
        var rewards = new Command("rewards", "Reward rules.");
        rewards.Subcommands.Add(score);
        return rewards;
    }

    private static (JsonElement Row, RewardInput? Input, string? Problem) ParseRow(string line)
    {
        JsonElement row;
        try
        {
            using var document = JsonText.Parse(line, new JsonDocumentOptions { MaxDepth = 64 });
            row = document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            return (default, null, "invalid JSON: " + ex.Message.Split(" LineNumber", 2)[0]);
        }

        if (row.ValueKind != JsonValueKind.Object)
        {
            return (default, null, $"expected a JSON object, got {row.ValueKind}");
        }

        if (!row.TryGetProperty("completion", out var completion) || completion.ValueKind != JsonValueKind.String)
        {
            return (default, null, "field \"completion\" is missing or not a string");
        }

        var prompt = string.Empty;
        if (row.TryGetProperty("prompt", out var promptElement))
        {
            if (promptElement.ValueKind != JsonValueKind.String)
            {
                return (default, null, "field \"prompt\" is not a string");
            }

            prompt = promptElement.GetString()!;
        }

        string? answer = null;
        if (row.TryGetProperty("answer", out var answerElement))
        {
            answer = answerElement.ValueKind switch
            {
                JsonValueKind.String => answerElement.GetString(),
                JsonValueKind.Number => answerElement.GetRawText(),
                JsonValueKind.Null => null,
                _ => "\u0000",
            };
            if (answer == "\u0000")
            {
                return (default, null, "field \"answer\" is not a string or number");
            }
        }

        int? tokens = null;
        if (row.TryGetProperty("completion_tokens", out var tokensElement))
        {
            if (tokensElement.ValueKind != JsonValueKind.Number || !tokensElement.TryGetInt32(out var t) || t < 0)
            {
                return (default, null, "field \"completion_tokens\" is not a non-negative integer");
            }

            tokens = t;
        }
        else if (row.TryGetProperty("completion_ids", out var ids) && ids.ValueKind == JsonValueKind.Array)
        {
            tokens = ids.GetArrayLength();
        }

        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var property in row.EnumerateObject())
        {
            fields[property.Name] = property.Value;
        }

        return (row, new RewardInput(prompt, completion.GetString()!, answer, tokens, fields), null);
    }

    private static void WriteResult(Stream output, JsonElement row, RewardResult result)
    {
        using (var writer = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            foreach (var property in row.EnumerateObject())
            {
                if (property.Name is "scores" or "reward" or "missing" or "missing_reasons")
                {
                    continue;
                }

                property.WriteTo(writer);
            }

            writer.WriteStartObject("scores");
            foreach (var (rule, value) in result.Scores)
            {
                if (value is double v)
                {
                    writer.WriteNumber(rule, v);
                }
                else
                {
                    writer.WriteNull(rule);
                }
            }

            writer.WriteEndObject();
            writer.WriteNumber("reward", result.Reward);
            writer.WriteStartArray("missing");
            foreach (var rule in result.Missing)
            {
                writer.WriteStringValue(rule);
            }

            writer.WriteEndArray();
            if (result.Missing.Count > 0)
            {
                writer.WriteStartObject("missing_reasons");
                foreach (var rule in result.Missing)
                {
                    writer.WriteString(rule, result.Reasons.TryGetValue(rule, out var why) ? why : "missing");
                }

                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        output.WriteByte((byte)'\n');
    }
}
