using System.Net;
using System.Net.NetworkInformation;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Silo.Api;

/// <summary>
/// What every response of the api role goes through: an error body for every failure, security headers, the Host
/// check against DNS rebinding, and the query string's checks.
/// </summary>
internal static class ApiMiddleware
{
    /// <summary>The dashboard's policy: its own scripts, styles and API only; never framed.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>
    /// Turns an exception into a 500 whose JSON body carries a short error id, logged with the exception (never a
    /// stack trace in a body); a request Kestrel or ASP.NET refuses as malformed keeps its 4xx with a JSON message.
    /// </summary>
    public static IApplicationBuilder UseErrorBodies(this IApplicationBuilder app, ILogger logger) => app.Use(async (context, next) =>
    {
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nobody reads an answer.
        }
        catch (BadHttpRequestException ex)
        {
            await WriteAsync(context, ex.StatusCode, $"bad request: {ex.Message}");
        }
        catch (Exception ex)
        {
            var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
            logger.RequestFailed(ex, id, context.Request.Method, context.Request.Path.Value ?? "/");
            if (context.Response.HasStarted)
            {
                // Part of a body (an export) is out: the status cannot change; cut the connection so the client sees a failure.
                context.Abort();
                return;
            }

            await WriteAsync(context, 500, $"internal error {id}; the server's log has the details under this id", id);
        }
    });

    /// <summary>Security headers on every response, API and dashboard alike, set when the response starts.</summary>
    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app) => app.Use((context, next) =>
    {
        context.Response.OnStarting(() =>
        {
            var headers = context.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers.ContentSecurityPolicy = ContentSecurityPolicy;
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            return Task.CompletedTask;
        });
        return next(context);
    });

    /// <summary>
    /// Refuses a Host header other than a loopback name or the address the server was told to listen on, so that a
    /// page on another origin cannot reach the API through DNS rebinding.
    /// </summary>
    public static IApplicationBuilder UseHostCheck(this IApplicationBuilder app, IPAddress? address, ILogger logger)
    {
        var allowed = AllowedHosts(address);
        var list = string.Join(", ", allowed);
        return app.Use(async (context, next) =>
        {
            var host = context.Request.Host.Host;
            if (!allowed.Contains(host, StringComparer.OrdinalIgnoreCase))
            {
                logger.HostRefused(host, context.Request.Method, context.Request.Path.Value ?? "/", list);
                await WriteAsync(context, 400, $"Host '{(host.Length > 80 ? host[..80] + "..." : host)}' is not served here; expected one of {list} (with any port; --api-host adds its address)");
                return;
            }

            await next(context);
        });
    }

    /// <summary>Refuses a query string whose names or values are not UTF-8 text or hold U+0000 (every path).</summary>
    public static IApplicationBuilder UseQueryCheck(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (QueryParameters.Validate(context.Request.QueryString.Value) is { } error)
        {
            await WriteAsync(context, 400, error);
            return;
        }

        await next(context);
    });

    /// <summary>Refuses a query parameter the matched endpoint does not list (after routing).</summary>
    public static IApplicationBuilder UseQueryAllowList(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (context.GetEndpoint()?.Metadata.GetMetadata<QueryParameters>() is { } parameters && parameters.Check(context.Request.Query.Keys) is { } error)
        {
            await WriteAsync(context, 400, error);
            return;
        }

        await next(context);
    });

    /// <summary>The Host names accepted for a server listening on <paramref name="address"/> (null = loopback).</summary>
    internal static List<string> AllowedHosts(IPAddress? address)
    {
        var hosts = new List<string> { "localhost", "127.0.0.1", "[::1]" };
        void Add(IPAddress a)
        {
            var name = a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{a}]" : a.ToString();
            if (!hosts.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                hosts.Add(name);
            }
        }

        if (address is null || IPAddress.IsLoopback(address))
        {
            if (address is not null)
            {
                Add(address);
            }

            return hosts;
        }

        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            // Listening everywhere: the machine's own names and addresses.
            hosts.Add(Environment.MachineName);
            foreach (var unicast in NetworkInterface.GetAllNetworkInterfaces().SelectMany(n => n.GetIPProperties().UnicastAddresses))
            {
                Add(unicast.Address.ScopeId == 0 ? unicast.Address : new IPAddress(unicast.Address.GetAddressBytes()));
            }
        }
        else
        {
            Add(address);
        }

        return hosts;
    }

    /// <summary>A JSON error body: <c>{"error": message}</c>, plus <c>"error_id"</c> for an internal failure.</summary>
    internal static Task WriteAsync(HttpContext context, int status, string message, string? errorId = null)
    {
        context.Response.Clear();
        var body = errorId is null ? (object)new { error = message } : new { error = message, error_id = errorId };
        return Results.Json(body, statusCode: status).ExecuteAsync(context);
    }
}
