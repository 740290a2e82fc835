
namespace DeepSeekRL.Demo.Tests;

public sealed class CountdownExpressionTests
{
    [Theory]
    [InlineData("(25 - 5) * 5", 100)]
    [InlineData("25 - (5 + 5)", 15)]
    [InlineData("100 / (5 * 2)", 10)]
    [InlineData("3 + 7 * 25", 178)]
    [InlineData("(3 + 7) * (50 - 25)", 250)]
    public void Parse_RoundTripsAndEvaluates(string text, long value)
    {
        var e = CountdownExpression.Parse(text);

        Assert.Equal(text, e.ToString());
        Assert.Equal(value, e.Evaluate());
        Assert.Equal(value.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Steps()[^1].Split('=')[1]);
        Assert.All(e.Steps(), step => Assert.DoesNotContain(' ', step));
    }

    [Fact]
    public void Steps_AreCompact_OnePerOperationInEvaluationOrder() =>
        Assert.Equal(["25-5=20", "20*5=100"], CountdownExpression.Parse("(25 - 5) * 5").Steps());

    [Theory]
    [InlineData("7 / 2")]
    [InlineData("5 - 5")]
    [InlineData("3 - 7")]
    public void Evaluate_LeavingThePositiveIntegers_IsNull(string text) =>
        Assert.Null(CountdownExpression.Parse(text).Evaluate());
}
