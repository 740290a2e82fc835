using System.CommandLine;

namespace DeepSeekRL.Silo.CommandLine;

/// <summary>
/// <c>deepseekrl demo [--quick] [--report FILE]</c>: R1 on a potato. Until the pipeline's last stages land (campaign
/// grains, the demo itself) it checks the database and prints the plan it will run, and says that it has not run it.
/// </summary>
public static class DemoCommand
{
    /// <summary>Creates the command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "The shorter preset." };
        var report = new Option<FileInfo?>("--report") { Description = "Write the report JSON to this file." };
        var demo = new Command("demo", "R1 on a potato: pretrain, cold-start SFT, GRPO, rejection sampling and distillation of a tiny DeepSeek-V3 model.");
        demo.Options.Add(quick);
        demo.Options.Add(report);
        demo.SetHandler(async (parseResult, cancellationToken) =>
        {
            await using var db = await SiloCommandLine.ConnectAsync(parseResult, cancellationToken);
            Console.WriteLine($"database ready at {db.Target.Endpoint} (schema version {db.Migrations.SchemaVersion})");
            Console.WriteLine("The demo will run, in order:");
            Console.WriteLine("  1. generate seeded arithmetic and Countdown tasks, split train / held-out eval");
            Console.WriteLine("  2. train a BPE tokenizer and pretrain a tiny DeepSeek-V3 (MoE + MLA + MTP) from scratch");
            Console.WriteLine("  3. cold-start SFT on R1-format chain-of-thought traces");
            Console.WriteLine("  4. a GRPO campaign through the rollout, reward and learner grains, evaluated every few steps");
            Console.WriteLine("  5. rejection sampling into PostgreSQL, JSONL export, and distillation into a fresh base model");
            Console.WriteLine("  6. the report (terminal table, --report JSON, SVG of reward/accuracy/length per step)");
            Console.Error.WriteLine("deepseekrl: the campaign grains and the demo pipeline are not built yet; nothing was trained");
            return 2;
        });
        return demo;
    }
}
