using System.Text.Json;

namespace DeepSeekRL.Tokenizers;

/// <summary>Options of <see cref="BpeTrainer"/>.</summary>
public sealed class BpeTrainerOptions
{
    /// <summary>
    /// The vocabulary size to reach, special tokens, added tokens and the 256 bytes included. Default 1,000; at least
    /// 256 + specials + added tokens.
    /// </summary>
    public int VocabSize { get; set; } = 1000;

    /// <summary>A pair seen fewer times than this is never merged. Default 2; at least 1.</summary>
    public int MinFrequency { get; set; } = 2;

    /// <summary>Special tokens, given ids 0.. in order, never split and never learned from. Default none.</summary>
    public IReadOnlyList<string> SpecialTokens { get; set; } = [];

    /// <summary>
    /// Non-special added tokens (such as <c>&lt;think&gt;</c> and <c>&lt;/think&gt;</c>), given the ids right after the
    /// special tokens, in order; like special tokens they are never split and never learned from (cut out of the
    /// training text), but they are written with <c>"special": false</c>, so decoding with <c>skipSpecialTokens</c>
    /// keeps them (as in DeepSeek-R1's tokenizer). Default none; none may be empty or also a special token.
    /// </summary>
    public IReadOnlyList<string> AddedTokens { get; set; } = [];

    /// <summary>The pre-tokenizer: <c>deepseek-v3</c> (DeepSeek-V3's Split sequence, the default) or <c>gpt2</c> (ByteLevel with GPT-2's regex).</summary>
    public string PreTokenizer { get; set; } = "deepseek-v3";
}

