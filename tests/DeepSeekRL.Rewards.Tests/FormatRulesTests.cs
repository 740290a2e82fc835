using DeepSeekRL.Rewards.Format;

namespace DeepSeekRL.Rewards.Tests;

public sealed class FormatRulesTests
{
    private static readonly FormatR1Rule R1 = new(new());
    private static readonly FormatR1Rule R1TemplateOpened = new(new() { CompletionIncludesOpenTag = false });
    private static readonly FormatR1ZeroRule R1Zero = new(new());

    [Theory]
    [InlineData("<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is 4.", 1.0)]
    [InlineData("<think>\r\nCRLF reasoning\r\n</think>\r\nAnswer", 1.0)]
    [InlineData("<think>\n推理过程。\n</think>\n答案是 4。", 1.0)]
    [InlineData("", 0.0)]
    [InlineData("The answer is 4.", 0.0)]
    [InlineData("<think>\nreasoning\n</think>\n   \n", 0.0)]
    [InlineData("<think>\nreasoning\n</think>", 0.0)]
    [InlineData("<think>\na\n</think>\n<think>\nb\n</think>\nanswer", 0.0)]
    [InlineData("<think>\na\n<think>\nb\n</think>\nanswer", 0.0)]
    [InlineData("<think>\nreasoning</think>\nanswer", 0.0)]
    [InlineData("<think>reasoning\n</think>\nanswer", 0.0)]
    [InlineData(" <think>\nreasoning\n</think>\nanswer", 0.0)]
    [InlineData("<think>\n\n</think>\nanswer", 0.0)]
    [InlineData("<think>\nreasoning\n</think>\nanswer</think>", 0.0)]
    [InlineData("<think>\nreasoning\n", 0.0)]
    public void Score_DefaultOptions_ScoresR1ChatForm(string completion, double expected) =>
        Assert.Equal(expected, R1.Run(completion));

    [Theory]
    [InlineData("Let me add.\n</think>\n\nThe answer is 4.", 1.0)]
    [InlineData("<think>\nLet me add.\n</think>\n\nThe answer is 4.", 0.0)]
    [InlineData("\n\n</think>\n\nHello!", 0.0)]
    [InlineData("no close tag", 0.0)]
    public void Score_TemplateOpensThink_ReasoningStartsTheCompletion(string completion, double expected) =>
        Assert.Equal(expected, R1TemplateOpened.Run(completion));

    [Fact]
    public void Score_EmptyReasoningAllowed_AcceptsEmptyThinkBlock() =>
        Assert.Equal(1.0, new FormatR1Rule(new() { RequireNonEmptyReasoning = false }).Run("<think>\n\n</think>\n\nHello!"));

    [Theory]
    [InlineData("<think> 2 + 2 = 4 </think> <answer> 4 </answer>", 1.0)]
    [InlineData("<think>reasoning</think><answer>4</answer>", 1.0)]
    [InlineData("\n<think>\nreasoning\n</think>\n<answer>\n4\n</answer>\n", 1.0)]
    [InlineData("<think>r</think>\r\n<answer>4</answer>", 1.0)]
    [InlineData("<think>思考</think> <answer>四</answer>", 1.0)]
    [InlineData("", 0.0)]
    [InlineData("<think>r</think>", 0.0)]
    [InlineData("<answer>4</answer>", 0.0)]
    [InlineData("<think>r</think> text <answer>4</answer>", 0.0)]
    [InlineData("<think>r</think> <answer>4</answer> trailing", 0.0)]
    [InlineData("<think>r</think> <answer>  </answer>", 0.0)]
    [InlineData("<think>  </think> <answer>4</answer>", 0.0)]
    [InlineData("<think>a</think> <think>b</think> <answer>4</answer>", 0.0)]
    [InlineData("<think>r</think> <answer>4</answer> <answer>5</answer>", 0.0)]
    [InlineData("<think>r <answer>x</answer></think> <answer>4</answer>", 0.0)]
    public void Score_R1ZeroTemplate_ScoresThinkThenAnswer(string completion, double expected) =>
        Assert.Equal(expected, R1Zero.Run(completion));

    [Fact]
    public void Score_R1ZeroPromptOpensThink_AcceptsCompletionWithoutOpenTag()
    {
        var rule = new FormatR1ZeroRule(new() { CompletionIncludesOpenTag = false });

        Assert.Equal(1.0, rule.Run(" 44 + 19 + 35 = 98 </think>\n<answer> 44 + 19 + 35 </answer>"));
        Assert.Equal(0.0, rule.Run("<think> r </think>\n<answer> 1 </answer>"));
    }

    [Theory]
    [InlineData("<think>\r\na\r\n</think>\r\n<answer>\r\nb\r\n</answer>", 0.0)]
    [InlineData("<think>\na\n</think>\n<answer>\nb\n</answer>\n", 1.0)]
    [InlineData("<think>\n思考\n</think>\n<answer>\n答案\n</answer>", 1.0)]
    [InlineData("", 0.0)]
    public void Score_StrictEdgeCases_FollowOpenR1Regex(string completion, double expected) =>
        Assert.Equal(expected, new FormatStrictRule().Run(completion));

    [Theory]
    [InlineData("", 0.0)]
    [InlineData("<think>\n\n</think>\n\n<answer>\n\n</answer>", 1.0)]
    [InlineData("<think>\r\nr\r\n</think>\r\n<answer>\r\na\r\n</answer>", 0.25)]
    [InlineData("<think>\nr\n</think>\n\n</think>\n<answer>\na\n</answer>", 0.75)]
    public void Score_TagCountEdgeCases_CountsEachTagOnce(string completion, double expected) =>
        Assert.Equal(expected, new TagCountRule().Run(completion));

    [Fact]
    public void Score_OverlappingCloseTags_CountedWithoutOverlapAsPythonStrCount()
    {
        // "\n</think>\n</think>\n" holds two overlapping "\n</think>\n"; str.count sees one.
        Assert.Equal(0.25, new TagCountRule().Run("x\n</think>\n</think>\n"));
    }

    [Theory]
    [InlineData("<think>\nr\n</think>\n<answer>\n```python\nprint(1)\n```\n</answer>", 1.0)]
    [InlineData("<think>\nr\n</think>\n<answer>\n```\nprint(1)\n```\n</answer>", 0.0)]
    public void Score_CodeFormat_RequiresTaggedBlockInAnswer(string completion, double expected) =>
        Assert.Equal(expected, new CodeFormatRule(new()).Run(completion));

    [Fact]
    public void Validate_CodeFormatLanguageWithSpace_NamesOption() =>
        Assert.StartsWith("language:", new CodeFormatRewardOptions { Language = "py thon" }.Validate(), StringComparison.Ordinal);
}
