using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DeepSeekRL.Storage.Nodes;
using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Silo.CommandLine;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// A real worker process for fault benchmarks and tests (<c>bench queue-worker</c>, hidden): registers a node,
/// claims items, prints <c>holding N</c>, and renews its leases (for three renewal intervals at a time) until it is killed.
/// </summary>
public static class QueueWorkerProcess
{
    /// <summary>Creates the hidden command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var nodeId = new Option<string>("--node-id") { Required = true };
        var kind = new Option<string>("--kind") { Required = true };
        var campaign = new Option<long>("--campaign") { Required = true };
        var hold = new Option<int>("--hold") { Required = true };
        var heartbeatMs = new Option<int>("--heartbeat-ms") { DefaultValueFactory = _ => 1000 };
        var command = new Command("queue-worker", "A worker process that claims items and holds their leases until killed (for fault benchmarks and tests).")
        {
            Hidden = true,
        };
        command.Options.Add(nodeId);
        command.Options.Add(kind);
        command.Options.Add(campaign);
        command.Options.Add(hold);
        command.Options.Add(heartbeatMs);
        command.SetHandler(async (parseResult, cancellationToken) =>
        {
            var target = SiloCommandLine.ResolveTarget(parseResult);
            await using var dataSource = WorkQueue.CreateFastDataSource(target.ConnectionString ?? throw new CliException("queue-worker needs --db"));
            var queue = new WorkQueue(dataSource);
            var renewEvery = TimeSpan.FromMilliseconds(parseResult.GetValue(heartbeatMs));
            var leaseDuration = renewEvery * 3;
            var node = new NodeIdentity(parseResult.GetValue(nodeId)!, Environment.ProcessId);
            var want = parseResult.GetValue(hold);
            var held = new List<ClaimedItem>();
            while (held.Count < want)
            {
                held.AddRange(await queue.ClaimAsync(node, [parseResult.GetValue(kind)!], want - held.Count, leaseDuration, parseResult.GetValue(campaign), null, cancellationToken));
            }

            Console.WriteLine($"holding {held.Count}");
            Console.WriteLine("leases " + string.Join(',', held.Select(h => $"{h.Id}:{h.Attempt}")) + $" node {node.NodeId} {node.Generation}");
            await Console.Out.FlushAsync(cancellationToken);
            while (true)
            {
                await Task.Delay(renewEvery, cancellationToken);
                await queue.RenewLeasesAsync(node, leaseDuration, cancellationToken);
            }
        });
        return command;
    }

    /// <summary>Starts the worker as a child process of this program.</summary>
    /// <param name="connectionString">The database.</param>
    /// <param name="nodeId">The node id.</param>
    /// <param name="kind">The kind to claim.</param>
    /// <param name="campaign">The campaign.</param>
    /// <param name="hold">How many items to claim and hold.</param>
    /// <param name="heartbeat">The heartbeat interval.</param>
    /// <returns>The process, with standard output redirected.</returns>
    public static Process Start(string connectionString, string nodeId, string kind, long campaign, int hold, TimeSpan heartbeat)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        var entry = System.Reflection.Assembly.GetEntryAssembly()!.Location;
        if (Path.GetFileNameWithoutExtension(info.FileName) == "dotnet")
        {
            info.ArgumentList.Add(entry);
        }

        foreach (var argument in new[]
        {
            "bench", "queue-worker", "--db", connectionString, "--node-id", nodeId, "--kind", kind,
            "--campaign", campaign.ToString(CultureInfo.InvariantCulture), "--hold", hold.ToString(CultureInfo.InvariantCulture),
            "--heartbeat-ms", ((int)heartbeat.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
        })
        {
            info.ArgumentList.Add(argument);
        }

        return Process.Start(info) ?? throw new InvalidOperationException("cannot start the queue worker");
    }
}
