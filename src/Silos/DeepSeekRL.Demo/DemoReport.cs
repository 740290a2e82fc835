using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSeekRL.Demo;

/// <summary>One held-out evaluation of the RL policy.</summary>
/// <param name="Step">The RL step after which it was taken (0 = the SFT model).</param>
/// <param name="Accuracy">Held-out accuracy, 0..1.</param>
/// <param name="RewardMean">Mean total reward on the held-out set.</param>
/// <param name="ResponseLengthMean">Mean completion length in tokens.</param>
public sealed record DemoRlEvaluation(int Step, double Accuracy, double RewardMean, double ResponseLengthMean);

/// <summary>One RL step's training numbers, for the picture.</summary>
/// <param name="Step">The step.</param>
/// <param name="RewardMean">Mean reward of the step's samples.</param>
/// <param name="ResponseLengthMean">Mean completion length in tokens.</param>
/// <param name="VerifyFraction">Share of the step's samples that check an attempt (NaN when unknown).</param>
/// <param name="RepairFraction">Share of the step's samples that repair a failed check and end right (NaN when unknown).</param>
public sealed record DemoRlStep(int Step, double RewardMean, double ResponseLengthMean, double VerifyFraction = double.NaN, double RepairFraction = double.NaN);

/// <summary>
/// The held-out figures of the Countdown puzzles (their own held-out set), for the models the arithmetic figures cover.
/// </summary>
public sealed record DemoCountdownFigures
{
    /// <summary>Accuracy of the pretrained base.</summary>
    public double AccuracyBase { get; init; } = double.NaN;

    /// <summary>Accuracy after the cold start.</summary>
    public double AccuracySft { get; init; } = double.NaN;

    /// <summary>Accuracy of the final RL policy.</summary>
    public double AccuracyRlFinal { get; init; } = double.NaN;

    /// <summary>Accuracy of the distilled model.</summary>
    public double AccuracyDistilled { get; init; } = double.NaN;

    /// <summary>Fraction of the SFT model's completions that write reasoning.</summary>
    public double ReasoningFractionSft { get; init; } = double.NaN;

    /// <summary>The same after RL.</summary>
    public double ReasoningFractionRl { get; init; } = double.NaN;

    /// <summary>Accuracy among the SFT model's completions that reason.</summary>
    public double AccuracyWhenReasoningSft { get; init; } = double.NaN;

    /// <summary>The same after RL.</summary>
    public double AccuracyWhenReasoningRl { get; init; } = double.NaN;

    /// <summary>Mean completion length (tokens) of the SFT model.</summary>
    public double ResponseLengthSft { get; init; } = double.NaN;

    /// <summary>The same after RL.</summary>
    public double ResponseLengthRl { get; init; } = double.NaN;

    /// <summary>Self-verification on the held-out puzzles (guess-and-check traces).</summary>
    public DemoReflectionFigures Reflection { get; init; } = new();

    internal JsonObject ToJsonObject()
    {
        var node = Figures();
        Reflection.WriteTo(node);
        node["gain_split"] = DemoGainSplit.Of(AccuracySft, AccuracyRlFinal, Reflection, ReasoningFractionSft, ReasoningFractionRl, AccuracyWhenReasoningSft).ToJsonObject();
        return node;
    }

    private JsonObject Figures() => new()
    {
        ["accuracy_base"] = DemoReport.Finite(AccuracyBase),
        ["accuracy_sft"] = DemoReport.Finite(AccuracySft),
        ["accuracy_rl_final"] = DemoReport.Finite(AccuracyRlFinal),
        ["accuracy_distilled"] = DemoReport.Finite(AccuracyDistilled),
        ["reasoning_fraction_sft"] = DemoReport.Finite(ReasoningFractionSft),
        ["reasoning_fraction_rl"] = DemoReport.Finite(ReasoningFractionRl),
        ["accuracy_when_reasoning_sft"] = DemoReport.Finite(AccuracyWhenReasoningSft),
        ["accuracy_when_reasoning_rl"] = DemoReport.Finite(AccuracyWhenReasoningRl),
        ["response_length_mean_sft"] = DemoReport.Finite(ResponseLengthSft),
        ["response_length_mean_rl"] = DemoReport.Finite(ResponseLengthRl),
    };
}

