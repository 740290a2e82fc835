using DeepSeekRL.Rewards.Language;

namespace DeepSeekRL.Rewards.Tests;

public sealed class LanguageRulesTests
{
    private static int[] Count(string text)
    {
        var counts = new int[ScriptWordCounter.Slots];
        ScriptWordCounter.Count(text, counts);
        return counts;
    }

    [Theory]
    [InlineData("Hello world, don't panic.", 4)]
    [InlineData("x = 3y + 2", 2)]
    [InlineData("naïve café", 2)]
    [InlineData("3.14 + 42 = ?", 0)]
    [InlineData("", 0)]
    public void Count_Latin_CountsLetterRuns(string text, int latin) => Assert.Equal(latin, Count(text)[(int)Script.Latin]);

    [Fact]
    public void Count_ChineseJapaneseKorean_CharacterAndRunWords()
    {
        var counts = Count("我们来计算。ひらがなカタカナ 한국어 단어");

        Assert.Equal(5, counts[(int)Script.Han]);
        Assert.Equal(4, counts[(int)Script.Hiragana]);
        Assert.Equal(4, counts[(int)Script.Katakana]);
        Assert.Equal(2, counts[(int)Script.Hangul]);
    }

    [Fact]
    public void Count_OtherScripts_ClassifiedByBlock()
    {
        var counts = Count("Привет мир مرحبا नमस्ते สวัสดี γειά שלום Բարեւ 𠀋");

        Assert.Equal(2, counts[(int)Script.Cyrillic]);
        Assert.Equal(1, counts[(int)Script.Arabic]);
        Assert.Equal(1, counts[(int)Script.Devanagari]); // vowel signs and virama continue the word
        Assert.Equal(1, counts[(int)Script.Thai]);
        Assert.Equal(1, counts[(int)Script.Greek]);
        Assert.Equal(1, counts[(int)Script.Hebrew]);
        Assert.Equal(1, counts[(int)Script.Other]);
        Assert.Equal(1, counts[(int)Script.Han]); // a supplementary-plane ideograph (surrogate pair)
    }

    [Theory]
    [InlineData("$x^2 + y^2$")]
    [InlineData("$$\\int_0^1 f(x)\\,dx$$")]
    [InlineData("\\(a + b\\)")]
    [InlineData("\\[\\frac{a}{b}\\]")]
    [InlineData("\\begin{align} a &= b \\\\ c &= d \\end{align}")]
    [InlineData("\\alpha\\beta")]
    [InlineData("`var x = 1;`")]
    [InlineData("```python\ndef f(x):\n    return x\n```")]
    [InlineData("~~~\ncode here\n~~~")]
    [InlineData("```\nunclosed fence runs to the end")]
    [InlineData("<think></think><answer></answer>")]
    public void Count_MathCodeAndMarkup_NotWords(string text) => Assert.Equal(0, Count(text).Sum());

    [Theory]
    [InlineData("It costs $5 and $10 today", 4)] // pandoc: a $ followed by a digit does not close
    [InlineData("a lone $ sign", 3)]
    [InlineData("unmatched `tick here", 3)]
    [InlineData("see \\textbf{bold} text", 3)]
    public void Count_DollarAndBacktickHeuristics_KeepProse(string text, int latin) => Assert.Equal(latin, Count(text)[(int)Script.Latin]);

    [Fact]
    public void Score_EnglishReasoningWithMathAndCode_One()
    {
        var rule = new LanguageConsistencyRule(new());
        var completion = "<think>\nWe need $\\frac{a}{b}$ where 计算 is shown as `计算()`.\n```\n中文代码\n```\n</think>\n答案";

        // Words: We need where is shown as = 6 Latin; 计算 = 2 Han (the code and the answer are excluded).
        Assert.Equal(6.0 / 8.0, rule.Run(completion), 12);
    }

    [Fact]
    public void Score_ChineseTarget_CountsHanCharacters()
    {
        var rule = new LanguageConsistencyRule(new() { Language = "zh" });

        Assert.Equal(1.0, rule.Run("<think>\n我们先计算 $x+1$。\n</think>\n答案是 2"));
        Assert.Equal(4.0 / 5.0, rule.Run("<think>\n所以答案 is\n</think>"), 12);
    }

    [Fact]
    public void Score_JapaneseTarget_AcceptsHanAndKana()
    {
        var rule = new LanguageConsistencyRule(new() { Language = "ja" });

        Assert.Equal(1.0, rule.Run("<think>\nまず計算します。カタカナ\n</think>"));
        Assert.Equal(0.0, new LanguageConsistencyRule(new() { Language = "zh" }).Run("<think>\nひらがな\n</think>"));
    }

    [Fact]
    public void Score_MixedReasoning_Proportion()
    {
        var rule = new LanguageConsistencyRule(new());

        Assert.Equal(1.0 / 3.0, rule.Run("<think>\nfirst 第二\n</think>\n"), 12); // one Latin word, two Han characters
    }

    [Theory]
    [InlineData("")]
    [InlineData("<think>\n$1 + 1 = 2$\n</think>\nanswer")]
    [InlineData("<think>\n</think>")]
    public void Score_NoWords_NoWordsScore(string completion)
    {
        Assert.Equal(1.0, new LanguageConsistencyRule(new()).Run(completion));
        Assert.Equal(0.0, new LanguageConsistencyRule(new() { NoWordsScore = 0 }).Run(completion));
    }

    [Fact]
    public void Score_NoThinkBlock_ReadsWholeCompletion() =>
        Assert.Equal(0.5, new LanguageConsistencyRule(new()).Run("word 字"), 12);

    [Fact]
    public void Score_CompletionScope_IncludesAnswer() =>
        Assert.Equal(0.5, new LanguageConsistencyRule(new() { Scope = Text.ReasoningScope.Completion }).Run("<think>\nfine\n</think>\n好"), 12);

    [Fact]
    public void Validate_UnknownLanguage_NamesOptionAndValue() =>
        Assert.StartsWith("language: unknown language or script 'klingon'", new LanguageConsistencyRewardOptions { Language = "klingon" }.Validate(), StringComparison.Ordinal);

    [Theory]
    [InlineData("<think>\nThe sum is twelve so we answer twelve now.\n</think>", 1.0)]
    [InlineData("<think>\n我们来计算一下这个问题的答案是十二\n</think>", 1.0)]
    [InlineData("<think>\nまず計算します。答えは十二です。\n</think>", 1.0)]
    [InlineData("<think>\nThe sum 是 twelve 所以\n</think>", 0.0)]
    [InlineData("<think>\n</think>", 1.0)]
    public void Score_MixedLanguageAuto_OneWhenSingleLanguage(string completion, double expected) =>
        Assert.Equal(expected, new MixedLanguageRule(new()).Run(completion));

    [Fact]
    public void Score_MixedLanguageTolerance_AllowsFewForeignWords()
    {
        var text = "<think>\n" + string.Concat(Enumerable.Repeat("word ", 19)) + "字\n</think>"; // 1 of 20 = 5 %

        Assert.Equal(1.0, new MixedLanguageRule(new()).Run(text));
        Assert.Equal(0.0, new MixedLanguageRule(new() { Tolerance = 0.04 }).Run(text));
        Assert.Equal(0.0, new MixedLanguageRule(new() { Language = "zh" }).Run(text));
    }
}
