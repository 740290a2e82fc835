
namespace DeepSeekRL.Demo.Tests;

public sealed class DemoCorpusTests
{
    [Fact]
    public void Build_SameSeed_SameText_OtherSeed_OtherText()
    {
        var a = DemoCorpus.Build(3, 200, TaskMix.Default);

        Assert.Equal(a, DemoCorpus.Build(3, 200, TaskMix.Default));
        Assert.NotEqual(a, DemoCorpus.Build(4, 200, TaskMix.Default));
        Assert.Equal(200, a.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void Document_HasQuestionStepsAndAnswerWithoutChatMarkup()
    {
        var tasks = DemoTaskGenerator.Generate(3, 200, TaskMix.Default);
        var documents = DemoCorpus.Documents(3, 200, TaskMix.Default);

        for (var i = 0; i < tasks.Count; i++)
        {
            var d = documents[i];
            Assert.StartsWith("Question: " + tasks[i].Prompt + "\n", d, StringComparison.Ordinal);
            Assert.All(DemoTraces.WorkedSteps(tasks[i]), step => Assert.Contains(step + "\n", d, StringComparison.Ordinal));
            Assert.EndsWith($"so the answer is {(tasks[i].Kind == DemoTask.Countdown ? tasks[i].Solution : tasks[i].Answer)}.", d, StringComparison.Ordinal);
            Assert.DoesNotContain("<think>", d, StringComparison.Ordinal);
            Assert.DoesNotContain("\\boxed", d, StringComparison.Ordinal);
        }

        Assert.Contains(documents, d => d.Contains(" plus ", StringComparison.Ordinal));
        Assert.Contains(documents, d => d.Contains(" minus ", StringComparison.Ordinal));
        Assert.Contains(documents, d => d.Contains(" times ", StringComparison.Ordinal));
    }
}
