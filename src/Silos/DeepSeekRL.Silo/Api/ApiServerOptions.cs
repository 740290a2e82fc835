using System.Net;

namespace DeepSeekRL.Silo.Api;

/// <summary>Where the api role listens and what a request may name.</summary>
internal sealed class ApiServerOptions
{
    /// <summary>The address to listen on; null (the default) is loopback only (127.0.0.1 and ::1).</summary>
    public IPAddress? Address { get; init; }

    /// <summary>The TCP port; default 5080, range 0..65535.</summary>
    public int Port { get; init; } = 5080;

    /// <summary>
    /// The directory every path in a posted campaign spec must resolve into (after symlinks); relative paths resolve
    /// against it. Default <c>$DEEPSEEKRL_HOME/examples</c> (the shipped models and data).
    /// </summary>
    public string DataRoot { get; init; } = DefaultDataRoot();

    /// <summary>The silo hosting the API (its grains give the activations of the Nodes view), or null when none.</summary>
    public Orleans.IGrainFactory? Grains { get; init; }

    /// <summary>The default <see cref="DataRoot"/>: the checkout's <c>examples</c> directory.</summary>
    /// <returns>The absolute path.</returns>
    public static string DefaultDataRoot() => Path.Combine(CommandLine.SiloEnvironment.Home(), "examples");
}
