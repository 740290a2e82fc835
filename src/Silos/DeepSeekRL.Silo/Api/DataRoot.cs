using System.Runtime.InteropServices;
using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;

namespace DeepSeekRL.Silo.Api;

/// <summary>
/// Confines the files a posted campaign spec names to one directory: each path is resolved against the root, its
/// symlinks resolved (realpath), and refused unless it lies inside the root's own real path. It does not stop a file
/// inside the root from being swapped after the check; whoever can write the root is trusted.
/// </summary>
internal sealed partial class DataRoot
{
    // The path-valued fields of a spec (docs/campaign-spec.md), as (object path, key).
    private static readonly (string[] Parents, string Key)[] PathFields =
    [
        (["policy", "native"], "model"),
        (["policy", "native"], "config"),
        (["policy", "native"], "tokenizer"),
        (["dataset"], "path"),
        (["dataset"], "eval_path"),
        (["rewards"], "plugins"),
        (["evaluation"], "set"),
    ];

    private DataRoot(string path) => Path = path;

    /// <summary>The root's real path (symlinks resolved).</summary>
    public string Path { get; }

    /// <summary>Opens the root; it must be an existing directory.</summary>
    /// <returns>The root, or null when it does not exist.</returns>
    public static DataRoot? Open(string directory)
    {
        var full = System.IO.Path.GetFullPath(directory);
        return Directory.Exists(full) ? new DataRoot(RealPath(full)) : null;
    }

    /// <summary>
    /// Checks every path field of a spec before anything reads it, so a refused path reveals nothing (not even
    /// whether it exists).
    /// </summary>
    /// <returns>One message per refused path (empty when all are inside the root).</returns>
    public List<string> CheckSpec(JsonElement root)
    {
        var errors = new List<string>();
        if (root.ValueKind != JsonValueKind.Object)
        {
            return errors;
        }

        foreach (var (parents, key) in PathFields)
        {
            var node = root;
            foreach (var parent in parents)
            {
                if (node.ValueKind != JsonValueKind.Object || !node.TryGetProperty(parent, out node))
                {
                    break;
                }
            }

            if (node.ValueKind != JsonValueKind.Object || !node.TryGetProperty(key, out var value) || value.ValueKind != JsonValueKind.String)
            {
                continue;
            }

            var field = string.Join('.', parents) + "." + key;
            var raw = value.GetString()!;
            if (field == "evaluation.set" && raw == "eval_split")
            {
                continue;
            }

            if (Check(field, raw) is { } error)
            {
                errors.Add(error);
            }
        }

        return errors;
    }

    /// <summary>
    /// Checks the files a validated spec resolved to, including those found inside a model directory (its
    /// config.json, tokenizer.json and weights may be symlinks).
    /// </summary>
    /// <returns>One message per refused path.</returns>
    public List<string> CheckResolved(CampaignSpec spec)
    {
        var paths = new List<(string Field, string Path)>();
        if (spec.Policy is NativePolicySpec native)
        {
            if (native.ModelDirectory is { } model)
            {
                paths.Add(("policy.native.model", model));
                paths.AddRange(Directory.EnumerateFileSystemEntries(model).Select(p => ("policy.native.model", p)));
            }

            Add("policy.native.config", native.ConfigPath);
            Add("policy.native.tokenizer", native.TokenizerPath);
        }

        Add("dataset.path", spec.Dataset.Path);
        Add("dataset.eval_path", spec.Dataset.EvalPath);
        Add("rewards.plugins", spec.Rewards.PluginsDirectory);
        Add("evaluation.set", spec.Evaluation.SetPath);
        return [.. paths.Select(p => Check(p.Field, p.Path)).OfType<string>()];

        void Add(string field, string? path)
        {
            if (path is not null)
            {
                paths.Add((field, path));
            }
        }
    }

    /// <summary>A message when <paramref name="raw"/> (relative to the root) resolves outside it, else null.</summary>
    public string? Check(string field, string raw)
    {
        if (raw.Contains('\0', StringComparison.Ordinal))
        {
            return $"{field}: contains U+0000";
        }

        var real = RealPath(System.IO.Path.GetFullPath(raw, Path));
        return real == Path || real.StartsWith(Path.EndsWith('/') ? Path : Path + "/", StringComparison.Ordinal)
            ? null
            : $"{field}: path {Quote(raw)} is not allowed (outside the data root {Path})";
    }

    /// <summary>The path with every symlink resolved; the part that does not exist yet is appended as written.</summary>
    internal static string RealPath(string full)
    {
        var rest = new Stack<string>();
        var existing = full;
        string? real;
        while ((real = RealPathNative(existing)) is null)
        {
            var parent = System.IO.Path.GetDirectoryName(existing);
            if (parent is null)
            {
                return full;
            }

            rest.Push(System.IO.Path.GetFileName(existing));
            existing = parent;
        }

        return rest.Count == 0 ? real : System.IO.Path.Join([real, .. rest]);
    }

    private static string? RealPathNative(string path)
    {
        var resolved = NativeRealPath(path, 0);
        if (resolved == 0)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            Free(resolved);
        }
    }

    private static string Quote(string raw) => JsonSerializer.Serialize(raw.Length > 200 ? raw[..200] + "..." : raw);

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint NativeRealPath(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint pointer);
}
