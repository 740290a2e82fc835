namespace DeepSeekRL.Tokenizers.Tests;

public sealed class BpeModelTests
{
    [Fact]
    public void Merge_HeapAndScan_AgreeOnLongWords()
    {
        // Words of 48+ bytes take the heap path, their prefixes the scan path; both must agree with a naive
        // reference merge.
        var model = TestData.DeepSeekV3.Model;
        var random = new Random(1234);
        string[] parts = ["the", "ing", "tion", "a", "e", "中文", "ü", "zz", "xy"];
        for (var trial = 0; trial < 200; trial++)
        {
            var word = string.Concat(Enumerable.Range(0, random.Next(10, 40)).Select(_ => parts[random.Next(parts.Length)]));
            var bytes = System.Text.Encoding.UTF8.GetBytes(word);
            var fast = new int[bytes.Length];
            var n = model.Merge(bytes, fast);
            Assert.Equal(Naive(model, bytes), fast.Take(n).ToArray());

            // A prefix of under 48 bytes takes the scan path (cut anywhere, even inside a character).
            var prefix = bytes.AsSpan(0, Math.Min(bytes.Length, random.Next(2, 48))).ToArray();
            n = model.Merge(prefix, fast);
            Assert.Equal(Naive(model, prefix), fast.Take(n).ToArray());
        }
    }

    [Fact]
    public void EncodePiece_Cached_ReturnsSameIds()
    {
        var model = TestData.DeepSeekV3.Model;
        var first = new List<int>();
        var second = new List<int>();
        model.EncodePiece("internationalization", false, first);
        model.EncodePiece("internationalization", false, second);
        Assert.Equal(first, second);
    }

    // The textbook algorithm: merge the lowest-ranked pair, leftmost first, until none is left.
    private static int[] Naive(BpeModel model, byte[] bytes)
    {
        var rank = new Dictionary<(int, int), int>();
        for (var r = model.Merges.Count - 1; r >= 0; r--)
        {
            rank[(model.Merges[r].Left, model.Merges[r].Right)] = r;
        }

        var rankLast = new Dictionary<(int, int), int>();
        for (var r = 0; r < model.Merges.Count; r++)
        {
            rankLast[(model.Merges[r].Left, model.Merges[r].Right)] = r;
        }

        var symbols = bytes.Select(b => model.TokenToId(ByteLevel.ByteToChar(b).ToString())).ToList();
        while (true)
        {
            var best = -1;
            var bestRank = int.MaxValue;
            for (var i = 0; i + 1 < symbols.Count; i++)
            {
                if (rankLast.TryGetValue((symbols[i], symbols[i + 1]), out var r) && r < bestRank)
                {
                    best = i;
                    bestRank = r;
                }
            }

            if (best < 0)
            {
                return [.. symbols];
            }

            symbols[best] = model.Merges[bestRank].Merged;
            symbols.RemoveAt(best + 1);
        }
    }
}
