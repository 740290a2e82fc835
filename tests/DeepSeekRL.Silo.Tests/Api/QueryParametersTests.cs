using DeepSeekRL.Silo.Api;

namespace DeepSeekRL.Silo.Tests.Api;

/// <summary>The raw query string's checks and the per-endpoint allow-list.</summary>
public sealed class QueryParametersTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("?")]
    [InlineData("?q=caf%C3%A9&rule=accuracy")]
    [InlineData("?q=%F0%9F%98%80")]
    [InlineData("?q=a+b&&limit=5")]
    [InlineData("?q=100%")]
    [InlineData("?q=%zz")]
    [InlineData("?flag")]
    public void Validate_Utf8WithoutNul_IsNull(string? raw)
    {
        Assert.Null(QueryParameters.Validate(raw));
    }

    [Theory]
    [InlineData("?q=%00", "q: contains U+0000")]
    [InlineData("?limit=1&rule=a%00", "rule: contains U+0000")]
    [InlineData("?q=%FF", "q: not valid UTF-8 (percent-encoded bytes must form UTF-8 text)")]
    [InlineData("?q=%ED%A0%80", "q: not valid UTF-8 (percent-encoded bytes must form UTF-8 text)")]
    [InlineData("?q=%ED%B0%80", "q: not valid UTF-8 (percent-encoded bytes must form UTF-8 text)")]
    [InlineData("?q=%C0%AF", "q: not valid UTF-8 (percent-encoded bytes must form UTF-8 text)")]
    [InlineData("?q=%E2%82", "q: not valid UTF-8 (percent-encoded bytes must form UTF-8 text)")]
    [InlineData("?%FF=1", "a query parameter name is not valid UTF-8 (percent-encoded bytes must form UTF-8 text)")]
    [InlineData("?a%00b=1", "a query parameter name contains U+0000")]
    public void Validate_NulOrInvalidUtf8_NamesTheParameter(string raw, string expected)
    {
        Assert.Equal(expected, QueryParameters.Validate(raw));
    }

    [Fact]
    public void Check_UnknownKey_ListsTheAllowedOnes()
    {
        Assert.Null(new QueryParameters("limit", "q").Check(["q"]));
        Assert.Equal("unknown parameter 'x'; expected limit, q", new QueryParameters("limit", "q").Check(["q", "x"]));
        Assert.Equal("unknown parameter 'x'; this endpoint takes no query parameters", new QueryParameters().Check(["x"]));
    }
}
