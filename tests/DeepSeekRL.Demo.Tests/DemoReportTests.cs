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
    }

    [Fact]
    public void ToJson_AnUnmeasuredNumberIsNull()
    {
        using var json = JsonDocument.Parse(Report(double.NaN).ToJson());
        Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("accuracy_sft").ValueKind);
    }

    [Fact]
    public void Svg_IsXmlWithThreePanels_AndAPointPerValue()
    {
        DemoRlStep[] steps = [new(1, 0.2, 20), new(2, 0.4, 25), new(3, double.NaN, 27), new(4, 0.6, 30)];
        var svg = XDocument.Parse(DemoChart.Svg(steps, Report().RlEvaluations));
        XNamespace ns = "http://www.w3.org/2000/svg";
        var panels = svg.Root!.Elements(ns + "g").ToArray();
        Assert.Equal(3, panels.Length);

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
        Assert.Equal(3, XDocument.Parse(svg).Descendants().Count(e => e.Value == "no data"));
    }
}
