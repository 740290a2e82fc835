using DeepSeekRL.Storage.Database;

namespace DeepSeekRL.Storage.Tests.Database;

public sealed class SqlScriptTests
{
    [Fact]
    public void Split_SemicolonsInStringsCommentsAndDollarQuotes_AreNotStatementEnds()
    {
        const string Script = """
            -- a comment; with a semicolon
            CREATE TABLE a (x text DEFAULT 'x;y', "we;ird" int);
            /* block; /* nested; */ still comment; */
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
            INSERT INTO a VALUES ('it''s; fine', 2);
            SELECT $$;$$, E'\';'
            """;

        var statements = SqlScript.Split(Script);

        Assert.Equal(4, statements.Count);
        Assert.StartsWith("CREATE TABLE a", statements[0].Text, StringComparison.Ordinal);
        Assert.Equal(2, statements[0].StartLine);
        Assert.StartsWith("CREATE FUNCTION f()", statements[1].Text, StringComparison.Ordinal);
        Assert.EndsWith("LANGUAGE sql", statements[1].Text, StringComparison.Ordinal);
        Assert.Equal(4, statements[1].StartLine);
        Assert.Equal(5, statements[2].StartLine);
        Assert.Equal("SELECT $$;$$, E'\\';'", statements[3].Text);
        Assert.Equal(6, statements[3].StartLine);
    }

    [Fact]
    public void Split_OnlyCommentsAndWhitespace_GivesNoStatements()
    {
        Assert.Empty(SqlScript.Split("  -- nothing\n/* here */ ;\n ; "));
    }

    [Fact]
    public void Split_PositionalParameter_IsNotADollarQuote()
    {
        var statements = SqlScript.Split("SELECT $1; SELECT 2");
        Assert.Equal(["SELECT $1", "SELECT 2"], statements.Select(s => s.Text));
    }

    [Theory]
    [InlineData("abc", 0, 1)]
    [InlineData("a\nb\nc", 2, 2)]
    [InlineData("a\nb\nc", 4, 3)]
    [InlineData("a\nb", 99, 2)]
    public void LineOf_Index_GivesOneBasedLine(string text, int index, int line)
    {
        Assert.Equal(line, SqlScript.LineOf(text, index));
    }
}
