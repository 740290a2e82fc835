using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains.Campaigns;
using DeepSeekRL.Rewards.Accuracy;
using DeepSeekRL.Rewards.Countdown;
using DeepSeekRL.Rewards.Format;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Testing;

namespace DeepSeekRL.Grains.Tests.Campaigns;

/// <summary>
/// Campaigns whose dataset mixes task kinds: arithmetic rows judged by <c>accuracy</c> (where <c>countdown</c> is
/// missing) and Countdown rows judged by <c>countdown</c> (where <c>accuracy</c> is missing). Real rules, and for the
/// dataset grain a real campaign on PostgreSQL.
/// </summary>
public sealed class MixedRulesTests : IDisposable
{
    private const string Think = "<think>\nworking\n</think>\n";

    private static readonly RewardPipeline Mixed = new RewardPipelineBuilder()
        .AddAccuracyReward()
        .AddCountdownReward()
        .AddFormatR1Reward()
        .Build();

    private readonly string _dir = Directory.CreateTempSubdirectory("mixed-rules-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Dictionary<string, JsonElement> CountdownFields() => new(StringComparer.Ordinal)
    {
        ["numbers"] = JsonSerializer.SerializeToElement(new[] { 3, 5, 2 }),
        ["target"] = JsonSerializer.SerializeToElement(16),
    };

    private static RewardInput Arithmetic(string completion) => new("What is 9 + 37?", Think + completion, "46");

    private static RewardInput Countdown(string completion) =>
        new("Using 3, 5, 2 make 16.", Think + completion, null, Fields: CountdownFields());

    private static RewardInput Unjudgeable() => new("Say hi.", Think + "hi", null);

    private static async Task<RewardResult> ScoreAsync(RewardPipeline pipeline, RewardInput input) =>
        Assert.Single(await pipeline.ScoreAsync([input], Ct));

    [Fact]
    public async Task IsCorrect_MixedPipeline_JudgesEachSampleByTheFirstCorrectnessRuleItHasAScoreFor()
    {
        var arithmeticRight = await ScoreAsync(Mixed, Arithmetic("\\boxed{46}"));
        var arithmeticWrong = await ScoreAsync(Mixed, Arithmetic("\\boxed{45}"));
        var countdownRight = await ScoreAsync(Mixed, Countdown("<answer>(3 + 5) * 2</answer>"));
        var countdownWrong = await ScoreAsync(Mixed, Countdown("<answer>3 + 5 + 2</answer>"));

        // The rows really are mixed: each kind is scored by one correctness rule only.
        Assert.Equal(1.0, arithmeticRight["accuracy"]);
        Assert.Null(arithmeticRight["countdown"]);
        Assert.Null(countdownRight["accuracy"]);
        Assert.Equal(1.0, countdownRight["countdown"]);

        Assert.Equal(["accuracy", "countdown"], Evaluation.CorrectnessRules(Mixed));
        Assert.Equal("accuracy", Evaluation.CorrectnessRule(Mixed, arithmeticRight));
        Assert.Equal("countdown", Evaluation.CorrectnessRule(Mixed, countdownRight));
        Assert.True(Evaluation.IsCorrect(Mixed, arithmeticRight));
        Assert.False(Evaluation.IsCorrect(Mixed, arithmeticWrong));
        Assert.True(Evaluation.IsCorrect(Mixed, countdownRight));
        Assert.False(Evaluation.IsCorrect(Mixed, countdownWrong));
    }

    [Fact]
    public async Task IsCorrect_EveryCorrectnessRuleMissing_IsIncorrectEvenWithPositiveReward()
    {
        var result = await ScoreAsync(Mixed, Unjudgeable());

        Assert.Null(result["accuracy"]);
        Assert.Null(result["countdown"]);
        Assert.True(result.Reward > 0, "the format rule should give the sample a positive total reward");
        Assert.Null(Evaluation.CorrectnessRule(Mixed, result));
        Assert.False(Evaluation.IsCorrect(Mixed, result));
    }

    [Fact]
    public async Task IsCorrect_CountdownListedFirst_ArithmeticSampleStillJudgedByAccuracy()
    {
        var pipeline = new RewardPipelineBuilder().AddCountdownReward().AddAccuracyReward().Build();

        var right = await ScoreAsync(pipeline, Arithmetic("\\boxed{46}"));
        var wrong = await ScoreAsync(pipeline, Arithmetic("\\boxed{45}"));

        Assert.Equal("accuracy", Evaluation.CorrectnessRule(pipeline, right));
        Assert.True(Evaluation.IsCorrect(pipeline, right));
        Assert.False(Evaluation.IsCorrect(pipeline, wrong));
    }

    [Fact]
    public async Task IsCorrect_NoCorrectnessRule_FallsBackToPositiveReward()
    {
        var pipeline = new RewardPipelineBuilder().AddFormatR1Reward().Build();

        var formatted = await ScoreAsync(pipeline, Unjudgeable());
        var unformatted = await ScoreAsync(pipeline, new RewardInput("Say hi.", "hi", null));

        Assert.Empty(Evaluation.CorrectnessRules(pipeline));
        Assert.True(Evaluation.IsCorrect(pipeline, formatted));
        Assert.False(Evaluation.IsCorrect(pipeline, unformatted));
    }

    [Theory]
    [InlineData("pass", new[] { true, true, false, false })]
    [InlineData("fail", new[] { false, false, false, false })]
    public async Task Select_WhenMissing_DecidesWhetherAMissingScorePassesTheFilter(string whenMissing, bool[] expected)
    {
        await using var db = await EngineDatabase.CreateAsync(Ct);
        using var definition = await CreateMixedCampaignAsync(db.DataSource, whenMissing);
        var inputs = new (string Prompt, string Completion, string? Answer, Dictionary<string, JsonElement> Fields)[]
        {
            ("What is 9 + 37?", Think + "\\boxed{46}", "46", []),
            ("Using 3, 5, 2 make 16.", Think + "<answer>(3 + 5) * 2</answer>", null, CountdownFields()),
            ("What is 9 + 37?", Think + "\\boxed{45}", "46", []),
            ("Using 3, 5, 2 make 16.", Think + "<answer>3 + 5 + 2</answer>", null, CountdownFields()),
        };
        var results = await definition.Rewards.ScoreAsync(
            inputs.Select(i => new RewardInput(i.Prompt, i.Completion, i.Answer, Fields: i.Fields)).ToList(), Ct);
        var completions = inputs.Select((i, n) => new StoredCompletion(n + 1, 0, 0, 0, i.Prompt, i.Completion, 8, "stop")).ToList();
        var scores = results.Select((r, n) => new CompletionScores(n + 1, r.Scores, r.Reward, ReflectionFlags.None)).ToList();

        var accepted = new SampleFilter(definition, db.DataSource).Select(completions, scores);

        Assert.Equal(expected, completions.Select(c => accepted.Any(a => a.Completion.Id == c.Id)));
        Assert.Equal([true, true, false, false], results.Select(r => Evaluation.IsCorrect(definition, r)));
        foreach (var sample in accepted)
        {
            var verdicts = JsonSerializer.Deserialize<Dictionary<string, bool>>(sample.VerdictsJson)!;
            Assert.Equal(new Dictionary<string, bool> { ["accuracy==1"] = true, ["countdown==1"] = true }, verdicts);
        }
    }

    private async Task<CampaignDefinition> CreateMixedCampaignAsync(Npgsql.NpgsqlDataSource dataSource, string whenMissing)
    {
        var data = Path.Combine(_dir, "mixed.jsonl");
        await File.WriteAllLinesAsync(data,
        [
            """{"prompt": "What is 9 + 37?", "answer": "46"}""",
            """{"prompt": "Using 3, 5, 2 make 16.", "numbers": [3, 5, 2], "target": 16}""",
        ], Ct);
        var spec = Path.Combine(_dir, "mixed.json");
        await File.WriteAllTextAsync(spec, $$$"""
            {"name": "mixed", "mode": "collect", "policy": {"endpoint": {"url": "http://127.0.0.1:9/v1", "model": "m"}},
             "dataset": {"path": "mixed.jsonl", "eval_fraction": 0},
             "rewards": {"rules": [{"rule": "accuracy"}, {"rule": "countdown"}]},
             "algorithm": {"steps": 1},
             "rejection_sampling": [{"rule": "accuracy", "op": "==", "value": 1, "when_missing": "{{{whenMissing}}}"},
                                    {"rule": "countdown", "op": "==", "value": 1, "when_missing": "{{{whenMissing}}}"}],
             "evaluation": {"every_steps": 0}}
            """, Ct);
        var validation = CampaignSpecValidator.Load(spec);
        Assert.True(validation.Spec is not null, string.Join("; ", validation.Errors));
        var created = await new CampaignCreator(new CampaignStore(dataSource)).CreateAsync(
            validation.Spec!, await File.ReadAllTextAsync(spec, Ct), _dir, new PolicyRegistry(dataSource), Ct);
        Assert.True(created.Succeeded, created.Error);
        return await CampaignDefinition.LoadAsync(new CampaignStore(dataSource), created.Value.Id, Ct);
    }
}