/// <summary>Self-verification on a held-out guess-and-check set, after the cold start and after RL.</summary>
public sealed record DemoReflectionFigures
{
    /// <summary>Share of the SFT model's completions that check an attempt.</summary>
    public double VerifyFractionSft { get; init; } = double.NaN;

    /// <summary>The same after RL.</summary>
    public double VerifyFractionRl { get; init; } = double.NaN;

    /// <summary>Share of the SFT model's completions that repair a failed check and end right.</summary>
    public double RepairFractionSft { get; init; } = double.NaN;

    /// <summary>The same after RL.</summary>
    public double RepairFractionRl { get; init; } = double.NaN;

    /// <summary>After the cold start: accuracy among completions that check.</summary>
    public double AccuracyWhenVerifyingSft { get; init; } = double.NaN;

    /// <summary>After RL: accuracy among completions that check.</summary>
    public double AccuracyWhenVerifyingRl { get; init; } = double.NaN;

    /// <summary>After the cold start: accuracy among completions that do not check.</summary>
    public double AccuracyWithoutVerifyingSft { get; init; } = double.NaN;

    /// <summary>After RL: accuracy among completions that do not check.</summary>
    public double AccuracyWithoutVerifyingRl { get; init; } = double.NaN;

    /// <summary>After the cold start: accuracy of the first attempt (one its own check rejected counts as wrong).</summary>
    public double AccuracyFirstAttemptSft { get; init; } = double.NaN;

    /// <summary>After RL: accuracy of the first attempt (a first attempt its own check rejected counts as wrong).</summary>
    public double AccuracyFirstAttemptRl { get; init; } = double.NaN;

    internal void WriteTo(JsonObject node)
    {
        node["verify_fraction_sft"] = DemoReport.Finite(VerifyFractionSft);
        node["verify_fraction_rl"] = DemoReport.Finite(VerifyFractionRl);
        node["repair_fraction_sft"] = DemoReport.Finite(RepairFractionSft);
        node["repair_fraction_rl"] = DemoReport.Finite(RepairFractionRl);
        node["accuracy_when_verifying_sft"] = DemoReport.Finite(AccuracyWhenVerifyingSft);
        node["accuracy_when_verifying_rl"] = DemoReport.Finite(AccuracyWhenVerifyingRl);
        node["accuracy_without_verifying_sft"] = DemoReport.Finite(AccuracyWithoutVerifyingSft);
        node["accuracy_without_verifying_rl"] = DemoReport.Finite(AccuracyWithoutVerifyingRl);
        node["accuracy_first_attempt_sft"] = DemoReport.Finite(AccuracyFirstAttemptSft);
        node["accuracy_first_attempt_rl"] = DemoReport.Finite(AccuracyFirstAttemptRl);
    }
}

/// <summary>
/// What RL's held-out gain on a guess-and-check family is made of, an exact split: the final accuracy is the accuracy
/// of first attempts plus the share of completions whose first attempt was wrong (or rejected by its own check) and
/// whose final answer is right, which only a check and a repair can give.
/// </summary>
/// <param name="Gain">Accuracy after RL minus after the cold start.</param>
/// <param name="FirstAttemptsBetter">The change in first-attempt accuracy.</param>
/// <param name="VerifiesAndRepairs">The change in the accuracy added after a wrong first attempt (caught and repaired).</param>
/// <param name="ReasonsMoreOften">The change in the share of completions that write reasoning, times the accuracy gap
/// between completions that reason and those that do not after the cold start (an estimate of what writing reasoning
/// more often alone would give; 0 when every completion reasons, as in the guess-and-check families).</param>
public sealed record DemoGainSplit(double Gain, double FirstAttemptsBetter, double VerifiesAndRepairs, double ReasonsMoreOften)
{
    /// <summary>The split of a family's figures (NaN parts where a figure is missing).</summary>
    /// <param name="accuracySft">Accuracy after the cold start.</param>
    /// <param name="accuracyRl">Accuracy after RL.</param>
    /// <param name="reflection">The family's reflection figures.</param>
    /// <param name="reasoningSft">Reasoning fraction after the cold start.</param>
    /// <param name="reasoningRl">Reasoning fraction after RL.</param>
    /// <param name="accuracyWhenReasoningSft">Accuracy among reasoning completions after the cold start.</param>
    /// <returns>The split.</returns>
    public static DemoGainSplit Of(double accuracySft, double accuracyRl, DemoReflectionFigures reflection, double reasoningSft, double reasoningRl, double accuracyWhenReasoningSft)
    {
        ArgumentNullException.ThrowIfNull(reflection);
        var first = reflection.AccuracyFirstAttemptRl - reflection.AccuracyFirstAttemptSft;
        var repaired = (accuracyRl - reflection.AccuracyFirstAttemptRl) - (accuracySft - reflection.AccuracyFirstAttemptSft);

        // Accuracy without reasoning after the cold start, from the overall accuracy and the reasoning completions'.
        var withoutSft = reasoningSft < 1 ? (accuracySft - (reasoningSft * accuracyWhenReasoningSft)) / (1 - reasoningSft) : double.NaN;
        var delta = reasoningRl - reasoningSft;
        var reasons = delta == 0 ? 0 : delta * (accuracyWhenReasoningSft - withoutSft);
        return new DemoGainSplit(accuracyRl - accuracySft, first, repaired, reasons);
    }

