using System.Globalization;
using System.Text.Json;
using DeepSeekRL.Rewards.Plugins;
using DeepSeekRL.Text;

namespace DeepSeekRL.Rewards.Pipeline;

/// <summary>
/// The rules JSON: <c>{"rules": [{"rule": "accuracy", "weight": 1.0, "options": {...}}, ...], "plugins": "DIR"}</c>.
/// Each rule entry may also carry <c>"name"</c> (to use one rule twice with different options; default the rule
/// name) and <c>"timeout_ms"</c> (default 10,000). Everything is validated before any scoring: an unknown rule,
/// option or key is an error naming its JSON path.
/// </summary>
public static class RulesFile
{
    private static readonly string[] TopLevelKeys = ["rules", "plugins", "parallelism"];
    private static readonly string[] RuleKeys = ["rule", "name", "weight", "options", "timeout_ms"];

    /// <summary>Reads a rules file and builds its pipeline.</summary>
    /// <param name="path">The file.</param>
    /// <param name="plugins">Receives loaded plugins; dispose it when the pipeline is no longer used.</param>
    /// <returns>The pipeline, or a one-line error naming the file and JSON path.</returns>
    public static (RewardPipeline? Pipeline, string? Error) Load(string path, PluginLoader plugins)
    {
        ArgumentNullException.ThrowIfNull(plugins);
        if (!File.Exists(path))
        {
            return (null, $"{path}: file not found");
        }

        if (new FileInfo(path).Length > 16 << 20)
        {
            return (null, $"{path}: {new FileInfo(path).Length} bytes is too large for a rules file (limit 16 MiB)");
        }

        JsonDocument document;
        try
        {
            document = JsonText.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 64, CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            return (null, $"{path}: invalid JSON at line {(ex.LineNumber ?? 0) + 1}: {ex.Message.Split(" LineNumber", 2)[0]}");
        }

        using (document)
        {
            var (pipeline, error) = Build(document.RootElement, Path.GetDirectoryName(Path.GetFullPath(path))!, plugins);
            return (pipeline, error is null ? null : $"{path}: {error}");
        }
    }

    /// <summary>Builds a pipeline from a parsed rules document.</summary>
    /// <param name="root">The document's root.</param>
    /// <param name="baseDirectory">The directory relative <c>plugins</c> paths are resolved against.</param>
    /// <param name="plugins">Receives loaded plugins.</param>
    /// <returns>The pipeline, or a one-line error naming the JSON path.</returns>
    public static (RewardPipeline? Pipeline, string? Error) Build(JsonElement root, string baseDirectory, PluginLoader plugins)
    {
        ArgumentNullException.ThrowIfNull(plugins);
        if (root.ValueKind != JsonValueKind.Object)
        {
            return (null, $"expected a JSON object with \"rules\", got {root.ValueKind}");
        }

        foreach (var property in root.EnumerateObject())
        {
            if (!TopLevelKeys.Contains(property.Name))
            {
                return (null, $"unknown key '{property.Name}' (expected one of: {string.Join(", ", TopLevelKeys)})");
            }
        }

        var available = new Dictionary<string, RewardRuleDescriptor>(RewardRuleCatalog.BuiltIn, StringComparer.Ordinal);
        if (root.TryGetProperty("plugins", out var pluginsElement))
        {
            if (pluginsElement.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(pluginsElement.GetString()))
            {
                return (null, "plugins: expected a directory path string");
            }

            var directory = Path.GetFullPath(pluginsElement.GetString()!, baseDirectory);
            var error = plugins.LoadDirectory(directory, out var pluginRules);
            if (error is not null)
            {
                return (null, error);
            }

            foreach (var (name, descriptor) in pluginRules)
            {
                available[name] = descriptor;
            }
        }

        var builder = new RewardPipelineBuilder();
        if (root.TryGetProperty("parallelism", out var parallelism))
        {
            if (parallelism.ValueKind != JsonValueKind.Number || !parallelism.TryGetInt32(out var p) || p < 1 || p > 1024)
            {
                return (null, $"parallelism: expected an integer from 1 to 1024, got {parallelism.GetRawText()}");
            }

            builder.MaxDegreeOfParallelism = p;
        }

        if (!root.TryGetProperty("rules", out var rules) || rules.ValueKind != JsonValueKind.Array)
        {
            return (null, "rules: expected an array of rule objects");
        }

        var index = 0;
        foreach (var entry in rules.EnumerateArray())
        {
            var at = $"rules[{index.ToString(CultureInfo.InvariantCulture)}]";
            index++;
            if (entry.ValueKind != JsonValueKind.Object)
            {
                return (null, $"{at}: expected an object like {{\"rule\": \"accuracy\", \"weight\": 1.0}}");
            }

            foreach (var property in entry.EnumerateObject())
            {
                if (!RuleKeys.Contains(property.Name))
                {
                    return (null, $"{at}: unknown key '{property.Name}' (expected one of: {string.Join(", ", RuleKeys)})");
                }
            }

            if (!entry.TryGetProperty("rule", out var ruleName) || ruleName.ValueKind != JsonValueKind.String)
            {
                return (null, $"{at}.rule: expected the rule name as a string");
            }

            if (!available.TryGetValue(ruleName.GetString()!, out var descriptor))
            {
                return (null, $"{at}.rule: unknown rule '{ruleName.GetString()}' (known: {string.Join(", ", available.Keys.Order(StringComparer.Ordinal))})");
            }

            var weight = 1.0;
            if (entry.TryGetProperty("weight", out var weightElement))
            {
                if (weightElement.ValueKind != JsonValueKind.Number || !weightElement.TryGetDouble(out weight) || !double.IsFinite(weight))
                {
                    return (null, $"{at}.weight: expected a finite number, got {weightElement.GetRawText()}");
                }
            }

            TimeSpan? timeout = null;
            if (entry.TryGetProperty("timeout_ms", out var timeoutElement))
            {
                if (timeoutElement.ValueKind != JsonValueKind.Number || !timeoutElement.TryGetInt32(out var ms) || ms < 1 || ms > 3_600_000)
                {
                    return (null, $"{at}.timeout_ms: expected an integer from 1 to 3600000, got {timeoutElement.GetRawText()}");
                }

                timeout = TimeSpan.FromMilliseconds(ms);
            }

            var name = descriptor.Name;
            if (entry.TryGetProperty("name", out var nameElement))
            {
                if (nameElement.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(nameElement.GetString()))
                {
                    return (null, $"{at}.name: expected a non-empty string");
                }

                name = nameElement.GetString()!;
            }

            if (builder.Rules.Any(r => r.Name == name))
            {
                return (null, $"{at}.name: '{name}' is already used by an earlier rule; give this one a different \"name\"");
            }

            JsonElement? options = entry.TryGetProperty("options", out var optionsElement) ? optionsElement : null;
            var (rule, createError) = descriptor.Create(options, at + ".options");
            if (rule is null)
            {
                return (null, createError);
            }

            builder.AddRule(name, rule, weight, timeout ?? (rule as IRuleTimeout)?.DefaultTimeout);
        }

        if (builder.Rules.Count == 0)
        {
            return (null, "rules: the list is empty; name at least one rule");
        }

        return (builder.Build(), null);
    }
}
