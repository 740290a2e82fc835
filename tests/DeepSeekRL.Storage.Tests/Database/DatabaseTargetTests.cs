using DeepSeekRL.Storage.Database;
using Npgsql;

namespace DeepSeekRL.Storage.Tests.Database;

public sealed class DatabaseTargetTests
{
    [Fact]
    public void Resolve_CommandLineAndEnvironment_CommandLineWins()
    {
        var target = DatabaseTarget.Resolve("Host=cli.example;Port=1111", "Host=env.example;Port=2222").Value;
        Assert.Equal(DatabaseSource.CommandLine, target.Source);
        Assert.Equal("cli.example:1111", target.Endpoint);
    }

    [Fact]
    public void Resolve_OnlyEnvironment_UsesEnvironment()
    {
        var target = DatabaseTarget.Resolve(null, "Host=env.example;Port=2222").Value;
        Assert.Equal(DatabaseSource.Environment, target.Source);
        Assert.Equal("env.example:2222", target.Endpoint);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("", "  ")]
    public void Resolve_NothingConfigured_UsesEmbeddedCluster(string? cli, string? env)
    {
        var target = DatabaseTarget.Resolve(cli, env).Value;
        Assert.Equal(DatabaseSource.Embedded, target.Source);
        Assert.Null(target.ConnectionString);
    }

    [Fact]
    public void Resolve_Uri_IsConvertedWithCredentialsAndParameters()
    {
        var target = DatabaseTarget.Resolve("postgresql://alice:p%40ss@db.example:6543/rl?connect_timeout=7", null).Value;
        var builder = new NpgsqlConnectionStringBuilder(target.ConnectionString);
        Assert.Equal("db.example", builder.Host);
        Assert.Equal(6543, builder.Port);
        Assert.Equal("alice", builder.Username);
        Assert.Equal("p@ss", builder.Password);
        Assert.Equal("rl", builder.Database);
        Assert.Equal(7, builder.Timeout);
    }

    [Fact]
    public void Resolve_NoTimeoutGiven_BoundsConnectTimeTo5Seconds()
    {
        var target = DatabaseTarget.Resolve(null, "Host=h;Port=1").Value;
        Assert.Equal(5, new NpgsqlConnectionStringBuilder(target.ConnectionString).Timeout);
    }

    [Theory]
    [InlineData("Nonsense Key=1", "DEEPSEEKRL_DB")]
    [InlineData("Port=5432", "no Host")]
    [InlineData("postgresql://h:5432/db?bogus_setting=1", "bogus_setting")]
    public void Resolve_BadValue_NamesTheVariableAndProblem(string value, string expected)
    {
        var outcome = DatabaseTarget.Resolve(null, value);
        Assert.False(outcome.Succeeded);
        Assert.Contains("DEEPSEEKRL_DB", outcome.Error, StringComparison.Ordinal);
        Assert.Contains(expected, outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void ToUri_RoundTripsThroughResolve()
    {
        const string Original = "Host=127.0.0.1;Port=5999;Username=deepseekrl;Password=a/b c;Database=deepseekrl";
        var uri = DatabaseTarget.ToUri(Original);
        var back = new NpgsqlConnectionStringBuilder(DatabaseTarget.Resolve(uri, null).Value.ConnectionString);
        Assert.Equal("a/b c", back.Password);
        Assert.Equal(5999, back.Port);
        Assert.Equal("deepseekrl", back.Username);
    }
}