    internal JsonObject ToJsonObject() => new()
    {
        ["gain"] = DemoReport.Finite(Gain),
        ["first_attempts_better"] = DemoReport.Finite(FirstAttemptsBetter),
        ["verifies_and_repairs"] = DemoReport.Finite(VerifiesAndRepairs),
        ["reasons_more_often"] = DemoReport.Finite(ReasonsMoreOften),
    };
}

/// <summary>
/// What <c>demo --report FILE</c> writes: held-out accuracy of every stage on the same held-out set, the reasoning
/// fraction and the accuracy among completions that reason (SFT and after RL), every RL evaluation, sample counts and
/// time per stage. Key names are the issue's and are stable.
/// </summary>
public sealed record DemoReport
{
    /// <summary>Held-out accuracy of the pretrained base model.</summary>
    public required double AccuracyBase { get; init; }

    /// <summary>Held-out accuracy after the cold-start SFT.</summary>
    public required double AccuracySft { get; init; }

    /// <summary>Held-out accuracy after the last RL step.</summary>
    public required double AccuracyRlFinal { get; init; }

    /// <summary>Held-out accuracy of the fresh base model fine-tuned on the rejection-sampled data.</summary>
    public required double AccuracyDistilled { get; init; }

    /// <summary>Fraction of the SFT model's held-out completions that write out their reasoning.</summary>
    public required double ReasoningFractionSft { get; init; }

    /// <summary>The same after RL.</summary>
    public required double ReasoningFractionRl { get; init; }

    /// <summary>Accuracy among the SFT model's completions that reason.</summary>
    public required double AccuracyWhenReasoningSft { get; init; }

    /// <summary>The same after RL.</summary>
    public required double AccuracyWhenReasoningRl { get; init; }

    /// <summary>Every RL evaluation in step order.</summary>
    public required IReadOnlyList<DemoRlEvaluation> RlEvaluations { get; init; }

    /// <summary>Completions sampled for rejection sampling.</summary>
    public required long SamplesGenerated { get; init; }

    /// <summary>Of those, accepted into the SFT set.</summary>
    public required long SamplesAccepted { get; init; }

    /// <summary>Wall-clock seconds of the whole run.</summary>
    public required double SecondsTotal { get; init; }

    /// <summary>Wall-clock seconds per stage, in stage order.</summary>
    public required IReadOnlyList<KeyValuePair<string, double>> SecondsPerStage { get; init; }

    /// <summary>
    /// Peak resident memory (VmHWM, MiB) of the demo process by the end of each stage, in stage order, so the stage
    /// where it rises is the one that set it (NaN when unknown; a resumed run keeps the larger of its processes' peaks).
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, double>> PeakRssMbThroughStage { get; init; } = [];

    /// <summary>The largest of <see cref="PeakRssMbThroughStage"/>: the run's peak resident memory in MiB (NaN when unknown).</summary>
    public double PeakRssMb => PeakRssMbThroughStage.Select(s => s.Value).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();

    /// <summary>Mean held-out completion length (tokens) of the SFT model; NaN when unknown.</summary>
    public double ResponseLengthSft { get; init; } = double.NaN;

    /// <summary>The same after RL.</summary>
    public double ResponseLengthRl { get; init; } = double.NaN;

    /// <summary>The Countdown figures (key <c>countdown</c>), or null when the run had no Countdown puzzles.</summary>
    public DemoCountdownFigures? Countdown { get; init; }

