using System.Text.Json;
using DeepSeekRL.Text;

namespace DeepSeekRL.Grains.Policies;

// Parsing of /v1/completions (OpenAI legacy format) and /v1/models answers. Every failure names the URL, the field and
// what was expected, on one line.
public sealed partial class EndpointPolicyClient
{
    private static IReadOnlyList<EndpointSample> ParseCompletions(Uri url, string body)
    {
        using var document = Parse(url, body);
        var root = document.RootElement;
        var choices = Property(url, root, "choices", JsonValueKind.Array, "choices");
        var samples = new EndpointSample?[choices.GetArrayLength()];
        var position = 0;
        foreach (var choice in choices.EnumerateArray())
        {
            var field = $"choices[{position}]";
            if (choice.ValueKind != JsonValueKind.Object)
            {
                throw Malformed(url, field, "an object", choice);
            }

            var index = position;
            if (choice.TryGetProperty("index", out var i) && i.ValueKind != JsonValueKind.Null)
            {
                if (i.ValueKind != JsonValueKind.Number || !i.TryGetInt32(out index) || index < 0 || index >= samples.Length || samples[index] is not null)
                {
                    throw Malformed(url, field + ".index", $"a distinct integer in 0..{samples.Length - 1}", i);
                }
            }

            var text = Property(url, choice, "text", JsonValueKind.String, field + ".text").GetString()!;
            var finish = "unknown";
            if (choice.TryGetProperty("finish_reason", out var f) && f.ValueKind != JsonValueKind.Null)
            {
                finish = f.ValueKind == JsonValueKind.String ? f.GetString()! : throw Malformed(url, field + ".finish_reason", "a string or null", f);
            }

            string[] tokens = [];
            float[] logprobs = [];
            if (choice.TryGetProperty("logprobs", out var lp) && lp.ValueKind != JsonValueKind.Null)
            {
                if (lp.ValueKind != JsonValueKind.Object)
                {
                    throw Malformed(url, field + ".logprobs", "an object or null", lp);
                }

                (tokens, logprobs) = ParseLogProbs(url, lp, field + ".logprobs");
            }

            samples[index] = new EndpointSample(text, tokens, logprobs, finish);
            position++;
        }

        return samples!;
    }

    private static (string[] Tokens, float[] LogProbs) ParseLogProbs(Uri url, JsonElement lp, string field)
    {
        var hasTokens = lp.TryGetProperty("tokens", out var tokens) && tokens.ValueKind != JsonValueKind.Null;
        var hasLogprobs = lp.TryGetProperty("token_logprobs", out var values) && values.ValueKind != JsonValueKind.Null;
        if (!hasTokens && !hasLogprobs)
        {
            return ([], []);
        }

        if (!hasTokens || tokens.ValueKind != JsonValueKind.Array)
        {
            throw Malformed(url, field + ".tokens", "an array of strings", hasTokens ? tokens : null);
        }

        if (!hasLogprobs || values.ValueKind != JsonValueKind.Array)
        {
            throw Malformed(url, field + ".token_logprobs", "an array of numbers", hasLogprobs ? values : null);
        }

        if (tokens.GetArrayLength() != values.GetArrayLength())
        {
            throw new EndpointResponseException(
                $"{url}: {field}: tokens has {tokens.GetArrayLength()} entries but token_logprobs has {values.GetArrayLength()}; expected the same length");
        }

        var t = new string[tokens.GetArrayLength()];
        var v = new float[t.Length];
        for (var k = 0; k < t.Length; k++)
        {
            var token = tokens[k];
            t[k] = token.ValueKind == JsonValueKind.String ? token.GetString()! : throw Malformed(url, $"{field}.tokens[{k}]", "a string", token);
            var value = values[k];
            v[k] = value.ValueKind switch
            {
                JsonValueKind.Number => value.GetSingle(),
                JsonValueKind.Null => float.NaN,
                _ => throw Malformed(url, $"{field}.token_logprobs[{k}]", "a number or null", value),
            };
        }

        return (t, v);
    }

    private static IReadOnlyList<string> ParseModels(Uri url, string body)
    {
        using var document = Parse(url, body);
        var data = Property(url, document.RootElement, "data", JsonValueKind.Array, "data");
        var ids = new List<string>();
        var k = 0;
        foreach (var model in data.EnumerateArray())
        {
            if (model.ValueKind != JsonValueKind.Object)
            {
                throw Malformed(url, $"data[{k}]", "an object", model);
            }

            ids.Add(Property(url, model, "id", JsonValueKind.String, $"data[{k}].id").GetString()!);
            k++;
        }

        return ids;
    }

    private static JsonDocument Parse(Uri url, string body)
    {
        try
        {
            var document = JsonText.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                var root = document.RootElement.Clone();
                document.Dispose();
                throw Malformed(url, "body", "a JSON object", root);
            }

            return document;
        }
        catch (JsonException ex)
        {
            var what = string.IsNullOrWhiteSpace(body) ? "the body is empty" : $"'{Excerpt(body)}'";
            throw new EndpointResponseException($"{url}: body: expected JSON, got {what} ({Excerpt(ex.Message)})", ex);
        }
    }

    private static JsonElement Property(Uri url, JsonElement parent, string name, JsonValueKind kind, string field)
    {
        if (!parent.TryGetProperty(name, out var value))
        {
            throw new EndpointResponseException($"{url}: {field}: missing; expected {Describe(kind)}");
        }

        return value.ValueKind == kind ? value : throw Malformed(url, field, Describe(kind), value);
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        _ => kind.ToString(),
    };

    private static EndpointResponseException Malformed(Uri url, string field, string expected, JsonElement? actual)
    {
        var got = actual switch
        {
            null => "nothing",
            { ValueKind: JsonValueKind.String } a => $"the string '{Excerpt(a.GetString()!)}'",
            { } a => $"{a.ValueKind.ToString().ToLowerInvariant()} {Excerpt(a.GetRawText())}",
        };
        return new EndpointResponseException($"{url}: {field}: expected {expected}, got {got}");
    }
}
