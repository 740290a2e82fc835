using System.Text.Encodings.Web;
using System.Text.Json;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>JSON settings of work payloads, results and metrics (snake_case, invariant numbers).</summary>
internal static class CampaignJson
{
    /// <summary>The options.</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Serializes.</summary>
    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    /// <summary>Deserializes a payload; a malformed one is an error naming the kind.</summary>
    public static T Deserialize<T>(string json, string what) =>
        JsonSerializer.Deserialize<T>(json, Options) ?? throw new InvalidDataException($"{what}: empty payload");
}
