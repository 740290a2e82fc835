using System.Text.Json;
using System.Xml.Linq;

namespace DeepSeekRL.Demo.Tests;

public sealed class DemoReportTests
{
    private static DemoReport Report(double accuracySft = 0.5) => new()
    {
        AccuracyBase = 0.01,
        AccuracySft = accuracySft,
        AccuracyRlFinal = 0.8,
        AccuracyDistilled = 0.7,
        ReasoningFractionSft = 0.6,
        ReasoningFractionRl = 0.95,
        AccuracyWhenReasoningSft = 0.7,
        AccuracyWhenReasoningRl = 0.82,
        RlEvaluations = [new(0, 0.5, 0.6, 20), new(10, 0.7, 0.8, 30.5)],
        SamplesGenerated = 512,
        SamplesAccepted = 300,
        SecondsTotal = 123.4,
        SecondsPerStage = [new("pretrain", 10), new("sft", 20), new("rl", 60)],
        PeakRssMbThroughStage = [new("pretrain", 700.5), new("sft", 910.25), new("rl", double.NaN)],
        Reflection = new DemoReflectionFigures
        {
            VerifyFractionSft = 0.3, VerifyFractionRl = 0.9, RepairFractionSft = 0.1, RepairFractionRl = 0.35,
            AccuracyWhenVerifyingSft = 0.8, AccuracyWhenVerifyingRl = 0.85, AccuracyWithoutVerifyingSft = 0.1, AccuracyWithoutVerifyingRl = 0.2,
            AccuracyFirstAttemptSft = 0.35, AccuracyFirstAttemptRl = 0.45,
        },
    };

    [Fact]
    public void ToJson_HasEveryKeyTheIssueLists_WithTheValues()
    {
        using var json = JsonDocument.Parse(Report().ToJson());
        var root = json.RootElement;
        foreach (var key in new[]
        {
            "accuracy_base", "accuracy_sft", "accuracy_rl_final", "accuracy_distilled", "reasoning_fraction_sft", "reasoning_fraction_rl",
            "accuracy_when_reasoning_sft", "accuracy_when_reasoning_rl", "rl_evals", "samples_generated", "samples_accepted", "seconds_total", "seconds_per_stage",
        })
        {
            Assert.True(root.TryGetProperty(key, out _), key);
        }

        Assert.Equal(0.5, root.GetProperty("accuracy_sft").GetDouble());
        Assert.Equal(300, root.GetProperty("samples_accepted").GetInt64());
        var evals = root.GetProperty("rl_evals").EnumerateArray().ToArray();
        Assert.Equal([0, 10], evals.Select(e => e.GetProperty("step").GetInt32()));
        Assert.Equal(30.5, evals[1].GetProperty("response_length_mean").GetDouble());
        Assert.Equal(["pretrain", "sft", "rl"], root.GetProperty("seconds_per_stage").EnumerateObject().Select(p => p.Name));

        // The run's peak is the largest stage peak; a stage whose peak is unknown is null, not 0.
        Assert.Equal(910.25, root.GetProperty("peak_rss_mb").GetDouble());
        Assert.Equal(700.5, root.GetProperty("peak_rss_mb_through_stage").GetProperty("pretrain").GetDouble());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("peak_rss_mb_through_stage").GetProperty("rl").ValueKind);

