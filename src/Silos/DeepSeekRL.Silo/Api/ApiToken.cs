using System.Security.Cryptography;
using System.Text;
using DeepSeekRL.Storage.Stores;
using Microsoft.AspNetCore.Http;
using Npgsql;

namespace DeepSeekRL.Silo.Api;

/// <summary>
/// The bearer token of state-changing calls. Configured (<c>--api-token</c> or <c>DEEPSEEKRL_API_TOKEN</c>), or
/// generated at the api role's first start in the cluster and printed once; only its SHA-256 is stored.
/// </summary>
internal sealed class ApiToken
{
    /// <summary>The environment variable holding a configured token.</summary>
    public const string EnvironmentVariable = "DEEPSEEKRL_API_TOKEN";

    private readonly NpgsqlDataSource _dataSource;

    private ApiToken(NpgsqlDataSource dataSource) => _dataSource = dataSource;

    /// <summary>Sets up the token: stores the configured one, or generates one when the cluster has none.</summary>
    /// <returns>The token and, when it was generated now, its value to print once.</returns>
    public static async Task<(ApiToken Token, string? Generated)> InitializeAsync(NpgsqlDataSource dataSource, string? configured, CancellationToken cancellationToken)
    {
        string? generated = null;
        if (configured is not null)
        {
            if (configured.Length < 16)
            {
                throw new CommandLine.CliException($"--api-token: {configured.Length} characters; expected at least 16");
            }

            await new ApiTokenStore(dataSource).SetAsync(Hash(configured), cancellationToken);
        }
        else
        {
            var candidate = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
            if (await new ApiTokenStore(dataSource).TryAddAsync(Hash(candidate), cancellationToken))
            {
                generated = candidate;
            }
        }

        return (new ApiToken(dataSource), generated);
    }

    /// <summary>
    /// Whether the request carries the token: <c>Authorization: Bearer TOKEN</c>, the scheme matched case-insensitively
    /// (RFC 7235 §2.1).
    /// </summary>
    public async Task<ApiAuthorization> CheckAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var header = request.Headers.Authorization.ToString().Trim();
        if (header.Length == 0)
        {
            return ApiAuthorization.Missing;
        }

        var space = header.IndexOfAny([' ', '\t']);
        if (space < 0 || !header[..space].Equals("Bearer", StringComparison.OrdinalIgnoreCase) || header.Length > 512)
        {
            return ApiAuthorization.Missing;
        }

        if (await new ApiTokenStore(_dataSource).ReadAsync(cancellationToken) is not string stored)
        {
            return ApiAuthorization.Invalid;
        }

        var given = Encoding.ASCII.GetBytes(Hash(header[(space + 1)..].Trim()));
        return CryptographicOperations.FixedTimeEquals(given, Encoding.ASCII.GetBytes(stored)) ? ApiAuthorization.Granted : ApiAuthorization.Invalid;
    }

    /// <summary>
    /// The 401 of a state-changing call without the token: a JSON message and the challenge (RFC 6750 §3; a token that
    /// does not match is <c>invalid_token</c>). There is no 403: the one token grants every call.
    /// </summary>
    public static IResult Challenge(HttpContext context, ApiAuthorization authorization)
    {
        context.Response.Headers.WWWAuthenticate = authorization == ApiAuthorization.Invalid
            ? "Bearer realm=\"deepseekrl\", error=\"invalid_token\""
            : "Bearer realm=\"deepseekrl\"";
        return Results.Json(
            new
            {
                error = authorization == ApiAuthorization.Invalid
                    ? "the bearer token does not match; send Authorization: Bearer <token> (printed when the api role first started)"
                    : "this call changes state: send Authorization: Bearer <token> (printed when the api role first started)",
            },
            statusCode: 401);
    }

    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}

/// <summary>The outcome of checking a request's bearer token.</summary>
internal enum ApiAuthorization
{
    /// <summary>No <c>Authorization: Bearer</c> header.</summary>
    Missing,

    /// <summary>A bearer token that does not match.</summary>
    Invalid,

    /// <summary>The token matches.</summary>
    Granted,
}
