namespace DeepSeekRL.Tokenizers;

/// <summary>A piece of a section of text: a range of it, optionally with a space to put in front (ByteLevel's add_prefix_space).</summary>
/// <param name="Start">The start, in UTF-16 units.</param>
/// <param name="Length">The length, in UTF-16 units.</param>
/// <param name="PrefixSpace">Whether a space precedes the piece's bytes.</param>
public readonly record struct Piece(int Start, int Length, bool PrefixSpace = false);

/// <summary>
/// A Hugging Face pre-tokenizer: splits each piece of a section into smaller pieces. Implementations are immutable
/// and thread-safe.
/// </summary>
public abstract class PreTokenizer
{
    /// <summary>Splits each of <paramref name="input"/> and appends the results, in order, to <paramref name="output"/>.</summary>
    /// <param name="text">The section the pieces index into.</param>
    /// <param name="input">The pieces to split.</param>
    /// <param name="output">Receives the pieces; empty pieces are never added.</param>
    public abstract void Split(ReadOnlySpan<char> text, List<Piece> input, List<Piece> output);
}

/// <summary>How a Split pre-tokenizer treats the matches of its pattern (Hugging Face <c>SplitDelimiterBehavior</c>).</summary>
public enum SplitBehavior
{
    /// <summary>Matches are dropped.</summary>
    Removed,

    /// <summary>Matches and the text between them are separate pieces.</summary>
    Isolated,

    /// <summary>Each match joins the piece before it.</summary>
    MergedWithPrevious,

    /// <summary>Each match joins the piece after it.</summary>
    MergedWithNext,

    /// <summary>Consecutive matches form one piece.</summary>
    Contiguous,
}

/// <summary>Hugging Face's <c>Split</c> pre-tokenizer: a regex or string pattern, a behaviour and <c>invert</c>.</summary>
public sealed class SplitPreTokenizer : PreTokenizer
{
    [ThreadStatic]
    private static List<(int Start, int End, bool IsMatch)>? t_segments;

    [ThreadStatic]
    private static List<(int Start, int End)>? t_folded;

    private readonly PatternMatcher _matcher;

    /// <summary>Creates the pre-tokenizer.</summary>
    /// <param name="pattern">The pattern.</param>
    /// <param name="isRegex">Whether <paramref name="pattern"/> is a regex (else a literal string).</param>
    /// <param name="behavior">The behaviour.</param>
    /// <param name="invert">Whether the pieces between matches are the delimiters instead.</param>
    public SplitPreTokenizer(string pattern, bool isRegex, SplitBehavior behavior, bool invert)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        _matcher = isRegex ? PatternMatcher.ForRegex(pattern) : PatternMatcher.ForString(pattern);
        Behavior = behavior;
        Invert = invert;
    }

    /// <summary>The behaviour.</summary>
    public SplitBehavior Behavior { get; }

    /// <summary>Whether the match/non-match roles are swapped.</summary>
    public bool Invert { get; }

    /// <summary>The pattern.</summary>
    public string Pattern => _matcher.Source;

    /// <inheritdoc/>
    public override void Split(ReadOnlySpan<char> text, List<Piece> input, List<Piece> output)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        foreach (var piece in input)
        {
            SplitOne(text, piece, output);
        }
    }

    /// <summary>Splits one piece, appending the results to <paramref name="output"/>.</summary>
    internal void SplitOne(ReadOnlySpan<char> text, Piece piece, List<Piece> output)
    {
        var s = text.Slice(piece.Start, piece.Length);
        var first = output.Count;
        if (Behavior is SplitBehavior.Isolated or SplitBehavior.Removed)
        {
            // The common case, without an intermediate list: every match and every gap in order.
            var keepMatches = Behavior == SplitBehavior.Isolated || Invert;
            var keepGaps = Behavior == SplitBehavior.Isolated || !Invert;
            var prev = 0;
            while (prev < s.Length && _matcher.FindNext(s, prev, out var start, out var length))
            {
                if (start > prev && keepGaps)
                {
                    output.Add(new Piece(piece.Start + prev, start - prev));
                }

                if (keepMatches)
                {
                    output.Add(new Piece(piece.Start + start, length));
                }

                prev = start + length;
            }

            if (prev < s.Length && keepGaps)
            {
                output.Add(new Piece(piece.Start + prev, s.Length - prev));
            }
        }
        else
        {
            FoldSegments(s, piece.Start, output);
        }

        // ByteLevel's prefix space belongs to the first piece only.
        if (piece.PrefixSpace && output.Count > first)
        {
            output[first] = output[first] with { PrefixSpace = true };
        }
    }

    // Mirrors tokenizers' NormalizedString::split: the (range, is_match) segments folded by the behaviour.
    private void FoldSegments(ReadOnlySpan<char> s, int offset, List<Piece> output)
    {
        // This thread's lists, reused: folding runs once per piece and never re-enters itself.
        var segments = t_segments ??= [];
        var acc = t_folded ??= [];
        segments.Clear();
        acc.Clear();
        var prev = 0;
        while (prev < s.Length && _matcher.FindNext(s, prev, out var start, out var length))
        {
            if (start > prev)
            {
                segments.Add((prev, start, Invert));
            }

            segments.Add((start, start + length, !Invert));
            prev = start + length;
        }

        if (prev < s.Length)
        {
            segments.Add((prev, s.Length, Invert));
        }

        var previousMatch = false;
        if (Behavior == SplitBehavior.MergedWithNext)
        {
            for (var i = segments.Count - 1; i >= 0; i--)
            {
                var (start, end, isMatch) = segments[i];
                if (isMatch && !previousMatch && acc.Count > 0)
                {
                    acc[^1] = (start, acc[^1].End);
                }
                else
                {
                    acc.Add((start, end));
                }

                previousMatch = isMatch;
            }

            acc.Reverse();
        }
        else
        {
            foreach (var (start, end, isMatch) in segments)
            {
                var merge = Behavior == SplitBehavior.Contiguous ? isMatch == previousMatch : isMatch && !previousMatch;
                if (merge && acc.Count > 0)
                {
                    acc[^1] = (acc[^1].Start, end);
                }
                else
                {
                    acc.Add((start, end));
                }

                previousMatch = isMatch;
            }
        }

        foreach (var (start, end) in acc)
        {
            output.Add(new Piece(offset + start, end - start));
        }
    }
}

