using DeepSeekRL.Rewards.Pipeline;

namespace DeepSeekRL.Rewards.Tests.Pipeline;

public sealed class RewardPipelineTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Scores the completion's length; a real rule with a deterministic, checkable result.</summary>
    private sealed class LengthRule : IRewardRule
    {
        public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
            ValueTask.FromResult(RewardOutcome.Score(args.Completion.Length));
    }

    /// <summary>Misbehaves on purpose, depending on the completion text.</summary>
    private sealed class MisbehavingRule : IRewardRule
    {
        public async ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken)
        {
            switch (args.Completion)
            {
                case "throw":
                    throw new InvalidOperationException("boom");
                case "nan":
                    return RewardOutcome.Score(double.NaN);
                case "inf":
                    return RewardOutcome.Score(double.PositiveInfinity);
                case "hang":
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                    return RewardOutcome.Score(1);
                case "ignore-cancel":
                    await Task.Delay(TimeSpan.FromSeconds(30), CancellationToken.None);
                    return RewardOutcome.Score(1);
                case "missing":
                    return RewardOutcome.Missing("cannot judge");
                default:
                    return RewardOutcome.Score(1);
            }
        }
    }

    private sealed class BatchStatsRule : IRewardRule
    {
        public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
            ValueTask.FromResult(RewardOutcome.Score((args.Batch.MaxChars * 1000) + args.Batch.MinChars));
    }

    [Fact]
    public async Task ScoreAsync_MisbehavingRule_GivesMissingScoresCountedByCauseAndTheBatchSurvives()
    {
        var pipeline = new RewardPipelineBuilder { DefaultTimeout = TimeSpan.FromMilliseconds(200) }
            .AddRule("length", new LengthRule(), weight: 0.5)
            .AddRule("flaky", new MisbehavingRule(), weight: 2.0)
            .Build();
        string[] completions = ["ok", "throw", "nan", "inf", "hang", "ignore-cancel", "missing"];

        var results = await pipeline.ScoreAsync(completions.Select(c => new RewardInput("p", c, "a")).ToList(), Ct);

        Assert.Equal(completions.Length, results.Count);
        Assert.All(results, r => Assert.NotNull(r["length"]));
        Assert.Equal(2.0 + (0.5 * 2), results[0].Reward);
        Assert.Empty(results[0].Missing);
        for (var i = 1; i < completions.Length; i++)
        {
            Assert.Null(results[i]["flaky"]);
            Assert.Equal(["flaky"], results[i].Missing);
            Assert.Equal(0.5 * completions[i].Length, results[i].Reward);
        }

        Assert.Contains("InvalidOperationException: boom", results[1].Reasons["flaky"], StringComparison.Ordinal);
        Assert.Contains("timed out after 200 ms", results[4].Reasons["flaky"], StringComparison.Ordinal);
        Assert.Contains("timed out after 200 ms", results[5].Reasons["flaky"], StringComparison.Ordinal);
        Assert.Equal("cannot judge", results[6].Reasons["flaky"]);
        var stats = pipeline.GetStats().Single(s => s.Rule == "flaky");
        Assert.Equal(new RewardRuleStats("flaky", Scored: 1, Missing: 1, Errors: 1, Timeouts: 2, NotFinite: 2), stats);
        Assert.Equal(new RewardRuleStats("length", 7, 0, 0, 0, 0), pipeline.GetStats().Single(s => s.Rule == "length"));
    }

    [Fact]
    public async Task ScoreAsync_ManyInputsInParallel_KeepsInputOrderAndWeights()
    {
        var pipeline = new RewardPipelineBuilder { MaxDegreeOfParallelism = 4 }
            .AddRule("length", new LengthRule(), weight: -1.5)
            .Build();
        var inputs = Enumerable.Range(0, 5000).Select(i => new RewardInput("p", new string('x', i % 97), null)).ToList();

        var results = await pipeline.ScoreAsync(inputs, Ct);

        for (var i = 0; i < inputs.Count; i++)
        {
            Assert.Equal(i % 97, results[i]["length"]);
            Assert.Equal(-1.5 * (i % 97), results[i].Reward);
        }
    }

    [Fact]
    public async Task ScoreAsync_Batch_RulesSeeTheBatchStatistics()
    {
        var pipeline = new RewardPipelineBuilder().AddRule("stats", new BatchStatsRule()).Build();

        var results = await pipeline.ScoreAsync([new RewardInput("p", "abc", null), new RewardInput("p", "abcdefg", null)], Ct);

        Assert.All(results, r => Assert.Equal(7003, r["stats"]));
    }

    [Fact]
    public void Build_DuplicateNameOrNoRules_Throws()
    {
        var builder = new RewardPipelineBuilder().AddRule("length", new LengthRule());
        Assert.Throws<ArgumentException>(() => builder.AddRule("length", new LengthRule()));
        Assert.Throws<ArgumentOutOfRangeException>(() => builder.AddRule("other", new LengthRule(), double.NaN));
        Assert.Throws<InvalidOperationException>(() => new RewardPipelineBuilder().Build());
    }
}
