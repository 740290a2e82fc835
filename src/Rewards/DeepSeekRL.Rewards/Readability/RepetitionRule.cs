using System.Buffers;
using DeepSeekRL.Rewards.Text;

namespace DeepSeekRL.Rewards.Readability;

/// <summary>
/// <c>repetition</c>: open-r1's <c>repetition_penalty_reward</c>,
/// (1 − unique n-grams / total n-grams) × <see cref="RepetitionRewardOptions.MaxPenalty"/>.
/// </summary>
/// <remarks>
/// <para>Convention: 0 is clean, <see cref="RepetitionRewardOptions.MaxPenalty"/> (−1) is pure repetition; higher is
/// better, as for every rule. As a rejection-sampling filter keep samples scoring at least a threshold (say −0.1).</para>
/// <para>Words: the text lower-cased and split on white space (Python's <c>str.lower().split()</c>; punctuation stays
/// attached). 0 for an empty text or one with fewer than n words. Difference: open-r1's <c>language="zh"</c> mode
/// segments with jieba; there is no segmenter here, so unspaced Chinese is one word per run.</para>
/// <para>Thread-safe; scratch from <see cref="ArrayPool{T}"/>; one small set per call.</para>
/// </remarks>
[RewardRule("repetition")]
internal sealed class RepetitionRule : IRewardRule
{
    private readonly int _n;
    private readonly double _maxPenalty;
    private readonly ReasoningScope _scope;

    /// <summary>Creates the rule.</summary>
    /// <param name="options">Its options (validated).</param>
    public RepetitionRule(RepetitionRewardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _n = options.NgramSize;
        _maxPenalty = options.MaxPenalty;
        _scope = options.Scope;
    }

    /// <inheritdoc/>
    public ValueTask<RewardOutcome> ScoreAsync(RewardArguments args, CancellationToken cancellationToken) =>
        ValueTask.FromResult(RewardOutcome.Score(Score(args.Completion)));

    /// <summary>The score of one completion.</summary>
    /// <param name="completion">The completion.</param>
    /// <returns>A score in [max_penalty, 0].</returns>
    public double Score(string completion)
    {
        var text = ChainOfThought.Select(completion, _scope);
        var lowered = ArrayPool<char>.Shared.Rent(Math.Max(1, text.Length));
        var starts = ArrayPool<int>.Shared.Rent((text.Length / 2) + 1);
        var lengths = ArrayPool<int>.Shared.Rent((text.Length / 2) + 1);
        try
        {
            var words = 0;
            var i = 0;
            while (i < text.Length)
            {
                while (i < text.Length && IsPythonWhiteSpace(text[i]))
                {
                    i++;
                }

                var start = i;
                while (i < text.Length && !IsPythonWhiteSpace(text[i]))
                {
                    lowered[i] = char.ToLowerInvariant(text[i]);
                    i++;
                }

                if (i > start)
                {
                    starts[words] = start;
                    lengths[words] = i - start;
                    words++;
                }
            }

            if (words < _n)
            {
                return 0;
            }

            var total = words - _n + 1;
            var comparer = new NgramComparer(lowered, starts, lengths, _n);
            var unique = new HashSet<int>(total, comparer);
            for (var g = 0; g < total; g++)
            {
                unique.Add(g);
            }

            return (1.0 - ((double)unique.Count / total)) * _maxPenalty;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(lowered);
            ArrayPool<int>.Shared.Return(starts);
            ArrayPool<int>.Shared.Return(lengths);
        }
    }

    // Python's str.split() also splits on the information separators U+001C..U+001F.
    private static bool IsPythonWhiteSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001C' and <= '\u001F';

    /// <summary>Compares n-grams by their first word's index.</summary>
    private sealed class NgramComparer(char[] text, int[] starts, int[] lengths, int n) : IEqualityComparer<int>
    {
        public bool Equals(int x, int y)
        {
            for (var k = 0; k < n; k++)
            {
                if (!Word(x + k).SequenceEqual(Word(y + k)))
                {
                    return false;
                }
            }

            return true;
        }

        public int GetHashCode(int obj)
        {
            var hash = default(HashCode);
            for (var k = 0; k < n; k++)
            {
                hash.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Word(obj + k)));
                hash.Add(-1); // word separator: ("ab", "c") differs from ("a", "bc")
            }

            return hash.ToHashCode();
        }

        private ReadOnlySpan<char> Word(int index) => text.AsSpan(starts[index], lengths[index]);
    }
}