    /// <summary>
    /// Self-verification on the held-out additions (guess-and-check traces, the family where checking pays): keys
    /// <c>verify_fraction_sft</c>, <c>verify_fraction_rl</c>, <c>repair_fraction_sft</c>, <c>repair_fraction_rl</c>,
    /// <c>accuracy_when_verifying_rl</c>, <c>accuracy_without_verifying_rl</c>, <c>accuracy_first_attempt_rl</c> and
    /// their <c>_sft</c> counterparts (NaN, written null, where nothing could be measured).
    /// </summary>
    public DemoReflectionFigures Reflection { get; init; } = new();

    /// <summary>What the additions' RL gain is made of (key <c>gain_split</c>).</summary>
    public DemoGainSplit GainSplit => DemoGainSplit.Of(AccuracySft, AccuracyRlFinal, Reflection, ReasoningFractionSft, ReasoningFractionRl, AccuracyWhenReasoningSft);

    /// <summary>The preset that ran (<c>quick</c> or <c>full</c>), or null.</summary>
    public string? Preset { get; init; }

    /// <summary>The run's seed, or null.</summary>
    public int? Seed { get; init; }

    /// <summary>The report as the JSON object <c>--report</c> writes.</summary>
    /// <returns>Indented JSON.</returns>
    public string ToJson()
    {
        var evals = new JsonArray();
        foreach (var e in RlEvaluations)
        {
            evals.Add(new JsonObject
            {
                ["step"] = e.Step,
                ["accuracy"] = Finite(e.Accuracy),
                ["reward_mean"] = Finite(e.RewardMean),
                ["response_length_mean"] = Finite(e.ResponseLengthMean),
            });
        }

        var stages = new JsonObject();
        foreach (var (name, seconds) in SecondsPerStage)
        {
            stages[name] = Finite(seconds);
        }

        var peaks = new JsonObject();
        foreach (var (name, mb) in PeakRssMbThroughStage)
        {
            peaks[name] = Finite(mb);
        }

        var root = new JsonObject
        {
            ["accuracy_base"] = Finite(AccuracyBase),
            ["accuracy_sft"] = Finite(AccuracySft),
            ["accuracy_rl_final"] = Finite(AccuracyRlFinal),
            ["accuracy_distilled"] = Finite(AccuracyDistilled),
            ["reasoning_fraction_sft"] = Finite(ReasoningFractionSft),
            ["reasoning_fraction_rl"] = Finite(ReasoningFractionRl),
            ["accuracy_when_reasoning_sft"] = Finite(AccuracyWhenReasoningSft),
            ["accuracy_when_reasoning_rl"] = Finite(AccuracyWhenReasoningRl),
            ["rl_evals"] = evals,
            ["samples_generated"] = SamplesGenerated,
            ["samples_accepted"] = SamplesAccepted,
            ["seconds_total"] = Finite(SecondsTotal),
            ["seconds_per_stage"] = stages,
            ["peak_rss_mb"] = Finite(PeakRssMb),
            ["peak_rss_mb_through_stage"] = peaks,
            ["response_length_mean_sft"] = Finite(ResponseLengthSft),
            ["response_length_mean_rl"] = Finite(ResponseLengthRl),
            ["countdown"] = Countdown?.ToJsonObject(),
            ["preset"] = Preset,
            ["seed"] = Seed,
        };
        Reflection.WriteTo(root);
        root["gain_split"] = GainSplit.ToJsonObject();
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    // JSON has no NaN: a number that could not be measured is null.
    internal static JsonNode? Finite(double value) => double.IsFinite(value) ? JsonValue.Create(value) : null;
}

/// <summary>
/// The demo's picture: reward, held-out accuracy, response length and self-verification (the shares of samples that
/// check and that repair) per RL step, as a standalone SVG.
/// </summary>
public static class DemoChart
{
    private const int PanelWidth = 320;
    private const int PanelHeight = 200;
    private const int Margin = 40;

