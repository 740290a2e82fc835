using System.Globalization;
using System.Text.Json;

namespace DeepSeekRL.Campaigns.Specs;

/// <summary>
/// Reads one JSON object for <see cref="CampaignSpecValidator"/>: every read that fails adds an error naming the JSON
/// path, the value and what was expected, and returns the default, so validation goes on and reports everything.
/// </summary>
internal sealed class JsonObjectReader
{
    private readonly JsonElement _element;
    private readonly string _path;
    private readonly List<string> _errors;

    public JsonObjectReader(JsonElement element, string path, List<string> errors, params string[] known)
    {
        _element = element;
        _path = path;
        _errors = errors;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            if (!seen.Add(property.Name))
            {
                errors.Add($"{Child(property.Name)}: duplicate key");
            }
            else if (Array.IndexOf(known, property.Name) < 0)
            {
                errors.Add($"{Child(property.Name)}: unknown key; known keys: {string.Join(", ", known)}");
            }
        }
    }

    public string Path => _path;

    public string Child(string key) => _path.Length == 0 ? key : $"{_path}.{key}";

    public bool Has(string key) => _element.TryGetProperty(key, out _);

    public bool TryGet(string key, out JsonElement value) => _element.TryGetProperty(key, out value);

    public void Error(string key, JsonElement value, string expected) => _errors.Add(Describe(Child(key), value, expected));

    public static string Describe(string path, JsonElement value, string expected) =>
        $"{(path.Length == 0 ? "(root)" : path)} = {Show(value)}: expected {expected}";

    public static string Show(JsonElement value)
    {
        var raw = value.GetRawText();
        raw = raw.Replace('\n', ' ').Replace('\r', ' ');
        return raw.Length <= 60 ? raw : string.Concat(raw.AsSpan(0, 57), "...");
    }

    public void Raw(string error) => _errors.Add(error);

    public void Missing(string key, string expected) => _errors.Add($"{Child(key)}: missing; expected {expected}");

    /// <summary>A required or optional string; null when absent, wrong or rejected by <paramref name="accept"/>.</summary>
    public string? String(string key, bool required, string expected, Func<string, bool>? accept = null)
    {
        if (!_element.TryGetProperty(key, out var value))
        {
            if (required)
            {
                Missing(key, expected);
            }

            return null;
        }

        if (value.ValueKind != JsonValueKind.String || (accept is not null && !accept(value.GetString()!)))
        {
            Error(key, value, expected);
            return null;
        }

        return value.GetString();
    }

    /// <summary>An integer in [min, max]; <paramref name="fallback"/> when absent or wrong.</summary>
    public long Integer(string key, long fallback, long min, long max, string expected, bool required = false)
    {
        if (!_element.TryGetProperty(key, out var value))
        {
            if (required)
            {
                Missing(key, expected);
            }

            return fallback;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var n) || n < min || n > max)
        {
            // 2.0 is an integer in JSON's number model; accept it when it is exactly one.
            if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var d) && d == Math.Floor(d)
                && d >= min && d <= max)
            {
                return (long)d;
            }

            Error(key, value, expected);
            return fallback;
        }

        return n;
    }

    /// <summary>A finite number accepted by <paramref name="accept"/>; <paramref name="fallback"/> when absent or wrong.</summary>
    public double Number(string key, double fallback, Func<double, bool> accept, string expected)
    {
        if (!_element.TryGetProperty(key, out var value))
        {
            return fallback;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var d) || !double.IsFinite(d) || !accept(d))
        {
            Error(key, value, expected);
            return fallback;
        }

        return d;
    }

    /// <summary>A boolean; <paramref name="fallback"/> when absent or wrong.</summary>
    public bool Boolean(string key, bool fallback)
    {
        if (!_element.TryGetProperty(key, out var value))
        {
            return fallback;
        }

        if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            Error(key, value, "true or false");
            return fallback;
        }

        return value.GetBoolean();
    }

    /// <summary>One of the strings in <paramref name="names"/> mapped to <paramref name="values"/>; <paramref name="fallback"/> otherwise.</summary>
    public T Choice<T>(string key, T fallback, string[] names, T[] values)
    {
        if (!_element.TryGetProperty(key, out var value))
        {
            return fallback;
        }

        var index = value.ValueKind == JsonValueKind.String ? Array.IndexOf(names, value.GetString()) : -1;
        if (index < 0)
        {
            Error(key, value, "one of " + string.Join(", ", names.Select(n => $"\"{n}\"")));
            return fallback;
        }

        return values[index];
    }

    /// <summary>A sub-object's reader, or null (with an error) when it is not an object.</summary>
    public JsonObjectReader? Object(string key, bool required, string expected, params string[] known)
    {
        if (!_element.TryGetProperty(key, out var value))
        {
            if (required)
            {
                Missing(key, expected);
            }

            return null;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            Error(key, value, expected);
            return null;
        }

        return new JsonObjectReader(value, Child(key), _errors, known);
    }

    public static string Format(double d) => d.ToString("R", CultureInfo.InvariantCulture);
}
