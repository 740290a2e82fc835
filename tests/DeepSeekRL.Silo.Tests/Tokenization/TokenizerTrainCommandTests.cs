using System.Text.Json;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Silo.Tests.Tokenization;

public sealed class TokenizerTrainCommandTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Train_AddedTokens_AreWrittenAsNonSpecialAfterTheSpecials_AndAClashIsRejected()
    {
        var dir = Directory.CreateTempSubdirectory("deepseekrl-tok-");
        try
        {
            string P(string name) => Path.Combine(dir.FullName, name);
            var lines = Enumerable.Range(0, 40).Select(i => $"<think>\n{i}+{i + 1}={(2 * i) + 1}\n</think>\n\\boxed{{{(2 * i) + 1}}}".Replace("\n", " ", StringComparison.Ordinal));
            await File.WriteAllLinesAsync(P("corpus.txt"), lines, Ct);

            var train = await CliProcess.RunAsync(["tokenizer", "train", "--input", P("corpus.txt"), "--vocab-size", "300",
                "--special-token", "<s>", "--added-token", "<think>", "--added-token", "</think>", "--out", P("tok.json")], null, Ct);

            Assert.True(train.ExitCode == 0, train.StandardError);
            using (var doc = JsonDocument.Parse(await File.ReadAllTextAsync(P("tok.json"), Ct)))
            {
                var added = doc.RootElement.GetProperty("added_tokens").EnumerateArray()
                    .Select(t => $"{t.GetProperty("id").GetInt32()} {t.GetProperty("content").GetString()} {t.GetProperty("special").GetBoolean()}")
                    .ToList();
                Assert.Equal(["0 <s> True", "1 <think> False", "2 </think> False"], added);
            }

            var clash = await CliProcess.RunAsync(["tokenizer", "train", "--input", P("corpus.txt"), "--vocab-size", "300",
                "--special-token", "<think>", "--added-token", "<think>", "--out", P("clash.json")], null, Ct);

            Assert.NotEqual(0, clash.ExitCode);
            Assert.Contains("\"<think>\" is both a special token and an added token", clash.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
