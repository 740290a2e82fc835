using System.Text;

namespace DeepSeekRL.Tokenizers;

/// <summary>A chat message: role <c>system</c>, <c>user</c> or <c>assistant</c>, and its text.</summary>
/// <param name="Role">The role.</param>
/// <param name="Content">The text.</param>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// The two prompt formats DeepSeekRL trains with. <see cref="RenderR1"/> is DeepSeek-R1's chat template (its
/// tokenizer_config.json): BOS, the system prompts joined by a blank line, <c>&lt;｜User｜&gt;</c> turns, assistant turns
/// with the reasoning before <c>&lt;/think&gt;</c> dropped and closed by EOS, and a generation prompt that opens the
/// assistant turn with <c>&lt;think&gt;\n</c>. <see cref="RenderR1Zero"/> is the plain R1-Zero template
/// (shared/reference/rl-and-rewards.md §1). Tool calls are not supported.
/// </summary>
public static class ChatTemplate
{
    /// <summary>DeepSeek's BOS token.</summary>
    public const string Bos = "<｜begin▁of▁sentence｜>";

    /// <summary>DeepSeek's EOS token.</summary>
    public const string Eos = "<｜end▁of▁sentence｜>";

    /// <summary>Opens a user turn.</summary>
    public const string User = "<｜User｜>";

    /// <summary>Opens an assistant turn.</summary>
    public const string Assistant = "<｜Assistant｜>";

    /// <summary>What R1's generation prompt puts after <see cref="Assistant"/>.</summary>
    public const string ThinkOpen = "<think>\n";

    /// <summary>The R1-Zero template; <c>{prompt}</c> is replaced by the question.</summary>
    public const string R1ZeroTemplate =
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: {prompt}. Assistant:";

    /// <summary>Renders a conversation with DeepSeek-R1's chat template.</summary>
    /// <param name="messages">The messages.</param>
    /// <param name="addGenerationPrompt">Whether to end with <c>&lt;｜Assistant｜&gt;&lt;think&gt;\n</c>.</param>
    /// <returns>The text (it starts with BOS).</returns>
    /// <exception cref="ArgumentException">A role other than system, user or assistant.</exception>
    public static string RenderR1(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var text = new StringBuilder(Bos);
        var firstSystem = true;
        foreach (var m in messages)
        {
            if (m.Role == "system")
            {
                text.Append(firstSystem ? string.Empty : "\n\n").Append(m.Content);
                firstSystem = false;
            }
        }

        foreach (var m in messages)
        {
            switch (m.Role)
            {
                case "system":
                    break;
                case "user":
                    text.Append(User).Append(m.Content);
                    break;
                case "assistant":
                    // Earlier turns keep only the answer: the template drops everything up to the last </think>.
                    var content = m.Content;
                    var end = content.LastIndexOf("</think>", StringComparison.Ordinal);
                    if (end >= 0)
                    {
                        content = content[(end + "</think>".Length)..];
                    }

                    text.Append(Assistant).Append(content).Append(Eos);
                    break;
                default:
                    throw new ArgumentException($"role \"{m.Role}\" is not supported (system, user, assistant)", nameof(messages));
            }
        }

        if (addGenerationPrompt)
        {
            text.Append(Assistant).Append(ThinkOpen);
        }

        return text.ToString();
    }

    /// <summary>Renders the R1-Zero prompt for a question (no BOS; see <see cref="EncodeR1Zero"/>).</summary>
    /// <param name="prompt">The question.</param>
    /// <returns>The text.</returns>
    public static string RenderR1Zero(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return R1ZeroTemplate.Replace("{prompt}", prompt, StringComparison.Ordinal);
    }

    /// <summary>Renders and encodes a conversation with R1's template (BOS comes from the text).</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="messages">The messages.</param>
    /// <param name="addGenerationPrompt">Whether to open the assistant turn.</param>
    /// <returns>The ids.</returns>
    public static int[] EncodeR1(BpeTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.Encode(RenderR1(messages, addGenerationPrompt));
    }

    /// <summary>Encodes the R1-Zero prompt, with the BOS id first (the base model's input).</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="prompt">The question.</param>
    /// <returns>The ids.</returns>
    /// <exception cref="InvalidOperationException">The tokenizer has no BOS token.</exception>
    public static int[] EncodeR1Zero(BpeTokenizer tokenizer, string prompt)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var bos = tokenizer.TokenToId(Bos) ?? throw new InvalidOperationException($"the tokenizer has no {Bos} token");
        return [bos, .. tokenizer.Encode(RenderR1Zero(prompt))];
    }
}
