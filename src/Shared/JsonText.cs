using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace DeepSeekRL.Text;

/// <summary>
/// Parses untrusted JSON under one rule: an unpaired UTF-16 surrogate in a JSON string, escaped (<c>"\ud800"</c>) or raw,
/// and invalid UTF-8 decode to U+FFFD, as the tokenizer does for text and as Python's <c>errors="replace"</c> and
/// Hugging Face tokenizers do. System.Text.Json parses such strings but throws from <c>GetString</c>; after this
/// rewrite every string reads, and a stored JSON text is valid for PostgreSQL's <c>jsonb</c>.
/// </summary>
/// <remarks>
/// Compiled into each project that reads untrusted JSON (src/Shared, linked as dotnet/runtime links its Common files):
/// no project sits below all of them. The rewrite keeps lengths: <c>\udXXX</c> becomes <c>\ufffd</c>, a raw surrogate
/// becomes U+FFFD, so JSON positions in parse errors stay right. Text without a backslash or surrogate is returned as is.
/// </remarks>
internal static class JsonText
{
    private const string Replacement = "\\ufffd";

    /// <summary>Parses JSON text with lone surrogates replaced (see the class remarks).</summary>
    /// <exception cref="JsonException">The text is not JSON.</exception>
    public static JsonDocument Parse(string json, JsonDocumentOptions options = default) =>
        JsonDocument.Parse(ReplaceLoneSurrogates(json), options);

    /// <summary>Parses UTF-8 JSON with invalid UTF-8 and lone surrogates replaced (see the class remarks).</summary>
    /// <exception cref="JsonException">The text is not JSON.</exception>
    public static JsonDocument Parse(ReadOnlyMemory<byte> utf8Json, JsonDocumentOptions options = default) =>
        JsonDocument.Parse(ReplaceLoneSurrogates(utf8Json), options);

    /// <summary>Reads the whole stream and parses it as <see cref="Parse(ReadOnlyMemory{byte}, JsonDocumentOptions)"/>.</summary>
    /// <exception cref="JsonException">The text is not JSON.</exception>
    public static async Task<JsonDocument> ParseAsync(Stream utf8Json, JsonDocumentOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(utf8Json);
        using var buffer = new MemoryStream();
        await utf8Json.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), options);
    }

    /// <summary>
    /// The JSON text with every unpaired surrogate replaced: a <c>\uD800</c>-<c>\uDFFF</c> escape that is not half of a
    /// high-low escape pair becomes <c>\ufffd</c>, an unpaired raw surrogate char becomes U+FFFD.
    /// </summary>
    public static string ReplaceLoneSurrogates(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        var slash = json.IndexOf('\\', StringComparison.Ordinal);
        var surrogate = json.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        var first = slash < 0 ? surrogate : surrogate < 0 ? slash : Math.Min(slash, surrogate);
        if (first < 0)
        {
            return json;
        }

        char[]? copy = null;
        for (var i = first; i < json.Length; i++)
        {
            var c = json[i];
            if (c == '\\')
            {
                if (i + 1 < json.Length && json[i + 1] == 'u' && Escaped(json.AsSpan(i)) is { } code && char.IsSurrogate(code))
                {
                    if (char.IsHighSurrogate(code) && Escaped(json.AsSpan(i + 6)) is { } low && char.IsLowSurrogate(low))
                    {
                        i += 11;
                        continue;
                    }

                    copy ??= json.ToCharArray();
                    Replacement.CopyTo(copy.AsSpan(i));
                    i += 5;
                    continue;
                }

                i++; // an escaped character: "\\" must not start an escape
            }
            else if (char.IsHighSurrogate(c) && i + 1 < json.Length && char.IsLowSurrogate(json[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                copy ??= json.ToCharArray();
                copy[i] = '\uFFFD';
            }
        }

        return copy is null ? json : new string(copy);
    }

    /// <summary>
    /// The UTF-8 JSON with invalid UTF-8 (including encoded surrogates) replaced by U+FFFD and every unpaired
    /// surrogate escape replaced by <c>\ufffd</c>; the input itself when nothing needs replacing.
    /// </summary>
    public static ReadOnlyMemory<byte> ReplaceLoneSurrogates(ReadOnlyMemory<byte> utf8Json)
    {
        var span = utf8Json.Span;
        if (!Utf8.IsValid(span))
        {
            return Encoding.UTF8.GetBytes(ReplaceLoneSurrogates(Encoding.UTF8.GetString(span)));
        }

        var first = span.IndexOf((byte)'\\');
        if (first < 0)
        {
            return utf8Json;
        }

        byte[]? copy = null;
        for (var i = first; i < span.Length; i++)
        {
            if (span[i] != (byte)'\\')
            {
                continue;
            }

            if (i + 1 < span.Length && span[i + 1] == (byte)'u' && Escaped(span[i..]) is { } code && char.IsSurrogate(code))
            {
                if (char.IsHighSurrogate(code) && Escaped(span[(i + 6)..]) is { } low && char.IsLowSurrogate(low))
                {
                    i += 11;
                    continue;
                }

                copy ??= span.ToArray();
                for (var k = 0; k < Replacement.Length; k++)
                {
                    copy[i + k] = (byte)Replacement[k];
                }

                i += 5;
                continue;
            }

            i++; // an escaped character: "\\" must not start an escape
        }

        return copy ?? utf8Json;
    }

    // The code unit of a "\uXXXX" escape at the start of s, or null when s does not start with one.
    private static char? Escaped(ReadOnlySpan<char> s)
    {
        if (s.Length < 6 || s[0] != '\\' || s[1] != 'u')
        {
            return null;
        }

        var value = 0;
        for (var k = 2; k < 6; k++)
        {
            var digit = HexDigit(s[k]);
            if (digit < 0)
            {
                return null;
            }

            value = (value << 4) | digit;
        }

        return (char)value;
    }

    private static char? Escaped(ReadOnlySpan<byte> s)
    {
        if (s.Length < 6 || s[0] != (byte)'\\' || s[1] != (byte)'u')
        {
            return null;
        }

        var value = 0;
        for (var k = 2; k < 6; k++)
        {
            var digit = HexDigit((char)s[k]);
            if (digit < 0)
            {
                return null;
            }

            value = (value << 4) | digit;
        }

        return (char)value;
    }

    private static int HexDigit(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };
}
