using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains.Campaigns;

namespace DeepSeekRL.Demo.Tests;

public sealed class DemoDatasetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("demo-dataset-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void WriteJsonl_OneRowPerTask_ReadByTheCampaignRowParser()
    {
        var tasks = DemoTaskGenerator.Generate(8, 100, TaskMix.Default);
        var path = Path.Combine(_dir, "demo.jsonl");

        DemoDataset.WriteJsonl(path, tasks);

        var lines = File.ReadAllLines(path);
        Assert.Equal(tasks.Count, lines.Length);
        Assert.False(File.ReadAllBytes(path).AsSpan().StartsWith<byte>([0xEF, 0xBB, 0xBF]));
        var dataset = new DatasetSpec { Path = path };
        for (var i = 0; i < tasks.Count; i++)
        {
            Assert.Null(CampaignCreator.ParseRow(lines[i], dataset, out var row));
            Assert.Equal(tasks[i].Prompt, row!.Prompt);
            Assert.Equal(tasks[i].Kind == DemoTask.Countdown ? null : tasks[i].Answer, row.Answer); // Countdown rows carry no gold answer
            Assert.Equal(tasks[i].Kind, row.Fields["kind"].GetString());
            if (tasks[i].Kind == DemoTask.Countdown)
            {
                Assert.Equal(tasks[i].Numbers, row.Fields["numbers"].EnumerateArray().Select(e => e.GetInt32()));
                Assert.Equal(tasks[i].Target, row.Fields["target"].GetInt32());
            }
            else
            {
                Assert.Equal(["kind"], row.Fields.Keys);
            }
        }
    }

    [Fact]
    public void ToJsonLine_Countdown_HasTheDocumentedShape()
    {
        var task = new DemoTask(DemoTask.Countdown, "Using the numbers 3, 7, 25, 50, make 100 with + - * / (each number exactly once).", "100")
        {
            Numbers = [3, 7, 25, 50],
            Target = 100,
            Solution = "50 * (7 - 3) - 25 * 4",
        };

        Assert.Equal(
            """{"prompt":"Using the numbers 3, 7, 25, 50, make 100 with + - * / (each number exactly once).","kind":"countdown","numbers":[3,7,25,50],"target":100}""",
            DemoDataset.ToJsonLine(task));
        using var parsed = JsonDocument.Parse(DemoDataset.ToJsonLine(new DemoTask(DemoTask.Arithmetic, "What is 1 + \"2\"?", "3")));
        Assert.Equal("What is 1 + \"2\"?", parsed.RootElement.GetProperty("prompt").GetString());
        Assert.False(parsed.RootElement.TryGetProperty("numbers", out _));
        Assert.Equal("3", parsed.RootElement.GetProperty("answer").GetString()); // only arithmetic rows carry a gold answer
    }
}
