using System.CommandLine;
using DeepSeekRL.Storage.Database;
using DeepSeekRL.Silo.Database;

namespace DeepSeekRL.Silo.CommandLine;

/// <summary>Builds the <c>deepseekrl</c> command line (DESIGN.md §4).</summary>
public static class SiloCommandLine
{
    /// <summary>The global <c>--db</c> option: a connection string or URI that overrides <c>DEEPSEEKRL_DB</c>.</summary>
    public static Option<string?> DbOption { get; } = new("--db")
    {
        Description = "PostgreSQL connection string or postgresql:// URI (default: $DEEPSEEKRL_DB, else the embedded cluster under .data/pg)",
        Recursive = true,
    };

    /// <summary>
    /// The global <c>--verbose</c> option: errors print their stack trace too (as <c>DEEPSEEKRL_DEBUG=1</c> does);
    /// <c>campaign run</c> also prints the silo's log lines.
    /// </summary>
    public static Option<bool> VerboseOption { get; } = new("--verbose")
    {
        Description = "Print stack traces with errors (also $DEEPSEEKRL_DEBUG=1); campaign run also prints its log lines",
        Recursive = true,
    };

    /// <summary>
    /// Runs the command line: every exception, on any thread, ends as one line <c>deepseekrl: error: ...</c>
    /// (<see cref="CliErrors"/>).
    /// </summary>
    /// <param name="args">The arguments.</param>
    /// <returns>The exit code.</returns>
    public static async Task<int> InvokeAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var trace = CliErrors.DebugRequested || args.Contains(VerboseOption.Name, StringComparer.Ordinal);
        CliErrors.InstallProcessHandlers(trace);
        try
        {
            // Ctrl-C cancels the command's token; a command then saves its progress (a demo stage, an SFT run's weights
            // and optimizer state) before it exits, which can take more than System.CommandLine's default 2 s on a busy
            // machine: past the timeout the process ends with exit code 130 and nothing saved or said.
            return await Create().Parse(args).InvokeAsync(new InvocationConfiguration
            {
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = TimeSpan.FromSeconds(30),
            });
        }
        catch (Exception ex)
        {
            return CliErrors.Write(ex, null, trace);
        }
    }

    /// <summary>Creates the root command with every subcommand.</summary>
    /// <returns>The root command.</returns>
    public static RootCommand Create()
    {
        var root = new RootCommand("DeepSeekRL: DeepSeek-R1-style reinforcement learning on a DeepSeek-V3-architecture model.");
        root.Options.Add(DbOption);
        root.Options.Add(VerboseOption);
        root.Subcommands.Add(DbCommands.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(Export.ExportCommand.Create());
        root.Subcommands.Add(Rewards.RewardsCommands.Create());
        root.Subcommands.Add(Tokenization.TokenizerCommands.Create());
        root.Subcommands.Add(Benchmarks.BenchCommands.Create());
        root.Subcommands.Add(Model.ModelCommands.Create());
        root.Subcommands.Add(Serving.ServeCommand.Create());
        root.Subcommands.Add(Campaigns.CampaignCommands.Create());
        root.Subcommands.Add(Campaigns.CampaignCommands.CreateSilo());
        AddVersionEverywhere(root);
        return root;
    }

    /// <summary>
    /// Wraps a command body: any exception becomes a one-line error (<see cref="CliErrors.Describe"/>) and an exit
    /// code (a <see cref="CliException"/>'s own, else 1); Ctrl-C becomes exit code 130.
    /// </summary>
    /// <param name="command">The command.</param>
    /// <param name="body">The body; returns the exit code.</param>
    public static void SetHandler(this Command command, Func<ParseResult, CancellationToken, Task<int>> body)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(body);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            try
            {
                return await body(parseResult, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await Console.Error.WriteLineAsync("deepseekrl: cancelled");
                return 130;
            }
            catch (Exception ex)
            {
                return CliErrors.Write(ex, command, parseResult.GetValue(VerboseOption) || CliErrors.DebugRequested);
            }
        });
    }

    /// <summary>Returns the value of a successful outcome, or throws a <see cref="CliException"/> with its error.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="outcome">The outcome.</param>
    /// <returns>The value.</returns>
    public static T OrExit<T>(this Outcome<T> outcome) =>
        outcome.Succeeded ? outcome.Value : throw new CliException(outcome.Error!);

    /// <summary>Connects to the database chosen by <c>--db</c>, <c>DEEPSEEKRL_DB</c> or the embedded cluster, and migrates it.</summary>
    /// <param name="parseResult">The parse result holding <c>--db</c>.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The connected database.</returns>
    public static async Task<ConnectedDatabase> ConnectAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parseResult);
        var target = ResolveTarget(parseResult);
        var connected = await DatabaseConnector.ConnectAsync(target, SiloEnvironment.EmbeddedCluster(), Migration.Embedded(), cancellationToken);
        return connected.OrExit();
    }

    /// <summary>The database target chosen by <c>--db</c>, then <c>DEEPSEEKRL_DB</c>, then the embedded cluster.</summary>
    /// <param name="parseResult">The parse result.</param>
    /// <returns>The target.</returns>
    public static DatabaseTarget ResolveTarget(ParseResult parseResult)
    {
        ArgumentNullException.ThrowIfNull(parseResult);
        return DatabaseTarget.Resolve(parseResult.GetValue(DbOption), Environment.GetEnvironmentVariable(DatabaseTarget.EnvironmentVariable)).OrExit();
    }

    private static void AddVersionEverywhere(Command command)
    {
        foreach (var sub in command.Subcommands)
        {
            sub.Options.Add(new VersionOption());
            AddVersionEverywhere(sub);
        }
    }
}
