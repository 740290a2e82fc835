using System.Globalization;
using System.Text;

namespace DeepSeekRL.Demo;

/// <summary>
/// Plain text for training the demo tokenizer and pretraining the tiny model: each problem, its worked steps and its
/// answer in words, without a chat template or think tags.
/// </summary>
/// <remarks>Deterministic for a seed; thread-safe.</remarks>
public static class DemoCorpus
{
    /// <summary>One document per generated task.</summary>
    /// <param name="seed">The seed of <see cref="DemoTaskGenerator.Generate"/>.</param>
    /// <param name="count">How many documents.</param>
    /// <param name="mix">The task mix.</param>
    /// <returns>The documents.</returns>
    public static IReadOnlyList<string> Documents(int seed, int count, TaskMix mix) =>
        DemoTaskGenerator.Generate(seed, count, mix).Select(Document).ToList();

    /// <summary>The documents joined by blank lines.</summary>
    /// <param name="seed">The seed.</param>
    /// <param name="count">How many documents.</param>
    /// <param name="mix">The task mix.</param>
    /// <returns>The text, ending with a line break.</returns>
    public static string Build(int seed, int count, TaskMix mix)
    {
        var sb = new StringBuilder();
        foreach (var document in Documents(seed, count, mix))
        {
            sb.Append(document).Append("\n\n");
        }

        return sb.ToString();
    }

    /// <summary>The document of one task: question, worked steps, and the answer in a sentence.</summary>
    /// <param name="task">The task.</param>
    /// <returns>The text, without a final line break.</returns>
    public static string Document(DemoTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var sb = new StringBuilder();
        sb.Append("Question: ").Append(task.Prompt).Append('\n');
        // A small Countdown puzzle lists every attempt with its value (times-table and two-digit facts to learn from),
        // then the answer; the other tasks their worked steps.
        var steps = task.Small && task.Numbers is { } numbers
            ? CountdownTrial.All(numbers).Select(t => t.Line).ToList()
            : DemoTraces.WorkedSteps(task);
        foreach (var step in steps)
        {
            sb.Append(step).Append('\n');
        }

        sb.Append("Answer: ");
        if (task.Kind == DemoTask.Countdown)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{task.Solution} makes {task.Target}, so the answer is {task.Solution}.");
        }
        else
        {
            var verb = task.Operator switch
            {
                '+' => "plus",
                '-' => "minus",
                _ => "times",
            };
            sb.Append(CultureInfo.InvariantCulture, $"{task.Left} {verb} {task.Right} is {task.Answer}, so the answer is {task.Answer}.");
        }

        return sb.ToString();
    }
}
