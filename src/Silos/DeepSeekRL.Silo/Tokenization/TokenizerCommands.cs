using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DeepSeekRL.Silo.CommandLine;
using DeepSeekRL.Text;
using DeepSeekRL.Tokenizers;

namespace DeepSeekRL.Silo.Tokenization;

/// <summary>
/// <c>deepseekrl tokenizer encode|decode|train</c>: JSONL in, JSONL out (<c>{"text"}</c> to <c>{"ids"}</c> and back),
/// and training a byte-level BPE to a Hugging Face tokenizer.json.
/// </summary>
public static class TokenizerCommands
{
    /// <summary>Creates the <c>tokenizer</c> command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var tokenizer = new Command("tokenizer", "Byte-level BPE tokenizer (Hugging Face tokenizer.json, DeepSeek-V3 exactly).");
        tokenizer.Subcommands.Add(Convert("encode", "Encode {\"text\"} lines to {\"ids\"} lines (no BOS/EOS; special-token strings become their ids; lone surrogates become U+FFFD).", "text", "ids"));
        tokenizer.Subcommands.Add(Convert("decode", "Decode {\"ids\"} lines to {\"text\"} lines.", "ids", "text"));
        tokenizer.Subcommands.Add(Train());
        return tokenizer;
    }

    /// <summary>Loads a tokenizer.json, turning format errors into a one-line CLI error.</summary>
    /// <param name="file">The file.</param>
    /// <returns>The tokenizer.</returns>
    public static BpeTokenizer Load(FileInfo file)
    {
        ArgumentNullException.ThrowIfNull(file);
        try
        {
            return TokenizerJson.Load(file.FullName);
        }
        catch (TokenizerFormatException ex)
        {
            throw new CliException("--tokenizer: " + ex.Message);
        }
    }

    private static Command Convert(string name, string description, string from, string to)
    {
        var tokenizerOption = new Option<FileInfo>("--tokenizer") { Description = "The tokenizer.json.", Required = true };
        var input = new Option<FileInfo>("--input") { Description = $"JSONL, one {{\"{from}\": ...}} object per line.", Required = true };
        var output = new Option<FileInfo>("--out") { Description = $"JSONL, one {{\"{to}\": ...}} per input line, in order.", Required = true };
        var command = new Command(name, description);
        command.Options.Add(tokenizerOption);
        command.Options.Add(input);
        command.Options.Add(output);
        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            var tok = Load(parseResult.GetValue(tokenizerOption)!);
            var inputFile = parseResult.GetValue(input)!;
            var outputFile = parseResult.GetValue(output)!;
            if (!inputFile.Exists)
            {
                throw new CliException($"--input: {inputFile.FullName} does not exist");
            }

            var stopwatch = Stopwatch.StartNew();
            var temp = outputFile.FullName + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            long lines = 0, tokens = 0;
            try
            {
                using (var reader = new StreamReader(inputFile.FullName, Encoding.UTF8))
                await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                {
                    var ids = new List<int>();
                    var lineNumber = 0L;
                    while (await reader.ReadLineAsync(cancellationToken) is { } line)
                    {
                        lineNumber++;
                        if (line.Length == 0)
                        {
                            continue;
                        }

                        using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                        writer.WriteStartObject();
                        if (name == "encode")
                        {
                            var text = ReadText(line, inputFile.Name, lineNumber);
                            ids.Clear();
                            tok.Encode(text, ids);
                            writer.WriteStartArray("ids");
                            foreach (var id in ids)
                            {
                                writer.WriteNumberValue(id);
                            }

                            writer.WriteEndArray();
                            tokens += ids.Count;
                        }
                        else
                        {
                            var read = ReadIds(line, inputFile.Name, lineNumber, tok.VocabSize);
                            writer.WriteString("text", tok.Decode(read));
                            tokens += read.Length;
                        }

                        writer.WriteEndObject();
                        writer.Flush();
                        stream.WriteByte((byte)'\n');
                        lines++;
                    }
                }

                File.Move(temp, outputFile.FullName, overwrite: true);
            }
            finally
            {
                File.Delete(temp);
            }

            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{name}d {lines} lines ({tokens} tokens) in {stopwatch.Elapsed.TotalSeconds:0.00} s"));
            return 0;
        });
        return command;
    }

    private static string ReadText(string line, string file, long lineNumber)
    {
        using var document = Parse(line, file, lineNumber);
        if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
        {
            throw new CliException($"{file} line {lineNumber}: $.text is missing or not a string");
        }

        return text.GetString()!;
    }

    private static int[] ReadIds(string line, string file, long lineNumber, int vocabSize)
    {
        using var document = Parse(line, file, lineNumber);
        if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
        {
            throw new CliException($"{file} line {lineNumber}: $.ids is missing or not an array");
        }

        var result = new int[ids.GetArrayLength()];
        var i = 0;
        foreach (var id in ids.EnumerateArray())
        {
            if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt32(out var value) || value < 0 || value >= vocabSize)
            {
                throw new CliException($"{file} line {lineNumber}: $.ids[{i}] is {id.GetRawText()}, not an id below {vocabSize}");
            }

            result[i++] = value;
        }

        return result;
    }

    private static JsonDocument Parse(string line, string file, long lineNumber)
    {
        try
        {
            return JsonText.Parse(line);
        }
        catch (JsonException ex)
        {
            throw new CliException($"{file} line {lineNumber}: invalid JSON: {ex.Message.Split(" LineNumber", 2)[0]}");
        }
    }

    private static Command Train()
    {
        var input = new Option<FileInfo>("--input") { Description = "Training text: JSONL {\"text\"} lines (a .jsonl file) or plain text, one document per line.", Required = true };
        var vocabSize = new Option<int>("--vocab-size") { Description = "Vocabulary size: special tokens + added tokens + 256 bytes + merges.", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "The tokenizer.json to write.", Required = true };
        var special = new Option<string[]>("--special-token") { Description = "A special token (repeatable); ids 0.. in order.", AllowMultipleArgumentsPerToken = true };
        var addedToken = new Option<string[]>("--added-token")
        {
            Description = "A non-special added token such as <think> (repeatable): never split, ids right after the special tokens, kept when decoding skips special tokens.",
            AllowMultipleArgumentsPerToken = true,
        };
        var minFrequency = new Option<int>("--min-frequency") { Description = "Pairs seen fewer times are not merged (default 2).", DefaultValueFactory = _ => 2 };
        var preTokenizer = new Option<string>("--pre-tokenizer") { Description = "deepseek-v3 (default) or gpt2.", DefaultValueFactory = _ => "deepseek-v3" };
        var command = new Command("train", "Train a byte-level BPE and write a Hugging Face tokenizer.json.");
        foreach (var option in (Option[])[input, vocabSize, output, special, addedToken, minFrequency, preTokenizer])
        {
            command.Options.Add(option);
        }

        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            var inputFile = parseResult.GetValue(input)!;
            if (!inputFile.Exists)
            {
                throw new CliException($"--input: {inputFile.FullName} does not exist");
            }

            var jsonl = inputFile.Extension.Equals(".jsonl", StringComparison.OrdinalIgnoreCase);
            var texts = new List<string>();
            var lineNumber = 0L;
            foreach (var line in await File.ReadAllLinesAsync(inputFile.FullName, cancellationToken))
            {
                lineNumber++;
                if (line.Length > 0)
                {
                    texts.Add(jsonl ? ReadText(line, inputFile.Name, lineNumber) : line);
                }
            }

            var options = new BpeTrainerOptions
            {
                VocabSize = parseResult.GetValue(vocabSize),
                MinFrequency = parseResult.GetValue(minFrequency),
                SpecialTokens = parseResult.GetValue(special) ?? [],
                AddedTokens = parseResult.GetValue(addedToken) ?? [],
                PreTokenizer = parseResult.GetValue(preTokenizer)!,
            };
            var outputFile = parseResult.GetValue(output)!;
            var stopwatch = Stopwatch.StartNew();
            int merges;
            try
            {
                await using var stream = new FileStream(outputFile.FullName, FileMode.Create, FileAccess.Write);
                merges = BpeTrainer.Train(texts, options, stream, cancellationToken);
            }
            catch (ArgumentException ex)
            {
                throw new CliException(ex.Message);
            }

            // The file must load in our own loader and round-trip the training text.
            var trained = Load(outputFile);
            var bad = texts.Count(t => trained.Decode(trained.Encode(t)) != BpeTokenizer.ReplaceLoneSurrogates(t));
            if (bad > 0)
            {
                throw new CliException($"{outputFile.FullName}: {bad} training lines do not round-trip");
            }

            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"trained {merges} merges (vocab {trained.VocabSize}) on {texts.Count} lines in {stopwatch.Elapsed.TotalSeconds:0.00} s; wrote {outputFile.FullName}"));
            return 0;
        });
        return command;
    }
}
