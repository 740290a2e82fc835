using System.Globalization;
using System.Text.Json;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Model;

/// <summary>
/// The model commands on both engines through the real CLI: train-sft for 20 steps gives losses within 1e-3 on the
/// libtorch engine and the native one, a torch run resumes a native run's checkpoint, forward (prefill and decode)
/// and grads agree, generate samples the same tokens, and bad --backend/--device values are one line each.
/// </summary>
public sealed class BackendCommandTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TrainSft_TorchAndNative_TwentyStepsWithin1e3_AndTorchResumesANativeCheckpoint()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-backends-");
        try
        {
            string P(string name) => Path.Combine(dir.FullName, name);
            await PrepareAsync(P);
            string[] common = ["--tokenizer", P("tok.json"), "--data", P("data.jsonl"), "--epochs", "4", "--batch-size", "8", "--lr", "3e-3", "--warmup", "2", "--max-steps", "20"];
            var native = await CliProcess.RunAsync(["model", "train-sft", "--model", P("base"), "--out", P("native"), .. common], null, Ct);
            Assert.True(native.ExitCode == 0, native.StandardError);
            var torch = await CliProcess.RunAsync(["model", "train-sft", "--model", P("base"), "--out", P("torch"), "--backend", "torch", .. common], null, Ct);
            Assert.True(torch.ExitCode == 0, torch.StandardError);

            var a = Losses(P("native/loss.csv"));
            var b = Losses(P("torch/loss.csv"));
            Assert.Equal(20, a.Count);
            Assert.Equal(20, b.Count);
            var worst = a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
            Assert.True(worst <= 1e-3, $"losses differ by up to {worst}: native {string.Join(", ", a)}; torch {string.Join(", ", b)}");
            Assert.True(a[^1] < 0.7 * a[0], $"loss did not fall: {string.Join(", ", a)}");
            AssertWeightsClose(P("native"), P("torch"), 1e-3);

            // 7 native steps, then the rest on libtorch from the native optimizer state: ends where the native run ended.
            var part = await CliProcess.RunAsync(["model", "train-sft", "--model", P("base"), "--out", P("part"), .. common[..^2], "--max-steps", "7"], null, Ct);
            Assert.True(part.ExitCode == 0, part.StandardError);
            var resumed = await CliProcess.RunAsync(["model", "train-sft", "--model", P("part"), "--out", P("resumed"), "--resume", "--backend", "torch", .. common], null, Ct);
            Assert.True(resumed.ExitCode == 0, resumed.StandardError);
            var tail = Losses(P("resumed/loss.csv"));
            Assert.Equal(13, tail.Count);
            Assert.True(Math.Abs(tail[^1] - a[^1]) <= 1e-3, $"resumed on torch: last loss {tail[^1]} vs native {a[^1]}");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task ForwardGradsGenerate_TorchAgreesWithNative()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-backends-");
        try
        {
            string P(string name) => Path.Combine(dir.FullName, name);
            var init = await CliProcess.RunAsync(["model", "init", "--config", Path.Combine(RepositoryPaths.Root, "examples", "models", "tiny.json"), "--seed", "3", "--out", P("m")], null, Ct);
            Assert.True(init.ExitCode == 0, init.StandardError);
            const string Tokens = "5,17,300,2,99,41,8,77,120,3";
            foreach (var decode in new[] { false, true })
            {
                string[] extra = decode ? ["--decode"] : [];
                var n = await CliProcess.RunAsync(["model", "forward", "--model", P("m"), "--tokens", Tokens, "--out", P("n.safetensors"), .. extra], null, Ct);
                var t = await CliProcess.RunAsync(["model", "forward", "--model", P("m"), "--tokens", Tokens, "--out", P("t.safetensors"), "--backend", "torch", .. extra], null, Ct);
                Assert.True(n.ExitCode == 0, n.StandardError);
                Assert.True(t.ExitCode == 0, t.StandardError);
                var expected = Safetensors.ReadAll(P("n.safetensors"));
                var actual = Safetensors.ReadAll(P("t.safetensors"));
                AssertClose(expected["logits"].Data, actual["logits"].Data, 1e-4, decode ? "decode logits" : "prefill logits");
                if (!decode)
                {
                    AssertClose(expected["mtp_logits"].Data, actual["mtp_logits"].Data, 1e-4, "MTP logits");
                }
            }

            string[] batch = ["--tokens", "5,17,300,2,99,41", "--tokens", "8,77,120,3,1,9", "--mtp-weight", "0.3"];
            var gn = await CliProcess.RunAsync(["model", "grads", "--model", P("m"), .. batch, "--out", P("gn.safetensors")], null, Ct);
            var gt = await CliProcess.RunAsync(["model", "grads", "--model", P("m"), .. batch, "--out", P("gt.safetensors"), "--backend", "torch"], null, Ct);
            Assert.True(gn.ExitCode == 0, gn.StandardError);
            Assert.True(gt.ExitCode == 0, gt.StandardError);
            var gradsN = Safetensors.ReadAll(P("gn.safetensors"));
            var gradsT = Safetensors.ReadAll(P("gt.safetensors"));
            Assert.Equal(gradsN["loss"].Data[0], gradsT["loss"].Data[0], 1e-4);
            foreach (var name in gradsN.Keys.Where(k => k.EndsWith("_proj.weight", StringComparison.Ordinal) && gradsN[k].Data.Any(x => x != 0)))
            {
                AssertClose(gradsN[name].Data, gradsT[name].Data, 1e-3, "gradient of " + name);
            }

            string[] sample = ["--prompt", "5,17,300", "--prompt", "8,77", "--max-tokens", "12", "--temperature", "1", "--seed", "4", "--stop-ids", "0"];
            var sn = await CliProcess.RunAsync(["model", "generate", "--model", P("m"), .. sample], null, Ct);
            var st = await CliProcess.RunAsync(["model", "generate", "--model", P("m"), .. sample, "--backend", "torch"], null, Ct);
            Assert.True(sn.ExitCode == 0, sn.StandardError);
            Assert.True(st.ExitCode == 0, st.StandardError);
            var tokensN = sn.StandardOutput.Split('\n').Where(l => l.Contains("tokens=", StringComparison.Ordinal)).ToArray();
            Assert.Equal(2, tokensN.Length);
            Assert.Equal(tokensN, st.StandardOutput.Split('\n').Where(l => l.Contains("tokens=", StringComparison.Ordinal)).ToArray());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData(new[] { "--backend", "jax" }, "deepseekrl: error: --backend: 'jax' is not native or torch")]
    [InlineData(new[] { "--device", "gpu" }, "deepseekrl: error: --device: 'gpu' is not cpu, cuda or cuda:N")]
    [InlineData(new[] { "--device", "cuda:0" }, "deepseekrl: error: --device: 'cuda:0': the native engine runs on cpu only (use --backend torch for CUDA)")]
    [InlineData(new[] { "--backend", "torch", "--cache", "naive" }, "deepseekrl: error: --cache: the torch engine decodes with the absorbed latent cache only")]
    [InlineData(new[] { "--backend", "torch", "--device", "cuda:0" }, "deepseekrl: error: --device: device = \"cuda:0\": ")]
    public async Task Forward_BadBackendOrDevice_OneLine(string[] options, string expected)
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-backends-");
        try
        {
            var model = Path.Combine(dir.FullName, "m");
            var init = await CliProcess.RunAsync(["model", "init", "--config", Path.Combine(RepositoryPaths.Root, "examples", "models", "micro.json"), "--seed", "1", "--out", model], null, Ct);
            Assert.True(init.ExitCode == 0, init.StandardError);
            var run = await CliProcess.RunAsync(["model", "forward", "--model", model, "--tokens", "1,2,3", "--out", Path.Combine(dir.FullName, "x.safetensors"), .. options], null, Ct);
            Assert.Equal(1, run.ExitCode);
            Assert.StartsWith(expected, Assert.Single(CliProcess.Lines(run.StandardError)), StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static async Task PrepareAsync(Func<string, string> p)
    {
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

        await File.WriteAllLinesAsync(p("data.jsonl"), rows, Ct);
        await File.WriteAllLinesAsync(p("corpus.txt"), corpus, Ct);
        var tokenizer = await CliProcess.RunAsync(["tokenizer", "train", "--input", p("corpus.txt"), "--vocab-size", "400",
            "--special-token", "<｜begin▁of▁sentence｜>", "--special-token", "<｜end▁of▁sentence｜>",
            "--special-token", "<｜User｜>", "--special-token", "<｜Assistant｜>", "--out", p("tok.json")], null, Ct);
        Assert.True(tokenizer.ExitCode == 0, tokenizer.StandardError);
        var init = await CliProcess.RunAsync(["model", "init", "--config", Path.Combine(RepositoryPaths.Root, "examples", "models", "tiny.json"), "--seed", "1", "--out", p("base")], null, Ct);
        Assert.True(init.ExitCode == 0, init.StandardError);
    }

    private static List<double> Losses(string path) =>
        File.ReadAllLines(path).Skip(1).Select(l => double.Parse(l.Split(',')[2], CultureInfo.InvariantCulture)).ToList();

    private static void AssertWeightsClose(string a, string b, double tolerance)
    {
        var x = Safetensors.ReadAll(Path.Combine(a, "model.safetensors"));
        var y = Safetensors.ReadAll(Path.Combine(b, "model.safetensors"));
        foreach (var (name, tensor) in x)
        {
            AssertClose(tensor.Data, y[name].Data, tolerance, "weights " + name);
        }
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 0, worst = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        }

        Assert.True(worst <= tolerance * Math.Max(scale, 1e-6), $"{what}: |diff| {worst:G4} > {tolerance} x {scale:G4}");
    }
}
