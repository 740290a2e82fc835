using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeepSeekRL.Rewards.Pipeline;

/// <summary>A rule type that can be built from the rules JSON: its name, its type and its options type (if any).</summary>
/// <param name="Name">The rule name.</param>
/// <param name="RuleType">The class implementing <see cref="IRewardRule"/>.</param>
/// <param name="OptionsType">The type of its constructor's single parameter, or <see langword="null"/> for a parameterless constructor.</param>
/// <param name="Source">Where it comes from: "built-in" or the plugin file.</param>
public sealed record RewardRuleDescriptor(string Name, Type RuleType, Type? OptionsType, string Source)
{
    /// <summary>Options JSON uses snake_case names; unknown names are an error.</summary>
    public static JsonSerializerOptions OptionsJson { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        NumberHandling = JsonNumberHandling.Strict,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>Binds <paramref name="options"/> and constructs the rule.</summary>
    /// <param name="options">The rule's <c>"options"</c> object, or <see langword="null"/> for defaults.</param>
    /// <param name="path">The JSON path of the options, for messages (e.g. <c>rules[2].options</c>).</param>
    /// <returns>The rule, or a one-line error naming the path, option and value.</returns>
    public (IRewardRule? Rule, string? Error) Create(JsonElement? options, string path)
    {
        object? bound = null;
        if (OptionsType is null)
        {
            if (options is { ValueKind: JsonValueKind.Object } o && o.EnumerateObject().Any())
            {
                return (null, $"{path}: rule '{Name}' takes no options, but got '{o.EnumerateObject().First().Name}'");
            }
        }
        else if (OptionsType == typeof(JsonElement))
        {
            bound = options ?? JsonDocument.Parse("{}").RootElement.Clone();
        }
        else
        {
            try
            {
                bound = options is { ValueKind: not JsonValueKind.Null } e
                    ? e.ValueKind == JsonValueKind.Object
                        ? e.Deserialize(OptionsType, OptionsJson)
                        : throw new JsonException($"expected an object, got {e.ValueKind}")
                    : Activator.CreateInstance(OptionsType);
            }
            catch (JsonException ex)
            {
                var where = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? path : path + ex.Path.TrimStart('$');
                return (null, $"{where}: {Describe(ex)} (rule '{Name}')");
            }

            if (bound is IValidatableOptions validatable && validatable.Validate() is { } problem)
            {
                return (null, $"{path}: {problem} (rule '{Name}')");
            }
        }

        try
        {
            const BindingFlags Flags = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
            var rule = Activator.CreateInstance(RuleType, Flags, null, bound is null ? [] : [bound], null);
            return (rule as IRewardRule, rule is IRewardRule ? null : $"{path}: {RuleType.FullName} does not implement IRewardRule");
        }
        catch (TargetInvocationException ex)
        {
            var inner = ex.InnerException ?? ex;
            return (null, $"{path}: the constructor of {RuleType.FullName} ({Source}) threw {inner.GetType().Name}: {inner.Message}");
        }
    }

    private static string Describe(JsonException ex)
    {
        var message = ex.Message;
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).Replace("The JSON property", "option", StringComparison.Ordinal);
    }
}

/// <summary>
/// The rules that the rules JSON can name: every public or internal class of this assembly (and of loaded plugin
/// assemblies) that implements <see cref="IRewardRule"/> and carries a <see cref="RewardRuleAttribute"/>, with a
/// constructor taking nothing or one options object.
/// </summary>
public static class RewardRuleCatalog
{
    private static readonly Lazy<IReadOnlyDictionary<string, RewardRuleDescriptor>> BuiltInRules =
        new(() => Discover(typeof(RewardRuleCatalog).Assembly, "built-in", out _));

    /// <summary>The built-in rules by name.</summary>
    public static IReadOnlyDictionary<string, RewardRuleDescriptor> BuiltIn => BuiltInRules.Value;

    /// <summary>Finds the rules of an assembly.</summary>
    /// <param name="assembly">The assembly.</param>
    /// <param name="source">A label for messages (the file name for plugins).</param>
    /// <param name="errors">Types that carry the attribute but break the contract, as one-line messages.</param>
    /// <returns>The rules by name.</returns>
    public static IReadOnlyDictionary<string, RewardRuleDescriptor> Discover(Assembly assembly, string source, out IReadOnlyList<string> errors)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        var found = new Dictionary<string, RewardRuleDescriptor>(StringComparer.Ordinal);
        var problems = new List<string>();
        Type[] types;
        try
        {
            types = assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException ex)
        {
            types = ex.Types.Where(t => t is not null).ToArray()!;
            problems.Add($"{source}: some types could not be loaded ({ex.LoaderExceptions.FirstOrDefault()?.Message})");
        }

        foreach (var type in types)
        {
            var attribute = type.GetCustomAttribute<RewardRuleAttribute>();
            if (attribute is null)
            {
                continue;
            }

            if (!typeof(IRewardRule).IsAssignableFrom(type) || type.IsAbstract)
            {
                problems.Add($"{source}: type {type.FullName} is marked [RewardRule(\"{attribute.Name}\")] but does not implement {typeof(IRewardRule).FullName} as a concrete class");
                continue;
            }

            var constructors = type.GetConstructors(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
                .Where(c => c.IsPublic || c.IsAssembly).ToArray();
            var withOptions = constructors.FirstOrDefault(c => c.GetParameters().Length == 1);
            var parameterless = constructors.FirstOrDefault(c => c.GetParameters().Length == 0);
            if (withOptions is null && parameterless is null)
            {
                problems.Add($"{source}: type {type.FullName} needs a public constructor taking nothing or one options object");
                continue;
            }

            if (!found.TryAdd(attribute.Name, new RewardRuleDescriptor(attribute.Name, type, withOptions?.GetParameters()[0].ParameterType, source)))
            {
                problems.Add($"{source}: two types are named '{attribute.Name}': {found[attribute.Name].RuleType.FullName} and {type.FullName}");
            }
        }

        errors = problems;
        return found;
    }
}