    /// <summary>Four panels side by side; missing or non-finite values leave gaps.</summary>
    /// <param name="steps">Training numbers per RL step.</param>
    /// <param name="evaluations">Held-out evaluations.</param>
    /// <returns>The SVG document.</returns>
    public static string Svg(IReadOnlyList<DemoRlStep> steps, IReadOnlyList<DemoRlEvaluation> evaluations)
    {
        ArgumentNullException.ThrowIfNull(steps);
        ArgumentNullException.ThrowIfNull(evaluations);
        var width = (4 * (PanelWidth + Margin)) + Margin;
        var height = PanelHeight + (2 * Margin) + 20;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">""").Append('\n');
        svg.Append(CultureInfo.InvariantCulture, $"""<rect width="{width}" height="{height}" fill="white"/>""").Append('\n');
        Panel(svg, 0, "reward (mean per step)", steps.Select(s => (s.Step, s.RewardMean)).ToList(), "#2f6fdf");
        Panel(svg, 1, "held-out accuracy", evaluations.Select(e => (e.Step, e.Accuracy)).ToList(), "#2e8b57");
        Panel(svg, 2, "response length (tokens, mean)", steps.Select(s => (s.Step, s.ResponseLengthMean)).ToList(), "#e0782f");
        Panel(svg, 3, "samples that check (purple) / repair (red)", steps.Select(s => (s.Step, s.VerifyFraction)).ToList(), "#7b3fbf", steps.Select(s => (s.Step, s.RepairFraction)).ToList(), "#c0392b");
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static void Panel(StringBuilder svg, int index, string title, List<(int Step, double Value)> points, string colour) =>
        Panel(svg, index, title, [(points, colour)]);

    private static void Panel(StringBuilder svg, int index, string title, List<(int Step, double Value)> points, string colour, List<(int Step, double Value)> second, string secondColour) =>
        Panel(svg, index, title, [(points, colour), (second, secondColour)]);

    // One panel; its series share the axes.
    private static void Panel(StringBuilder svg, int index, string title, (List<(int Step, double Value)> Points, string Colour)[] series)
    {
        var x0 = Margin + (index * (PanelWidth + Margin));
        var y0 = Margin;
        svg.Append(CultureInfo.InvariantCulture, $"""<g data-panel="{index}"><text x="{x0}" y="{y0 - 12}" font-weight="bold">{title}</text>""");
        svg.Append(CultureInfo.InvariantCulture, $"""<rect x="{x0}" y="{y0}" width="{PanelWidth}" height="{PanelHeight}" fill="none" stroke="#999"/>""");
        var finite = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.Value)).ToList();
        if (finite.Count == 0)
        {
            svg.Append(CultureInfo.InvariantCulture, $"""<text x="{x0 + 10}" y="{y0 + 20}" fill="#777">no data</text></g>""").Append('\n');
            return;
        }

        double minX = finite.Min(p => p.Step), maxX = finite.Max(p => p.Step);
        double minY = Math.Min(0, finite.Min(p => p.Value)), maxY = finite.Max(p => p.Value);
        if (maxX == minX)
        {
            maxX = minX + 1;
        }

        if (maxY <= minY)
        {
            maxY = minY + 1;
        }

        string X(double step) => (x0 + ((step - minX) / (maxX - minX) * PanelWidth)).ToString("0.#", CultureInfo.InvariantCulture);
        string Y(double value) => (y0 + PanelHeight - ((value - minY) / (maxY - minY) * PanelHeight)).ToString("0.#", CultureInfo.InvariantCulture);

        foreach (var (points, colour) in series)
        {
            // One polyline per run of finite values, so a missing value is a gap, not a jump.
            var run = new List<string>();
            foreach (var (step, value) in points.Append((0, double.NaN)))
            {
                if (double.IsFinite(value))
                {
                    run.Add(X(step) + "," + Y(value));
                    continue;
                }

                if (run.Count > 0)
                {
                    svg.Append(CultureInfo.InvariantCulture, $"""<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{string.Join(' ', run)}"/>""");
                    foreach (var point in run)
                    {
                        var xy = point.Split(',');
                        svg.Append(CultureInfo.InvariantCulture, $"""<circle cx="{xy[0]}" cy="{xy[1]}" r="2" fill="{colour}"/>""");
                    }

                    run.Clear();
                }
            }
        }

        svg.Append(CultureInfo.InvariantCulture, $"""<text x="{x0}" y="{y0 + PanelHeight + 14}">step {minX:0}</text><text x="{x0 + PanelWidth}" y="{y0 + PanelHeight + 14}" text-anchor="end">step {maxX:0}</text>""");
        svg.Append(CultureInfo.InvariantCulture, $"""<text x="{x0 - 4}" y="{y0 + 10}" text-anchor="end">{maxY:0.###}</text><text x="{x0 - 4}" y="{y0 + PanelHeight}" text-anchor="end">{minY:0.###}</text></g>""").Append('\n');
    }
}
