using System.Globalization;
using System.Text.Json;
using DeepSeekRL.Text;
using DeepSeekRL.Tokenizers;

namespace DeepSeekRL.Model.Training;

// SFT data: chat-format JSONL (the export format: {"messages": [{"role", "content"}, ...], "metadata": {...}}) turned
// into token sequences with a loss mask that covers the final assistant turn only. Not a sampler or a batcher.

/// <summary>One SFT training sequence.</summary>
/// <param name="Tokens">The token ids: the rendered prompt (R1 template, ending with the assistant turn's
/// <c>&lt;think&gt;\n</c>) followed by the completion and EOS.</param>
/// <param name="LossMask">1 where the token is a training target (the completion and its EOS), 0 for the prompt; the
/// loss at position t predicts <c>Tokens[t]</c> from the tokens before it, so <c>LossMask[0]</c> is always 0.</param>
/// <param name="Line">The 1-based line of the JSONL file it came from.</param>
public sealed record SftExample(int[] Tokens, byte[] LossMask, int Line)
{
    /// <summary>How many tokens are trained on.</summary>
    public int TargetCount => LossMask.Count(m => m != 0);
}

/// <summary>A row that could not be used, with the reason.</summary>
/// <param name="Line">The 1-based line.</param>
/// <param name="Reason">Why (names the field).</param>
public sealed record SftSkippedRow(int Line, string Reason);

/// <summary>
/// Reads chat-format JSONL for SFT. The prompt is every message before the last one, rendered with DeepSeek-R1's
/// template (earlier assistant turns keep only their answers, as the template does) plus the generation prompt
/// <c>&lt;｜Assistant｜&gt;&lt;think&gt;\n</c>; the completion is the last (assistant) message with its leading
/// <c>&lt;think&gt;\n</c> removed (the prompt already holds it) and EOS appended. Prompt and completion are encoded
/// separately, so the mask boundary is exact. Malformed rows are skipped and reported, never fatal.
/// </summary>
public static class SftDataset
{
    /// <summary>Reads and tokenises a JSONL file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="tokenizer">The tokenizer (must know R1's special tokens).</param>
    /// <param name="maxTokens">Rows longer than this are skipped (not truncated: a cut-off answer teaches the wrong end).</param>
    /// <param name="skipped">The rows not used, with reasons.</param>
    /// <returns>The examples in file order.</returns>
    /// <exception cref="ArgumentException">The tokenizer lacks R1's EOS token.</exception>
    public static IReadOnlyList<SftExample> Load(string path, BpeTokenizer tokenizer, int maxTokens, out IReadOnlyList<SftSkippedRow> skipped) =>
        Load(File.ReadLines(path), tokenizer, maxTokens, out skipped);

    /// <summary>Tokenises rows given as JSON object texts (JSONL lines, or a Parquet file's rows made JSON), read once
    /// in order; a row's <see cref="SftExample.Line"/> is its 1-based position.</summary>
    /// <param name="rows">The rows.</param>
    /// <param name="tokenizer">The tokenizer (must know R1's special tokens).</param>
    /// <param name="maxTokens">Rows longer than this are skipped.</param>
    /// <param name="skipped">The rows not used, with reasons.</param>
    /// <returns>The examples in order.</returns>
    /// <exception cref="ArgumentException">The tokenizer lacks R1's EOS token.</exception>
    public static IReadOnlyList<SftExample> Load(IEnumerable<string> rows, BpeTokenizer tokenizer, int maxTokens, out IReadOnlyList<SftSkippedRow> skipped)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 2);
        var eos = tokenizer.TokenToId(ChatTemplate.Eos) ?? throw new ArgumentException($"the tokenizer has no {ChatTemplate.Eos} token", nameof(tokenizer));
        var examples = new List<SftExample>();
        var problems = new List<SftSkippedRow>();
        var lineNumber = 0;
        foreach (var line in rows)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var (messages, error) = ParseMessages(line);
            if (messages is null)
            {
                problems.Add(new SftSkippedRow(lineNumber, error!));
                continue;
            }

            var example = Build(tokenizer, messages, eos, lineNumber);
            if (example.Tokens.Length > maxTokens)
            {
                problems.Add(new SftSkippedRow(lineNumber, string.Create(CultureInfo.InvariantCulture, $"{example.Tokens.Length} tokens exceed the limit of {maxTokens}")));
                continue;
            }

            examples.Add(example);
        }

        skipped = problems;
        return examples;
    }

    /// <summary>Builds one example from a conversation whose last message is the assistant's.</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="messages">The conversation.</param>
    /// <param name="eos">The EOS id.</param>
    /// <param name="line">The source line, for provenance.</param>
    /// <returns>The example.</returns>
    public static SftExample Build(BpeTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, int eos, int line = 0)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count < 2 || messages[^1].Role != "assistant")
        {
            throw new ArgumentException("the conversation must end with an assistant message after at least one other message", nameof(messages));
        }

        var prompt = ChatTemplate.EncodeR1(tokenizer, messages.Take(messages.Count - 1).ToList(), addGenerationPrompt: true);
        var content = messages[^1].Content;
        if (content.StartsWith(ChatTemplate.ThinkOpen, StringComparison.Ordinal))
        {
            content = content[ChatTemplate.ThinkOpen.Length..];
        }

        var completion = tokenizer.Encode(content);
        var tokens = new int[prompt.Length + completion.Length + 1];
        var mask = new byte[tokens.Length];
        prompt.CopyTo(tokens, 0);
        completion.CopyTo(tokens, prompt.Length);
        tokens[^1] = eos;
        mask.AsSpan(prompt.Length).Fill(1);
        return new SftExample(tokens, mask, line);
    }

    private static (List<ChatMessage>? Messages, string? Error) ParseMessages(string line)
    {
        JsonDocument document;
        try
        {
            document = JsonText.Parse(line, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException ex)
        {
            return (null, "invalid JSON: " + ex.Message.Split(" LineNumber", 2)[0]);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("messages", out var list) || list.ValueKind != JsonValueKind.Array)
            {
                return (null, "field \"messages\" is missing or not an array");
            }

            var messages = new List<ChatMessage>();
            var index = 0;
            foreach (var m in list.EnumerateArray())
            {
                if (m.ValueKind != JsonValueKind.Object
                    || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String
                    || !m.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                {
                    return (null, $"messages[{index}] needs string \"role\" and \"content\"");
                }

                if (role.GetString() is not ("system" or "user" or "assistant"))
                {
                    return (null, $"messages[{index}].role = \"{role.GetString()}\": expected system, user or assistant");
                }

                messages.Add(new ChatMessage(role.GetString()!, content.GetString()!));
                index++;
            }

            if (messages.Count < 2 || messages[^1].Role != "assistant")
            {
                return (null, "messages must end with an assistant turn after at least one other message");
            }

            return (messages, null);
        }
    }
}
