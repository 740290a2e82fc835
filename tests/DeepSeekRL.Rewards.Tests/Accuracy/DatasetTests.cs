using DeepSeekRL.Rewards.Accuracy;

namespace DeepSeekRL.Rewards.Tests.Accuracy;

public sealed class DatasetTests(ITestOutputHelper output)
{
    [Fact]
    public void Verify_AllGsm8kRows_BoxedAndAnswerIsGoldScoreOneAndGoldPlusOneScoresZero()
    {
        var rows = TestData.ReadJsonLines("gsm8k-test.jsonl");
        Assert.Equal(1319, rows.Count);
        var ct = TestContext.Current.CancellationToken;
        var failures = new List<string>();
        foreach (var row in rows)
        {
            var gold = MathVerifier.Gsm8kGold(row.Str("answer")!);
            var plusOne = (System.Numerics.BigInteger.Parse(gold, System.Globalization.CultureInfo.InvariantCulture) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var solution = row.Str("answer")!;
            if (!MathVerifier.Verify(solution.Contains("####", StringComparison.Ordinal) ? gold : solution, $"so \\boxed{{{gold}}}", null, ct).IsEqual)
            {
                failures.Add("boxed " + gold);
            }

            if (!MathVerifier.Verify(gold, $"Work.\nThe answer is {gold}.", null, ct).IsEqual)
            {
                failures.Add("answer is " + gold);
            }

            if (MathVerifier.Verify(gold, $"\\boxed{{{plusOne}}}", null, ct).Status != MathVerifyStatus.NotEqual)
            {
                failures.Add("plus one " + gold);
            }
        }

        Assert.Empty(failures);
    }

    [Fact]
    public void Verify_AllMath500Rows_OwnGoldScoresOneAndNeighbourGoldScoresZeroUnlessEquivalent()
    {
        var rows = TestData.ReadJsonLines("math500-test.jsonl");
        Assert.Equal(500, rows.Count);
        var ct = TestContext.Current.CancellationToken;
        var own = new List<string>();
        var neighbours = new List<string>();
        for (var i = 0; i < rows.Count; i++)
        {
            var gold = rows[i].Str("answer")!;
            var self = MathVerifier.Verify(gold, $"Thus the answer is $\\boxed{{{gold}}}$.", null, ct);
            if (!self.IsEqual)
            {
                own.Add($"{i}: {gold} -> {self.Status} {self.Reason}");
            }

            var next = rows[(i + 1) % rows.Count].Str("answer")!;
            if (MathVerifier.Verify(gold, $"\\boxed{{{next}}}", null, ct).IsEqual)
            {
                neighbours.Add($"{i}\t{gold}\t{next}");
            }
        }

        foreach (var line in own)
        {
            output.WriteLine("own gold failed: " + line);
        }

        File.WriteAllLines(Path.Combine(AppContext.BaseDirectory, "math500-own-failures.txt"), own);
        File.WriteAllLines(Path.Combine(AppContext.BaseDirectory, "math500-neighbours.actual.txt"), neighbours);
        var expectedNeighbours = File.ReadAllLines(TestData.PathOf("math500-equivalent-neighbours.txt")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();
        Assert.Empty(own);
        Assert.Equal(expectedNeighbours, neighbours);
    }
}
