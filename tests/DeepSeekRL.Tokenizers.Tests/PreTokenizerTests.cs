namespace DeepSeekRL.Tokenizers.Tests;

public sealed class PreTokenizerTests
{
    private static List<string> Split(PreTokenizer pre, string text)
    {
        var output = new List<Piece>();
        pre.Split(text, [new Piece(0, text.Length)], output);
        return [.. output.Select(p => (p.PrefixSpace ? "^" : string.Empty) + text.Substring(p.Start, p.Length))];
    }

    private static SequencePreTokenizer DeepSeek() => (SequencePreTokenizer)TestData.DeepSeekV3.PreTokenizer!;

    [Fact]
    public void Split_DeepSeekDigits_GroupsOfThree()
    {
        Assert.Equal(["abc", "123", "456", "7", " x"], Split(DeepSeek(), "abc1234567 x"));
    }

    [Fact]
    public void Split_DeepSeekEmojiWithZwjAndSkinTone_KeepsSurrogatePairsWhole()
    {
        // 👨‍👩 is So, ZWJ (Cf), So: the symbols run stops at the ZWJ, which joins the next run as a gap.
        var pieces = Split(DeepSeek(), "a 👨‍👩 👍🏽");
        Assert.Equal("a 👨‍👩 👍🏽", string.Concat(pieces));
        Assert.All(pieces, p => Assert.False(char.IsHighSurrogate(p[^1]), $"piece {p} ends inside a surrogate pair"));
    }

    [Fact]
    public void Split_DeepSeekSpacesBeforeWord_LastSpaceJoinsTheWord()
    {
        Assert.Equal(["Hi", "  ", " there", "\n\n", " x"], Split(DeepSeek(), "Hi   there\n\n x"));
    }

    [Fact]
    public void Split_Gpt2Pattern_ContractionsAndSpaces()
    {
        var pre = new ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true);
        Assert.Equal(["I", "'ll", " go", "  ", " now", "!!", " 42"], Split(pre, "I'll go   now!! 42"));
    }

    [Fact]
    public void Split_ByteLevelAddPrefixSpace_MarksFirstPieceOnly()
    {
        var pre = new ByteLevelPreTokenizer(addPrefixSpace: true, useRegex: true);
        Assert.Equal(["^hello", " world"], Split(pre, "hello world"));
    }

    [Theory]
    [InlineData(SplitBehavior.Removed, false, "a|b|c")]
    [InlineData(SplitBehavior.Isolated, false, "a|-|b|-|-|c")]
    [InlineData(SplitBehavior.MergedWithPrevious, false, "a-|b-|-|c")]
    [InlineData(SplitBehavior.MergedWithNext, false, "a|-b|-|-c")]
    [InlineData(SplitBehavior.Contiguous, false, "a|-|b|--|c")]
    [InlineData(SplitBehavior.Removed, true, "-|-|-")]
    public void Split_Behaviors_MatchHuggingFaceSemantics(SplitBehavior behavior, bool invert, string expected)
    {
        var pre = new SplitPreTokenizer("-", isRegex: false, behavior, invert);
        Assert.Equal(expected, string.Join("|", Split(pre, "a-b--c")));
    }

    [Fact]
    public void Split_GenericRegexWithAstralText_RefusesInsteadOfGuessing()
    {
        var pre = new SplitPreTokenizer(@"\p{L}+", isRegex: true, SplitBehavior.Isolated, invert: false);
        Assert.Equal(["ab", " ", "cd"], Split(pre, "ab cd"));
        Assert.Throws<NotSupportedException>(() => Split(pre, "a😀b"));
    }
}
