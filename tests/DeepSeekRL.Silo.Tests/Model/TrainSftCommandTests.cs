using System.Globalization;
using System.Text.Json;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Model;

public sealed class TrainSftCommandTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TrainSft_ParquetCopyOfTheJsonl_TrainsTheSameWeightsAndNamesTheBadRowByRowGroupAndRow()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-sft-parquet-");
        try
        {
            string P(string name) => Path.Combine(dir.FullName, name);
            var random = new Random(9);
            var messages = new List<(string Role, string? Content)[]>();
            for (var i = 0; i < 16; i++)
            {
                int a = random.Next(10, 99), b = random.Next(10, 99);
                messages.Add([("user", $"What is {a} + {b}?"), ("assistant", $"<think>\nunits {a % 10} + {b % 10}.\n</think>\n\n{a + b}")]);
            }

            await File.WriteAllLinesAsync(P("data.jsonl"), messages.Select(m => JsonSerializer.Serialize(new { messages = m.Select(x => new { role = x.Role, content = x.Content }) })), Ct);
            messages.Add([("user", "What is 1 + 1?"), ("assistant", null)]);
            await WriteMessagesAsync(P("data.parquet"), messages);
            await File.WriteAllLinesAsync(P("corpus.txt"), messages.SelectMany(m => m).Select(x => x.Content ?? string.Empty).Select(c => c.Replace("\n", " ", StringComparison.Ordinal)), Ct);
            var tokenizer = await CliProcess.RunAsync(["tokenizer", "train", "--input", P("corpus.txt"), "--vocab-size", "300",
                "--special-token", "<｜begin▁of▁sentence｜>", "--special-token", "<｜end▁of▁sentence｜>",
                "--special-token", "<｜User｜>", "--special-token", "<｜Assistant｜>", "--out", P("tok.json")], null, Ct);
            Assert.True(tokenizer.ExitCode == 0, tokenizer.StandardError);
            var init = await CliProcess.RunAsync(["model", "init", "--config", Path.Combine(RepositoryPaths.Root, "examples", "models", "tiny.json"), "--seed", "1", "--out", P("base")], null, Ct);
            Assert.True(init.ExitCode == 0, init.StandardError);

            string[] common = ["--model", P("base"), "--tokenizer", P("tok.json"), "--batch-size", "8", "--warmup", "1"];
            var fromJsonl = await CliProcess.RunAsync(["model", "train-sft", .. common, "--data", P("data.jsonl"), "--out", P("a")], null, Ct);
            var fromParquet = await CliProcess.RunAsync(["model", "train-sft", .. common, "--data", P("data.parquet"), "--out", P("b")], null, Ct);

            Assert.True(fromJsonl.ExitCode == 0, fromJsonl.StandardError);
            Assert.True(fromParquet.ExitCode == 0, fromParquet.StandardError);
            Assert.Contains("data.parquet row group 0, row 16: messages[1] needs string \"role\" and \"content\"; skipped", fromParquet.StandardError, StringComparison.Ordinal);
            Assert.Equal(await File.ReadAllBytesAsync(P("a/model.safetensors"), Ct), await File.ReadAllBytesAsync(P("b/model.safetensors"), Ct));

            // Garbage with a .parquet name: one line naming the file, no stack trace.
            await File.WriteAllBytesAsync(P("junk.parquet"), [.. "PAR1"u8, .. new byte[64], .. "PAR1"u8], Ct);
            var junk = await CliProcess.RunAsync(["model", "train-sft", .. common, "--data", P("junk.parquet"), "--out", P("c")], null, Ct);
            Assert.Equal(1, junk.ExitCode);
            Assert.StartsWith("deepseekrl: error: --data: junk.parquet: ", Assert.Single(CliProcess.Lines(junk.StandardError)), StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static async Task WriteMessagesAsync(string path, List<(string Role, string? Content)[]> rows)
    {
        var role = new Parquet.Schema.DataField<string>("role");
        var content = new Parquet.Schema.DataField<string>("content");
        var schema = new Parquet.Schema.ParquetSchema(new Parquet.Schema.ListField("messages", new Parquet.Schema.StructField("element", role, content)));
        var repetitions = rows.SelectMany(r => r.Select((_, i) => i == 0 ? 0 : 1)).ToArray();
        await using var file = File.Create(path);
        await using var writer = await Parquet.ParquetWriter.CreateAsync(schema, file, cancellationToken: Ct);
        using var group = writer.CreateRowGroup();
        await group.WriteAsync(role, rows.SelectMany(r => r.Select(m => (string?)m.Role)).ToArray(), repetitions);
        await group.WriteAsync(content, rows.SelectMany(r => r.Select(m => m.Content)).ToArray(), repetitions);
    }

    [Fact]
    public async Task TrainSft_ArithmeticTraces_LossFallsAndTheOutputLoads()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-sft-");
        try
        {
            string P(string name) => Path.Combine(dir.FullName, name);
            var random = new Random(5);
            var rows = new List<string>();
            var corpus = new List<string>();
            for (var i = 0; i < 48; i++)
            {
                int a = random.Next(10, 99), b = random.Next(10, 99);
                var question = $"What is {a} + {b}?";
                var answer = $"<think>\nunits {a % 10} + {b % 10}. tens {a / 10} + {b / 10}.\n</think>\n\nThe answer is \\boxed{{{a + b}}}.";
                rows.Add(JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = question }, new { role = "assistant", content = answer } } }));
                corpus.Add(question);
                corpus.Add(answer.Replace("\n", " ", StringComparison.Ordinal));
            }

            rows.Add("{\"messages\": 5}");
            await File.WriteAllLinesAsync(P("data.jsonl"), rows, Ct);
            await File.WriteAllLinesAsync(P("corpus.txt"), corpus, Ct);

            var tokenizer = await CliProcess.RunAsync(["tokenizer", "train", "--input", P("corpus.txt"), "--vocab-size", "400",
                "--special-token", "<｜begin▁of▁sentence｜>", "--special-token", "<｜end▁of▁sentence｜>",
                "--special-token", "<｜User｜>", "--special-token", "<｜Assistant｜>", "--out", P("tok.json")], null, Ct);
            Assert.True(tokenizer.ExitCode == 0, tokenizer.StandardError);
            var init = await CliProcess.RunAsync(["model", "init", "--config", Path.Combine(RepositoryPaths.Root, "examples", "models", "tiny.json"), "--seed", "1", "--out", P("base")], null, Ct);
            Assert.True(init.ExitCode == 0, init.StandardError);

            var train = await CliProcess.RunAsync(["model", "train-sft", "--model", P("base"), "--tokenizer", P("tok.json"), "--data", P("data.jsonl"),
                "--out", P("sft"), "--epochs", "3", "--batch-size", "8", "--lr", "3e-3", "--warmup", "2"], null, Ct);

            Assert.True(train.ExitCode == 0, train.StandardError);
            Assert.Contains("data.jsonl line 49: field \"messages\" is missing or not an array; skipped", train.StandardError, StringComparison.Ordinal);
            var losses = File.ReadAllLines(P(Path.Combine("sft", "loss.csv"))).Skip(1)
                .Select(l => double.Parse(l.Split(',')[3], CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(18, losses.Count);
            Assert.True(losses.TakeLast(3).Average() < 0.5 * losses.Take(3).Average(), $"main loss did not fall: {string.Join(", ", losses)}");
            foreach (var file in new[] { "config.json", "model.safetensors", "optimizer.safetensors", "tokenizer.json" })
            {
                Assert.True(File.Exists(P(Path.Combine("sft", file))), file);
            }

            var forward = await CliProcess.RunAsync(["model", "forward", "--model", P("sft"), "--tokens", "1,2,3", "--out", P("logits.safetensors")], null, Ct);
            Assert.True(forward.ExitCode == 0, forward.StandardError);

            // Interrupted after 7 of 18 steps and resumed: the final weights equal the uninterrupted run's, byte for byte.
            string[] common = ["--tokenizer", P("tok.json"), "--data", P("data.jsonl"), "--epochs", "3", "--batch-size", "8", "--lr", "3e-3", "--warmup", "2"];
            var part = await CliProcess.RunAsync(["model", "train-sft", "--model", P("base"), "--out", P("part"), "--max-steps", "7", .. common], null, Ct);
            Assert.True(part.ExitCode == 0, part.StandardError);
            var resumed = await CliProcess.RunAsync(["model", "train-sft", "--model", P("part"), "--out", P("resumed"), "--resume", .. common], null, Ct);
            Assert.True(resumed.ExitCode == 0, resumed.StandardError);
            Assert.Equal(
                await File.ReadAllBytesAsync(P(Path.Combine("sft", "model.safetensors")), Ct),
                await File.ReadAllBytesAsync(P(Path.Combine("resumed", "model.safetensors")), Ct));

            var wrong = await CliProcess.RunAsync(["model", "train-sft", "--model", P("part"), "--out", P("wrong"), "--resume", .. common[..^2], "--warmup", "3"], null, Ct);
            Assert.Equal(1, wrong.ExitCode);
            Assert.Contains("was saved by a run with other data or settings", wrong.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
