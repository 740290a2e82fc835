using System.Net;
using System.Text.Json;
using DeepSeekRL.Silo.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DeepSeekRL.Silo.Tests.Serving;

// serve's error middleware on a real Kestrel server: an endpoint that throws stands for any internal failure.
public sealed class ServeErrorsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task UseOpenAiErrors_EndpointThrows_Answers500WithLoggedErrorIdAndNoStackTrace()
    {
        var sink = new LogSink();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(sink);
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        await using var app = builder.Build();
        app.UseOpenAiErrors(1024, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("serve"));
        app.MapGet("/boom", string () => throw new InvalidOperationException("secret internal detail"));
        await app.StartAsync(Ct);
        using var http = new HttpClient { BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()) };

        using var response = await http.GetAsync(new Uri("/boom", UriKind.Relative), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        using var body = JsonDocument.Parse(text);
        var message = body.RootElement.GetProperty("error").GetProperty("message").GetString()!;
        var id = message.Split("error id ")[1].Split(',')[0];
        Assert.Matches("^[0-9a-f]{12}$", id);
        Assert.DoesNotContain("secret", text, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", text, StringComparison.Ordinal);
        Assert.Contains(sink.Lines, l => l.Contains(id, StringComparison.Ordinal) && l.Contains("secret internal detail", StringComparison.Ordinal));
        await app.StopAsync(Ct);
    }

    private sealed class LogSink : ILoggerProvider
    {
        private readonly List<string> _lines = [];

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose()
        {
        }

        private sealed class Logger(LogSink sink) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (sink._lines)
                {
                    sink._lines.Add(formatter(state, exception) + " " + exception?.Message);
                }
            }
        }
    }
}
