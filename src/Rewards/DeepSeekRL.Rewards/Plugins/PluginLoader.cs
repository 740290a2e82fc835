using System.Reflection;
using System.Runtime.Loader;
using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Plugins;

/// <summary>
/// Loads reward-rule plugins: every <c>*.dll</c> of a directory goes into its own collectible
/// <see cref="AssemblyLoadContext"/>; the SDK (<c>DeepSeekRL.Rewards.Abstractions</c>) is shared with the host so that
/// the plugin's rules are the host's <see cref="IRewardRule"/>. A plugin's own dependencies are resolved from its
/// directory.
/// </summary>
/// <remarks>Trust: a plugin runs in-process with the host's rights. Load only code you trust; sandbox untrusted code
/// (the <c>code_exec</c> rule does so for model-written code).</remarks>
public sealed class PluginLoader : IDisposable
{
    private readonly List<PluginLoadContext> _contexts = [];

    /// <summary>Loads every assembly of <paramref name="directory"/> and collects their rules.</summary>
    /// <param name="directory">The plugin directory.</param>
    /// <param name="rules">The rules found, by name.</param>
    /// <returns>A one-line error naming the file and type, or <see langword="null"/>.</returns>
    public string? LoadDirectory(string directory, out IReadOnlyDictionary<string, RewardRuleDescriptor> rules)
    {
        var found = new Dictionary<string, RewardRuleDescriptor>(StringComparer.Ordinal);
        rules = found;
        if (!Directory.Exists(directory))
        {
            return $"plugins: directory '{directory}' does not exist";
        }

        var files = Directory.GetFiles(directory, "*.dll").Order(StringComparer.Ordinal).ToArray();
        foreach (var file in files)
        {
            if (Path.GetFileName(file) is "DeepSeekRL.Rewards.Abstractions.dll" or "DeepSeekRL.Rewards.dll")
            {
                continue; // the SDK (and the host) ship with the host
            }

            Assembly assembly;
            var context = new PluginLoadContext(file);
            try
            {
                assembly = context.LoadFromAssemblyPath(Path.GetFullPath(file));
            }
            catch (Exception ex) when (ex is BadImageFormatException or FileLoadException or FileNotFoundException)
            {
                context.Unload();
                return $"plugins: {file} is not a loadable .NET assembly ({ex.Message})";
            }

            _contexts.Add(context);
            var discovered = RewardRuleCatalog.Discover(assembly, Path.GetFileName(file), out var errors);
            if (errors.Count > 0)
            {
                return "plugins: " + errors[0];
            }

            foreach (var (name, descriptor) in discovered)
            {
                if (RewardRuleCatalog.BuiltIn.ContainsKey(name))
                {
                    return $"plugins: {Path.GetFileName(file)} type {descriptor.RuleType.FullName} is named '{name}', which is a built-in rule";
                }

                if (!found.TryAdd(name, descriptor))
                {
                    return $"plugins: rule '{name}' is defined by both {found[name].Source} and {Path.GetFileName(file)}";
                }
            }
        }

        return null;
    }

    /// <summary>Unloads the plugin contexts (they are collected once no rule instance is referenced).</summary>
    public void Dispose()
    {
        foreach (var context in _contexts)
        {
            context.Unload();
        }

        _contexts.Clear();
    }

    private sealed class PluginLoadContext(string pluginPath) : AssemblyLoadContext(Path.GetFileNameWithoutExtension(pluginPath), isCollectible: true)
    {
        private readonly AssemblyDependencyResolver _resolver = new(pluginPath);

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            // The SDK must be the host's copy, or the plugin's IRewardRule would be a different type.
            if (assemblyName.Name is "DeepSeekRL.Rewards.Abstractions")
            {
                return null;
            }

            var path = _resolver.ResolveAssemblyToPath(assemblyName);
            return path is null ? null : LoadFromAssemblyPath(path);
        }
    }
}
