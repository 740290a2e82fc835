using DeepSeekRL.Rewards.Readability;

namespace DeepSeekRL.Rewards.Tests;

public sealed class ReadabilityRulesTests
{
    [Theory]
    [InlineData("", 0.0)]
    [InlineData("   \n\t ", 0.0)]
    [InlineData("a b", 0.0)]
    [InlineData("The the THE the", -0.5)]
    [InlineData("a\r\nb\r\nc\r\na\r\nb\r\nc", -0.25)]
    [InlineData("这个 这个 这个 这个", -0.5)]
    public void Score_RepetitionDefaults_OpenR1Formula(string completion, double expected) =>
        Assert.Equal(expected, new RepetitionRule(new()).Run(completion), 12);

    [Fact]
    public void Score_RepetitionWordBoundaries_NotConfusedByConcatenation()
    {
        // ("ab","c","d") and ("a","bc","d") are different trigrams.
        Assert.Equal(0.0, new RepetitionRule(new()).Run("ab c d a bc d"), 12);
    }

    [Fact]
    public void Score_RepetitionReasoningScope_IgnoresAnswer() =>
        Assert.Equal(0.0, new RepetitionRule(new() { Scope = Text.ReasoningScope.Reasoning }).Run("<think>\none two three\n</think>\nx x x x x x"));

    [Theory]
    [InlineData(0, "ngram_size")]
    [InlineData(65, "ngram_size")]
    public void Validate_RepetitionBadNgram_NamesOption(int n, string option) =>
        Assert.StartsWith(option + ":", new RepetitionRewardOptions { NgramSize = n }.Validate(), StringComparison.Ordinal);

    [Fact]
    public void Score_ParagraphLength_ShareOfShortParagraphs()
    {
        var rule = new ParagraphLengthRule(new() { MaxWords = 3 });
        var completion = "<think>\none two three\n\nfour five six seven\n   \neight\n</think>\nanswer answer answer answer";

        Assert.Equal(2.0 / 3.0, rule.Run(completion), 12);
        Assert.Equal(1.0, rule.Run("<think>\n</think>"));
        Assert.Equal(0.0, rule.Run("<think>\n这是一个很长的段落\n</think>")); // 9 Han characters = 9 words
        Assert.Equal(0.5, rule.Run("a b\r\n\r\nc d e f"));
    }

    [Theory]
    [InlineData("<think>\nplain reasoning with `inline` code\n</think>\n```python\nprint(1)\n```", 1.0)]
    [InlineData("<think>\nlet me write\n```python\nprint(1)\n```\n</think>\nanswer", 0.0)]
    [InlineData("<think>\n  ~~~\nunclosed\n</think>", 0.0)]
    [InlineData("<think>\n    ```indented four spaces is not a fence\n</think>", 1.0)]
    [InlineData("", 1.0)]
    public void Score_CodeInReasoning_OneWhenNoFencedBlock(string completion, double expected) =>
        Assert.Equal(expected, new CodeInReasoningRule(new()).Run(completion));

    [Fact]
    public void Score_CodeInReasoningAllowance_CountsBlocks()
    {
        var text = "<think>\n```\na\n```\n```\nb\n```\n</think>";

        Assert.Equal(1.0, new CodeInReasoningRule(new() { MaxBlocks = 2 }).Run(text));
        Assert.Equal(0.0, new CodeInReasoningRule(new() { MaxBlocks = 1 }).Run(text));
    }

    [Theory]
    [InlineData("<think>\nJust prose.\nMore prose.\n</think>\n# Answer heading is fine", 1.0)]
    [InlineData("<think>\n## Step one\nprose\n</think>", 0.0)]
    [InlineData("<think>\n#hashtag is not a heading\n</think>", 1.0)]
    [InlineData("<think>\n| a | b |\n|---|:---:|\n| 1 | 2 |\n</think>", 0.0)]
    [InlineData("<think>\n- a\n- b\n* c\n1. d\nprose\n</think>", 0.0)]
    [InlineData("<think>\n- a\n- b\nprose\nprose\n</think>", 1.0)]
    [InlineData("<think>\n- a\n- b\n</think>", 1.0)]
    [InlineData("<think>\n```\n# comment in code\n| x |---|\n```\nprose\n</think>", 1.0)]
    [InlineData("", 1.0)]
    public void Score_MarkdownInReasoning_OneWhenProse(string completion, double expected) =>
        Assert.Equal(expected, new MarkdownInReasoningRule(new()).Run(completion));

    [Fact]
    public void Score_MarkdownAllowHeadings_HeadingPasses() =>
        Assert.Equal(1.0, new MarkdownInReasoningRule(new() { AllowHeadings = true }).Run("<think>\n# Plan\nprose\n</think>"));
}
