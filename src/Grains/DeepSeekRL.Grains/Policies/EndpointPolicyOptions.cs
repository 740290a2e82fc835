using System.Globalization;

namespace DeepSeekRL.Grains.Policies;

// Options of the OpenAI-compatible endpoint policy and the argument/result types of EndpointPolicyClient.

/// <summary>Where an endpoint policy lives and how hard <see cref="EndpointPolicyClient"/> tries to reach it.</summary>
public sealed class EndpointPolicyOptions
{
    /// <summary>The server's base URL, with or without a trailing <c>/v1</c> (e.g. <c>http://host:8000/v1</c>). Required; absolute http(s).</summary>
    public Uri? BaseUrl { get; set; }

    /// <summary>The model name sent in every request (e.g. what <c>/v1/models</c> lists). Required.</summary>
    public string Model { get; set; } = string.Empty;

    /// <summary>The API key sent as <c>Authorization: Bearer KEY</c>; <see langword="null"/> (default) sends none.</summary>
    /// <remarks>A secret: never logged and never part of an exception message.</remarks>
    public string? ApiKey { get; set; }

    /// <summary>The timeout of one HTTP attempt (request and whole response). Default 120 s; 10 ms to 24 h.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>Retries after the first attempt of a transient failure (network error, timeout, 408, 429, 5xx). Default 3; 0..100.</summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>The first back-off delay; it doubles per retry, with jitter. Default 0.5 s; 0 to 1 min.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(0.5);

    /// <summary>The longest wait between attempts, also the cap on a server's <c>Retry-After</c>. Default 30 s; at least <see cref="RetryBaseDelay"/>.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>HTTP requests in flight at most; further requests queue. Default 8; 1..1024.</summary>
    public int MaxConcurrency { get; set; } = 8;

    /// <summary>The share of failed calls in the sampling window that opens the circuit. Default 0.5; in (0, 1].</summary>
    public double BreakerFailureRatio { get; set; } = 0.5;

    /// <summary>Calls in the sampling window (30 s) before the circuit may open. Default 10; at least 2.</summary>
    public int BreakerMinimumThroughput { get; set; } = 10;

    /// <summary>How long an open circuit fails calls fast before trying again. Default 15 s; at least 0.5 s.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Checks the values.</summary>
    /// <returns>An error naming the option and the bad value, or <see langword="null"/>.</returns>
    public string? Validate()
    {
        static string S(TimeSpan t) => t.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + " s";
        return BaseUrl is null ? "BaseUrl: required (the server's base URL, e.g. http://host:8000/v1)"
            : !BaseUrl.IsAbsoluteUri || BaseUrl.Scheme is not ("http" or "https") ? $"BaseUrl = {BaseUrl}: expected an absolute http(s) URL"
            : string.IsNullOrWhiteSpace(Model) ? "Model: required (the model name the server serves)"
            : RequestTimeout < TimeSpan.FromMilliseconds(10) || RequestTimeout > TimeSpan.FromHours(24) ? $"RequestTimeout = {S(RequestTimeout)}: expected 10 ms to 24 h"
            : MaxRetries is < 0 or > 100 ? $"MaxRetries = {MaxRetries}: expected 0..100"
            : RetryBaseDelay < TimeSpan.Zero || RetryBaseDelay > TimeSpan.FromMinutes(1) ? $"RetryBaseDelay = {S(RetryBaseDelay)}: expected 0 to 1 min"
            : MaxRetryDelay < RetryBaseDelay || MaxRetryDelay > TimeSpan.FromHours(1) ? $"MaxRetryDelay = {S(MaxRetryDelay)}: expected RetryBaseDelay to 1 h"
            : MaxConcurrency is < 1 or > 1024 ? $"MaxConcurrency = {MaxConcurrency}: expected 1..1024"
            : !(BreakerFailureRatio > 0 && BreakerFailureRatio <= 1) ? $"BreakerFailureRatio = {BreakerFailureRatio.ToString(CultureInfo.InvariantCulture)}: expected a value in (0, 1]"
            : BreakerMinimumThroughput < 2 ? $"BreakerMinimumThroughput = {BreakerMinimumThroughput}: expected at least 2"
            : BreakDuration < TimeSpan.FromSeconds(0.5) || BreakDuration > TimeSpan.FromDays(1) ? $"BreakDuration = {S(BreakDuration)}: expected 0.5 s to 1 day"
            : null;
    }
}

