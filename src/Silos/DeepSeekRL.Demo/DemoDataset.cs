using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace DeepSeekRL.Demo;

/// <summary>
/// Writes demo tasks as a campaign dataset (JSONL): <c>prompt</c> and <c>answer</c> (the spec's default
/// <c>prompt_field</c> / <c>answer_field</c>), <c>kind</c>, and for Countdown <c>numbers</c> and <c>target</c>, which
/// reach the reward rules as the row's extra fields (what the <c>countdown</c> rule reads).
/// </summary>
public static class DemoDataset
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes one line per task (UTF-8, no BOM, <c>\n</c> line ends), replacing the file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="tasks">The tasks.</param>
    public static void WriteJsonl(string path, IEnumerable<DemoTask> tasks)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tasks);
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        foreach (var task in tasks)
        {
            writer.Write(ToJsonLine(task));
            writer.Write('\n');
        }
    }

    /// <summary>One task as a JSON object on one line.</summary>
    /// <param name="task">The task.</param>
    /// <returns><c>{"prompt": ..., "answer": ..., "kind": ..., "numbers": [...], "target": N}</c> (the last two for Countdown only).</returns>
    public static string ToJsonLine(DemoTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, WriterOptions))
        {
            json.WriteStartObject();
            json.WriteString("prompt", task.Prompt);
            // A Countdown row has no gold answer (any equation that makes the target is right): the accuracy rule
            // leaves it to the countdown rule, which reads numbers and target.
            if (task.Kind != DemoTask.Countdown)
            {
                json.WriteString("answer", task.Answer);
            }

            json.WriteString("kind", task.Kind);
            if (task.Numbers is { } numbers && task.Target is { } target)
            {
                json.WriteStartArray("numbers");
                foreach (var n in numbers)
                {
                    json.WriteNumberValue(n);
                }

                json.WriteEndArray();
                json.WriteNumber("target", target);
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