/// <summary>
/// Hugging Face's <c>ByteLevel</c> pre-tokenizer. The byte-to-character mapping itself happens in the BPE model, so
/// this only applies GPT-2's regex (<c>use_regex</c>) and <c>add_prefix_space</c>.
/// </summary>
/// <param name="addPrefixSpace">Whether a space is put before each piece that does not start with one.</param>
/// <param name="useRegex">Whether to split with GPT-2's pattern.</param>
public sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    private readonly SplitPreTokenizer? _split = useRegex ? new SplitPreTokenizer(PatternMatcher.Gpt2, true, SplitBehavior.Isolated, false) : null;

    /// <summary>Whether a space is put before each piece that does not start with one.</summary>
    public bool AddPrefixSpace { get; } = addPrefixSpace;

    /// <summary>Whether GPT-2's pattern splits the pieces.</summary>
    public bool UseRegex { get; } = useRegex;

    /// <inheritdoc/>
    public override void Split(ReadOnlySpan<char> text, List<Piece> input, List<Piece> output)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        foreach (var piece in input)
        {
            var p = AddPrefixSpace && piece.Length > 0 && text[piece.Start] != ' ' ? piece with { PrefixSpace = true } : piece;
            if (_split is null)
            {
                output.Add(p);
            }
            else
            {
                _split.SplitOne(text, p, output);
            }
        }
    }
}

/// <summary>Hugging Face's <c>Sequence</c> pre-tokenizer: each step splits the pieces of the one before.</summary>
/// <param name="steps">The steps.</param>
public sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizer> steps) : PreTokenizer
{
    /// <summary>The steps.</summary>
    public IReadOnlyList<PreTokenizer> Steps { get; } = steps;

    /// <inheritdoc/>
    public override void Split(ReadOnlySpan<char> text, List<Piece> input, List<Piece> output)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        if (Steps.Count == 0)
        {
            output.AddRange(input);
            return;
        }

        // Intermediate steps write to this thread's pooled lists (a stack, so nested sequences are fine).
        var current = input;
        for (var i = 0; i < Steps.Count; i++)
        {
            var target = i == Steps.Count - 1 ? output : PieceListPool.Rent();
            Steps[i].Split(text, current, target);
            if (!ReferenceEquals(current, input))
            {
                PieceListPool.Return(current);
            }

            current = target;
        }
    }
}

/// <summary>Per-thread reusable piece lists, so pre-tokenizing allocates nothing in steady state.</summary>
internal static class PieceListPool
{
    // Lists that grew beyond this many pieces (3 MB; about 1 MB of text in one section) are dropped rather than
    // kept, so one huge text does not pin memory for the thread's lifetime.
    private const int MaxKeptCapacity = 1 << 18;

    [ThreadStatic]
    private static Stack<List<Piece>>? t_free;

    /// <summary>An empty list; give it back with <see cref="Return"/>.</summary>
    public static List<Piece> Rent() => t_free is { Count: > 0 } free ? free.Pop() : new List<Piece>(64);

    /// <summary>Clears the list and keeps it for the next <see cref="Rent"/> on this thread.</summary>
    public static void Return(List<Piece> list)
    {
        if (list.Capacity > MaxKeptCapacity)
        {
            return;
        }

        list.Clear();
        (t_free ??= new Stack<List<Piece>>()).Push(list);
    }
}