/// <summary>How one prompt is sampled.</summary>
/// <param name="MaxTokens">Tokens to generate at most per completion (<c>max_tokens</c>); at least 1.</param>
/// <param name="Temperature">Softmax temperature (<c>temperature</c>); 0 = greedy.</param>
/// <param name="TopP">Nucleus mass (<c>top_p</c>), in (0, 1].</param>
/// <param name="Seed">The seed (<c>seed</c>); completion i of a fallback of separate requests uses seed + i. <see langword="null"/> sends none.</param>
/// <param name="Stop">Stop strings (<c>stop</c>); <see langword="null"/> or empty sends none.</param>
/// <param name="LogProbs">Ask for the log-prob of each generated token (<c>logprobs: 1</c>); otherwise the field is left out.</param>
public sealed record EndpointSamplingParameters(
    int MaxTokens = 256,
    double Temperature = 1,
    double TopP = 1,
    long? Seed = null,
    IReadOnlyList<string>? Stop = null,
    bool LogProbs = true);

/// <summary>One completion.</summary>
/// <param name="Text">The generated text.</param>
/// <param name="Tokens">The generated tokens as text (<c>logprobs.tokens</c>); empty when the server sent no log-probs.</param>
/// <param name="LogProbs">The log-prob of each token (<c>logprobs.token_logprobs</c>, NaN where the server sent null); same length as <paramref name="Tokens"/>.</param>
/// <param name="FinishReason">The server's <c>finish_reason</c> (<c>stop</c>, <c>length</c>, ...); <c>unknown</c> when it sent none.</param>
public sealed record EndpointSample(string Text, string[] Tokens, float[] LogProbs, string FinishReason);

/// <summary>The server answered with something that is not a valid completions/models response (not JSON, missing or mistyped fields).</summary>
/// <remarks>The message is one line naming the URL, the field and what was expected; it quotes at most 120 characters of the body.</remarks>
public sealed class EndpointResponseException : Exception
{
    /// <summary>Creates the exception.</summary>
    public EndpointResponseException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The one-line message.</param>
    public EndpointResponseException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The one-line message.</param>
    /// <param name="innerException">The cause.</param>
    public EndpointResponseException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A request to the endpoint failed: an HTTP error status, a network error, a timeout, or an open circuit. The message is
/// one line with the method, URL, status and the server's error message.
/// </summary>
public sealed class EndpointRequestException : HttpRequestException
{
    /// <summary>Creates the exception.</summary>
    public EndpointRequestException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The one-line message.</param>
    public EndpointRequestException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The one-line message.</param>
    /// <param name="innerException">The cause.</param>
    public EndpointRequestException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an HTTP status.</summary>
    /// <param name="message">The one-line message.</param>
    /// <param name="statusCode">The status; <see langword="null"/> when there was no response.</param>
    /// <param name="serverMessage">The server's error message, if any.</param>
    /// <param name="retryAfter">The server's <c>Retry-After</c>, if any.</param>
    /// <param name="innerException">The cause.</param>
    public EndpointRequestException(string message, System.Net.HttpStatusCode? statusCode, string? serverMessage, TimeSpan? retryAfter, Exception? innerException = null)
        : base(message, innerException, statusCode)
    {
        ServerMessage = serverMessage;
        RetryAfter = retryAfter;
    }

    /// <summary>The server's error message (<c>error.message</c> or similar), if any.</summary>
    public string? ServerMessage { get; }

    /// <summary>The server's <c>Retry-After</c>, if any.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>Whether retrying could succeed: no response (network error or timeout), 408, 429 or 5xx.</summary>
    public bool IsTransient => StatusCode is null or System.Net.HttpStatusCode.RequestTimeout or System.Net.HttpStatusCode.TooManyRequests || (int)StatusCode >= 500;
}
