using DeepSeekRL.Model.Training;
using DeepSeekRL.Tokenizers;

namespace DeepSeekRL.Model.Tests.Training;

public sealed class SftDatasetTests
{
    private static BpeTokenizer Tokenizer()
    {
        var texts = new[]
        {
            "What is 12 + 30? Think step by step.", "First add the units: 2 + 0 = 2. Then the tens: 1 + 3 = 4.",
            "The answer is \\boxed{42}.", "<think>\nreasoning\n</think>\n\nanswer",
        };
        using var stream = new MemoryStream();
        BpeTrainer.Train(Enumerable.Repeat(texts, 20).SelectMany(t => t), new BpeTrainerOptions
        {
            VocabSize = 400,
            SpecialTokens = [ChatTemplate.Bos, ChatTemplate.Eos, ChatTemplate.User, ChatTemplate.Assistant],
        }, stream, TestContext.Current.CancellationToken);
        return TokenizerJson.Parse(stream.ToArray(), "trained");
    }

    [Fact]
    public void Build_Conversation_MasksExactlyTheCompletionAndEos()
    {
        var tokenizer = Tokenizer();
        var eos = tokenizer.TokenToId(ChatTemplate.Eos)!.Value;
        var messages = new List<ChatMessage>
        {
            new("user", "What is 12 + 30?"),
            new("assistant", "<think>\nFirst add the units.\n</think>\n\nThe answer is \\boxed{42}."),
        };

        var example = SftDataset.Build(tokenizer, messages, eos);

        var prompt = tokenizer.Encode(ChatTemplate.RenderR1([messages[0]], addGenerationPrompt: true));
        Assert.Equal(prompt, example.Tokens[..prompt.Length]);
        Assert.All(example.LossMask[..prompt.Length], m => Assert.Equal(0, m));
        Assert.All(example.LossMask[prompt.Length..], m => Assert.Equal(1, m));
        Assert.Equal(eos, example.Tokens[^1]);
        // The completion does not repeat the <think>\n that the generation prompt already opened.
        Assert.Equal("First add the units.\n</think>\n\nThe answer is \\boxed{42}.", tokenizer.Decode(example.Tokens.AsSpan(prompt.Length, example.Tokens.Length - prompt.Length - 1)));
        Assert.EndsWith(ChatTemplate.Assistant + "<think>\n", tokenizer.Decode(prompt), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ExportFormatWithBadRows_KeepsGoodRowsAndNamesTheBadOnes()
    {
        var tokenizer = Tokenizer();
        var path = Path.Combine(Path.GetTempPath(), $"sft-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(path,
        [
            """{"messages": [{"role": "user", "content": "What is 12 + 30?"}, {"role": "assistant", "content": "<think>\nadd\n</think>\n\n42"}], "metadata": {"step": 3}}""",
            "not json",
            """{"messages": [{"role": "user", "content": "q"}]}""",
            """{"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]}""",
            "",
            """{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}""",
            """{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "{{LONG}}"}]}""".Replace("{{LONG}}", new string('x', 3000), StringComparison.Ordinal),
        ]);
        try
        {
            var examples = SftDataset.Load(path, tokenizer, maxTokens: 512, out var skipped);

            Assert.Equal([1, 6], examples.Select(e => e.Line));
            Assert.Equal([2, 3, 4, 7], skipped.Select(s => s.Line));
            Assert.StartsWith("invalid JSON", skipped[0].Reason, StringComparison.Ordinal);
            Assert.Equal("messages must end with an assistant turn after at least one other message", skipped[1].Reason);
            Assert.Equal("messages[0].role = \"tool\": expected system, user or assistant", skipped[2].Reason);
            Assert.EndsWith("exceed the limit of 512", skipped[3].Reason, StringComparison.Ordinal);
            Assert.All(examples, e => Assert.True(e.TargetCount > 0 && e.LossMask[0] == 0));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
