using System.Text.Json;

namespace DeepSeekRL.Tokenizers.Tests;

public sealed class ChatTemplateTests
{
    private static (string Text, int[] Ids) Golden(string name)
    {
        foreach (var line in File.ReadAllLines(Path.Combine(TestData.Dir, "chat.expected.jsonl")))
        {
            var root = JsonDocument.Parse(line).RootElement;
            if (root.GetProperty("name").GetString() == name)
            {
                return (root.GetProperty("text").GetString()!, [.. root.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())]);
            }
        }

        throw new InvalidOperationException("no golden case " + name);
    }

    [Fact]
    public void RenderR1_SingleTurnWithGenerationPrompt_OpensThinking()
    {
        ChatMessage[] messages = [new("user", "What is 2+2?")];
        var (text, ids) = Golden("r1_single_turn");
        Assert.Equal(text, ChatTemplate.RenderR1(messages, addGenerationPrompt: true));
        Assert.EndsWith("<｜Assistant｜><think>\n", text, StringComparison.Ordinal);
        Assert.Equal(ids, ChatTemplate.EncodeR1(TestData.DeepSeekV3, messages, addGenerationPrompt: true));
        Assert.Equal(0, ids[0]);
    }

    [Fact]
    public void RenderR1_MultiTurn_JoinsSystemPromptsAndDropsEarlierReasoning()
    {
        ChatMessage[] messages =
        [
            new("system", "Be brief."),
            new("user", "What is 2+2?"),
            new("assistant", "<think>\nadd them\n</think>\n\n4"),
            new("system", "Answer in English."),
            new("user", "And 3+3?"),
        ];
        var (text, ids) = Golden("r1_multi_turn");
        Assert.Equal(text, ChatTemplate.RenderR1(messages, addGenerationPrompt: true));
        Assert.Equal(ids, ChatTemplate.EncodeR1(TestData.DeepSeekV3, messages, addGenerationPrompt: true));
    }

    [Fact]
    public void RenderR1_ChineseWithoutGenerationPrompt_EndsWithEos()
    {
        ChatMessage[] messages = [new("user", "计算 1+1。"), new("assistant", "答案是 2。")];
        var (text, ids) = Golden("r1_chinese_no_prompt");
        Assert.Equal(text, ChatTemplate.RenderR1(messages, addGenerationPrompt: false));
        Assert.Equal(ids, ChatTemplate.EncodeR1(TestData.DeepSeekV3, messages, addGenerationPrompt: false));
        Assert.Equal(1, ids[^1]);
    }

    [Fact]
    public void RenderR1_UnknownRole_Throws()
    {
        Assert.Throws<ArgumentException>(() => ChatTemplate.RenderR1([new("tool", "x")], addGenerationPrompt: false));
    }

    [Fact]
    public void EncodeR1Zero_Gsm8kQuestion_MatchesGoldenWithBos()
    {
        const string question = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?";
        var (text, ids) = Golden("r1zero_gsm8k");
        Assert.Equal(text, ChatTemplate.RenderR1Zero(question));
        Assert.StartsWith("A conversation between User and Assistant.", text, StringComparison.Ordinal);
        Assert.EndsWith(". Assistant:", text, StringComparison.Ordinal);
        Assert.Equal(ids, ChatTemplate.EncodeR1Zero(TestData.DeepSeekV3, question));
    }
}
