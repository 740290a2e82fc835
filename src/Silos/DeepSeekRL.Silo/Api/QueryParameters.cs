using System.Text;

namespace DeepSeekRL.Silo.Api;

/// <summary>
/// The query parameters an endpoint takes (endpoint metadata); any other is a 400 naming it and listing these.
/// </summary>
internal sealed class QueryParameters(params string[] allowed)
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The parameter names the endpoint accepts.</summary>
    public IReadOnlyList<string> Allowed { get; } = allowed;

    /// <summary>The message for an unknown parameter, or null when every one is allowed.</summary>
    public string? Check(IEnumerable<string> keys)
    {
        foreach (var key in keys)
        {
            if (!Allowed.Contains(key, StringComparer.Ordinal))
            {
                return Allowed.Count == 0
                    ? $"unknown parameter '{Cut(key)}'; this endpoint takes no query parameters"
                    : $"unknown parameter '{Cut(key)}'; expected {string.Join(", ", Allowed)}";
            }
        }

        return null;
    }

    /// <summary>
    /// Checks the raw query string before ASP.NET decodes it (which turns invalid UTF-8 into U+FFFD and keeps U+0000):
    /// each name and value, percent-decoded, must be valid UTF-8 (so no lone surrogate) without U+0000, which
    /// PostgreSQL text cannot hold.
    /// </summary>
    /// <param name="raw">The query string, with or without its leading '?'.</param>
    /// <returns>A message naming the parameter, or null.</returns>
    public static string? Validate(string? raw)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return null;
        }

        foreach (var pair in raw.TrimStart('?').Split('&'))
        {
            if (pair.Length == 0)
            {
                continue;
            }

            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var rawKey = equals < 0 ? pair : pair[..equals];
            var rawValue = equals < 0 ? string.Empty : pair[(equals + 1)..];
            if (!TryDecode(rawKey, out var key))
            {
                return "a query parameter name is not valid UTF-8 (percent-encoded bytes must form UTF-8 text)";
            }

            if (key.Contains('\0', StringComparison.Ordinal))
            {
                return "a query parameter name contains U+0000";
            }

            if (!TryDecode(rawValue, out var value))
            {
                return $"{Cut(key)}: not valid UTF-8 (percent-encoded bytes must form UTF-8 text)";
            }

            if (value.Contains('\0', StringComparison.Ordinal))
            {
                return $"{Cut(key)}: contains U+0000";
            }
        }

        return null;
    }

    /// <summary>Percent-decodes as form data does ('+' is a space; a malformed escape stays literal), strictly as UTF-8.</summary>
    private static bool TryDecode(string text, out string decoded)
    {
        var bytes = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '%' && i + 2 < text.Length && Uri.IsHexDigit(text[i + 1]) && Uri.IsHexDigit(text[i + 2]))
            {
                bytes.Add(byte.Parse(text.AsSpan(i + 1, 2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture));
                i += 2;
            }
            else if (c == '+')
            {
                bytes.Add((byte)' ');
            }
            else if (char.IsSurrogate(c))
            {
                // The raw query is ASCII on the wire; a non-ASCII character is taken as its UTF-8, a lone surrogate is invalid.
                if (!char.IsHighSurrogate(c) || i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1]))
                {
                    decoded = string.Empty;
                    return false;
                }

                bytes.AddRange(Encoding.UTF8.GetBytes(text.Substring(i, 2)));
                i++;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }

        try
        {
            decoded = StrictUtf8.GetString(bytes.ToArray());
            return true;
        }
        catch (DecoderFallbackException)
        {
            decoded = string.Empty;
            return false;
        }
    }

    private static string Cut(string s) => s.Length > 40 ? s[..40] + "..." : s;
}
