using System.Text.Json;
using DeepSeekRL.Silo.Api;

namespace DeepSeekRL.Silo.Tests.Api;

/// <summary>Path confinement on a real file system: symlinked files and directories, paths that do not exist yet.</summary>
public sealed class DataRootTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("data-root-").FullName;

    public DataRootTests()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "root", "data"));
        Directory.CreateDirectory(Path.Combine(_dir, "outside"));
        File.WriteAllText(Path.Combine(_dir, "root", "data", "ok.jsonl"), "{}\n");
        File.WriteAllText(Path.Combine(_dir, "outside", "secret.jsonl"), "{}\n");
        Directory.CreateSymbolicLink(Path.Combine(_dir, "root", "linked-dir"), Path.Combine(_dir, "outside"));
        Directory.CreateSymbolicLink(Path.Combine(_dir, "root", "inner-link"), Path.Combine(_dir, "root", "data"));
        Directory.CreateSymbolicLink(Path.Combine(_dir, "root-link"), Path.Combine(_dir, "root"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("data/ok.jsonl")]
    [InlineData("data/not-there-yet.jsonl")]
    [InlineData("inner-link/ok.jsonl")]
    [InlineData("data/../data/ok.jsonl")]
    [InlineData(".")]
    public void Check_PathInsideTheRoot_IsAllowed(string raw)
    {
        var root = DataRoot.Open(Path.Combine(_dir, "root"))!;
        Assert.Null(root.Check("dataset.path", raw));
    }

    [Theory]
    [InlineData("linked-dir/secret.jsonl")]
    [InlineData("linked-dir/not-there/x.jsonl")]
    [InlineData("../outside/secret.jsonl")]
    [InlineData("../root-sibling/x.jsonl")]
    [InlineData("/etc/passwd")]
    public void Check_PathResolvingOutside_IsNotAllowed(string raw)
    {
        var root = DataRoot.Open(Path.Combine(_dir, "root"))!;
        Assert.Equal($"dataset.path: path {JsonSerializer.Serialize(raw)} is not allowed (outside the data root {root.Path})", root.Check("dataset.path", raw));
    }

    [Fact]
    public void Open_SymlinkedRoot_ConfinesToItsTarget()
    {
        var root = DataRoot.Open(Path.Combine(_dir, "root-link"))!;
        Assert.Equal(DataRoot.RealPath(Path.Combine(_dir, "root")), root.Path);
        Assert.Null(root.Check("dataset.path", Path.Combine(_dir, "root-link", "data", "ok.jsonl")));
        Assert.NotNull(root.Check("dataset.path", "linked-dir/secret.jsonl"));
    }

    [Fact]
    public void Open_MissingDirectory_IsNull()
    {
        Assert.Null(DataRoot.Open(Path.Combine(_dir, "nope")));
    }

    [Fact]
    public void Check_Nul_IsRefusedBeforeResolving()
    {
        var root = DataRoot.Open(Path.Combine(_dir, "root"))!;
        Assert.Equal("dataset.path: contains U+0000", root.Check("dataset.path", "data/\0ok.jsonl"));
    }
}