/// <summary>
/// Trains a byte-level BPE (as Hugging Face's <c>BpeTrainer</c>): words are the pre-tokenizer's pieces, counted; the
/// most frequent adjacent pair (ties: the smaller pair of ids) is merged until the vocabulary is full or no pair is
/// frequent enough. Deterministic. The result is written as a Hugging Face tokenizer.json.
/// </summary>
public static class BpeTrainer
{
    /// <summary>The pre-tokenizer JSON of each <see cref="BpeTrainerOptions.PreTokenizer"/> choice.</summary>
    public static string PreTokenizerJson(string name) => name switch
    {
        "deepseek-v3" => JsonSerializer.Serialize(new
        {
            type = "Sequence",
            pretokenizers = new object[]
            {
                new { type = "Split", pattern = new { Regex = PatternMatcher.DeepSeekDigits }, behavior = "Isolated", invert = false },
                new { type = "Split", pattern = new { Regex = PatternMatcher.DeepSeekCjk }, behavior = "Isolated", invert = false },
                new { type = "Split", pattern = new { Regex = PatternMatcher.DeepSeekWords }, behavior = "Isolated", invert = false },
                new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = false },
            },
        }),
        "gpt2" => JsonSerializer.Serialize(new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true }),
        _ => throw new ArgumentException($"pre-tokenizer \"{name}\" is not one of deepseek-v3, gpt2", nameof(name)),
    };

    /// <summary>Trains on <paramref name="texts"/> and writes tokenizer.json to <paramref name="output"/>.</summary>
    /// <param name="texts">The training texts.</param>
    /// <param name="options">The options.</param>
    /// <param name="output">Receives the tokenizer.json.</param>
    /// <param name="cancellationToken">Cancels training.</param>
    /// <returns>The number of merges learned.</returns>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    public static int Train(IEnumerable<string> texts, BpeTrainerOptions options, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        var specials = options.SpecialTokens.Distinct(StringComparer.Ordinal).ToList();
        if (specials.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("special tokens must not be empty", nameof(options));
        }

        ArgumentNullException.ThrowIfNull(options.AddedTokens);
        var added = options.AddedTokens.Distinct(StringComparer.Ordinal).ToList();
        if (added.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("added tokens must not be empty", nameof(options));
        }

        if (added.FirstOrDefault(t => specials.Contains(t, StringComparer.Ordinal)) is { } both)
        {
            throw new ArgumentException($"\"{both}\" is both a special token and an added token", nameof(options));
        }

        if (options.VocabSize < 256 + specials.Count + added.Count)
        {
            throw new ArgumentException(
                $"vocab size {options.VocabSize} is below 256 bytes + {specials.Count} special tokens + {added.Count} added tokens", nameof(options));
        }

        if (options.MinFrequency < 1)
        {
            throw new ArgumentException($"min frequency {options.MinFrequency} is below 1", nameof(options));
        }

        using var preJson = JsonDocument.Parse(PreTokenizerJson(options.PreTokenizer));
        var preTokenizer = TokenizerJson.ReadPreTokenizer(preJson.RootElement);
        var addedTokens = specials.Select((s, i) => new AddedToken(i, s, Special: true))
            .Concat(added.Select((s, i) => new AddedToken(specials.Count + i, s, Special: false)))
            .ToList();
        var matcher = new AddedTokenMatcher(addedTokens);

        // 1. Count words (pieces), special and added tokens cut out.
        var wordCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        var input = new List<Piece>(1);
        var pieces = new List<Piece>();
        foreach (var raw in texts)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var text = BpeTokenizer.ReplaceLoneSurrogates(raw);
            var pos = 0;
            while (pos < text.Length)
            {
                int s = 0, e = 0;
                var found = matcher.Count > 0 && matcher.FindNext(text, pos, out s, out e, out _);
                var end = found ? s : text.Length;
                if (end > pos)
                {
                    var section = text.AsSpan(pos, end - pos);
                    input.Clear();
                    input.Add(new Piece(0, section.Length));
                    pieces.Clear();
                    preTokenizer.Split(section, input, pieces);
                    foreach (var p in pieces)
                    {
                        var word = (p.PrefixSpace ? " " : string.Empty) + section.Slice(p.Start, p.Length).ToString();
                        wordCounts[word] = wordCounts.GetValueOrDefault(word) + 1;
                    }
                }

                pos = found ? e : text.Length;
            }
        }

        // 2. Initial vocabulary: specials, added tokens, then the 256 bytes in byte order.
        var tokens = new List<string>(options.VocabSize);
        tokens.AddRange(specials);
        tokens.AddRange(added);
        var byteBase = tokens.Count;
        for (var b = 0; b < 256; b++)
        {
            tokens.Add(ByteLevel.ByteToChar((byte)b).ToString());
        }

        var words = new List<int[]>(wordCounts.Count);
        var counts = new List<long>(wordCounts.Count);
        foreach (var (word, count) in wordCounts.OrderBy(w => w.Key, StringComparer.Ordinal))
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(word);
            words.Add([.. bytes.Select(b => byteBase + b)]);
            counts.Add(count);
        }

        // 3. Pair statistics.
        var pairCounts = new Dictionary<long, long>();
        var where = new Dictionary<long, HashSet<int>>();
        for (var w = 0; w < words.Count; w++)
        {
            AddPairs(words[w], counts[w], w, pairCounts, where);
        }

        var queue = new PriorityQueue<long, (long NegCount, long Pair)>();
        foreach (var (pair, count) in pairCounts)
        {
            queue.Enqueue(pair, (-count, pair));
        }

        var merges = new List<(string, string)>();
        var changed = new HashSet<long>();
        while (tokens.Count < options.VocabSize && queue.TryDequeue(out var best, out var priority))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var current = pairCounts.GetValueOrDefault(best);
            if (current != -priority.NegCount)
            {
                if (current > 0)
                {
                    queue.Enqueue(best, (-current, best)); // stale: re-queue with the current count
                }

                continue;
            }

            if (current < options.MinFrequency)
            {
                break;
            }

            var left = (int)(best >> 32);
            var right = (int)(best & 0xFFFFFFFF);
            var merged = tokens.Count;
            tokens.Add(tokens[left] + tokens[right]);
            merges.Add((tokens[left], tokens[right]));
            changed.Clear();
            foreach (var w in where[best].ToArray())
            {
                RemovePairs(words[w], counts[w], pairCounts, changed);
                words[w] = MergeWord(words[w], left, right, merged);
                AddPairs(words[w], counts[w], w, pairCounts, where);
                foreach (var pair in PairsOf(words[w]))
                {
                    changed.Add(pair);
                }
            }

            foreach (var pair in changed)
            {
                var c = pairCounts.GetValueOrDefault(pair);
                if (c > 0 && pair != best)
                {
                    queue.Enqueue(pair, (-c, pair));
                }
            }

            pairCounts.Remove(best);
        }

        var vocab = tokens.Select((t, i) => new KeyValuePair<string, int>(t, i)).ToList();
        TokenizerJson.Write(output, vocab, merges, addedTokens, preJson.RootElement);
        return merges.Count;
    }

    private static IEnumerable<long> PairsOf(int[] word)
    {
        for (var i = 0; i + 1 < word.Length; i++)
        {
            yield return Key(word[i], word[i + 1]);
        }
    }

    private static void AddPairs(int[] word, long count, int w, Dictionary<long, long> pairCounts, Dictionary<long, HashSet<int>> where)
    {
        for (var i = 0; i + 1 < word.Length; i++)
        {
            var key = Key(word[i], word[i + 1]);
            pairCounts[key] = pairCounts.GetValueOrDefault(key) + count;
            if (!where.TryGetValue(key, out var set))
            {
                where[key] = set = [];
            }

            set.Add(w);
        }
    }

    private static void RemovePairs(int[] word, long count, Dictionary<long, long> pairCounts, HashSet<long> changed)
    {
        for (var i = 0; i + 1 < word.Length; i++)
        {
            var key = Key(word[i], word[i + 1]);
            pairCounts[key] -= count;
            changed.Add(key);
        }
    }

    private static int[] MergeWord(int[] word, int left, int right, int merged)
    {
        var result = new List<int>(word.Length);
        for (var i = 0; i < word.Length; i++)
        {
            if (i + 1 < word.Length && word[i] == left && word[i + 1] == right)
            {
                result.Add(merged);
                i++;
            }
            else
            {
                result.Add(word[i]);
            }
        }

        return [.. result];
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}