        // Self-verification on the guess-and-check family, under the issue's names.
        Assert.Equal(0.3, root.GetProperty("verify_fraction_sft").GetDouble());
        Assert.Equal(0.9, root.GetProperty("verify_fraction_rl").GetDouble());
        Assert.Equal(0.1, root.GetProperty("repair_fraction_sft").GetDouble());
        Assert.Equal(0.35, root.GetProperty("repair_fraction_rl").GetDouble());
        Assert.Equal(0.85, root.GetProperty("accuracy_when_verifying_rl").GetDouble());
        Assert.Equal(0.2, root.GetProperty("accuracy_without_verifying_rl").GetDouble());
        Assert.Equal(0.45, root.GetProperty("accuracy_first_attempt_rl").GetDouble());
        Assert.Equal(0.35, root.GetProperty("accuracy_first_attempt_sft").GetDouble());
    }

    [Fact]
    public void GainSplit_FirstAttemptsAndRepairsAddUpToTheGain()
    {
        // SFT 0.5 = 0.35 first attempts + 0.15 repaired; RL 0.8 = 0.45 + 0.35: +30 = +10 first attempts + +20 repairs.
        var split = Report().GainSplit;

        Assert.Equal(0.3, split.Gain, 12);
        Assert.Equal(0.1, split.FirstAttemptsBetter, 12);
        Assert.Equal(0.2, split.VerifiesAndRepairs, 12);

        // Reasoning 0.6 -> 0.95, accuracy 0.7 when reasoning and (0.5 - 0.42) / 0.4 = 0.2 without: 0.35 * 0.5.
        Assert.Equal(0.175, split.ReasonsMoreOften, 12);
        using var json = JsonDocument.Parse(Report().ToJson());
        Assert.Equal(0.1, json.RootElement.GetProperty("gain_split").GetProperty("first_attempts_better").GetDouble(), 12);

        // Every completion reasoning before and after: nothing to attribute to reasoning more often.
        Assert.Equal(0, DemoGainSplit.Of(0.5, 0.8, new DemoReflectionFigures(), 1, 1, 0.5).ReasonsMoreOften);
        Assert.True(double.IsNaN(DemoGainSplit.Of(0.5, 0.8, new DemoReflectionFigures(), 1, 1, 0.5).FirstAttemptsBetter));
    }

    [Fact]
    public void ToJson_AnUnmeasuredNumberIsNull()
    {
        using var json = JsonDocument.Parse(Report(double.NaN).ToJson());
        Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("accuracy_sft").ValueKind);
    }

    [Fact]
    public void Svg_IsXmlWithFourPanels_AndAPointPerValue()
    {
        DemoRlStep[] steps = [new(1, 0.2, 20, 0.3, 0.1), new(2, 0.4, 25, 0.5), new(3, double.NaN, 27, 0.7, 0.2), new(4, 0.6, 30)];
        var svg = XDocument.Parse(DemoChart.Svg(steps, Report().RlEvaluations));
        XNamespace ns = "http://www.w3.org/2000/svg";
        var panels = svg.Root!.Elements(ns + "g").ToArray();
        Assert.Equal(4, panels.Length);

        // Self-verification: the checking share (3 points) and the repair share (steps 1 and 3, split by the gap) share axes.
        Assert.Equal(5, panels[3].Elements(ns + "circle").Count());
        Assert.Equal(3, panels[3].Elements(ns + "polyline").Count());

        // Reward: the NaN at step 3 splits the line into two runs (3 + 1 points), lengths one run of 4, accuracy 2.
        Assert.Equal(2, panels[0].Elements(ns + "polyline").Count());
        Assert.Equal(3, panels[0].Elements(ns + "circle").Count());
        Assert.Equal(2, panels[1].Elements(ns + "circle").Count());
        Assert.Equal(4, panels[2].Elements(ns + "circle").Count());
        var first = panels[2].Elements(ns + "circle").First();
        var last = panels[2].Elements(ns + "circle").Last();
        Assert.True(double.Parse(last.Attribute("cy")!.Value, System.Globalization.CultureInfo.InvariantCulture) < double.Parse(first.Attribute("cy")!.Value, System.Globalization.CultureInfo.InvariantCulture), "a longer response is drawn higher");
    }

    [Fact]
    public void Svg_WithNoData_SaysSo()
    {
        var svg = DemoChart.Svg([], []);
        Assert.Equal(4, XDocument.Parse(svg).Descendants().Count(e => e.Value == "no data"));
    }
}
