using System.Buffers;
using System.Collections.Concurrent;
using System.Text;

namespace DeepSeekRL.Model.Tokenization;

/// <summary>
/// The byte-level BPE model: a vocabulary of byte-level strings and ranked merges. A piece of text becomes its UTF-8
/// bytes, one symbol per byte, then the lowest-ranked adjacent pair is merged (leftmost first on ties) until no pair
/// has a merge, exactly as Hugging Face's <c>Word::merge_all</c>. Results are cached per piece text.
/// </summary>
/// <remarks>Thread-safe: the model is immutable apart from its concurrent cache.</remarks>
public sealed class BpeModel
{
    /// <summary>Pieces longer than this (in UTF-16 units) are not cached.</summary>
    public const int MaxCachedPieceLength = 256;

    /// <summary>The cache is cleared when it holds this many pieces.</summary>
    public const int MaxCacheEntries = 1 << 18;

    // Below this many symbols a linear scan for the best pair beats a heap.
    private const int HeapThreshold = 48;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabLookup;
    private readonly string?[] _idToToken;
    private readonly int[] _byteToId = new int[256];
    private readonly Dictionary<long, int> _mergeRank;
    private readonly int[] _mergeResult;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheLookup;

    /// <summary>Creates the model; the inputs are validated by the loader (<see cref="TokenizerJson"/>).</summary>
    /// <param name="vocab">Token string to id.</param>
    /// <param name="merges">The merges in rank order, as token ids (left, right, merged).</param>
    /// <param name="ignoreMerges">Whether a piece that is itself a token skips the merges.</param>
    internal BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(int Left, int Right, int Merged)> merges, bool ignoreMerges)
    {
        _vocab = vocab;
        _vocabLookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        IgnoreMerges = ignoreMerges;
        var maxId = -1;
        foreach (var id in vocab.Values)
        {
            maxId = Math.Max(maxId, id);
        }

        _idToToken = new string?[maxId + 1];
        foreach (var (token, id) in vocab)
        {
            _idToToken[id] = token;
        }

        for (var b = 0; b < 256; b++)
        {
            _byteToId[b] = vocab.TryGetValue(ByteLevel.ByteToChar((byte)b).ToString(), out var id) ? id : -1;
        }

        _mergeRank = new Dictionary<long, int>(merges.Count);
        _mergeResult = new int[merges.Count];
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (left, right, merged) = merges[rank];
            // A repeated pair keeps its last rank, as the HashMap (Rust) and Map (JS) built in rank order do.
            _mergeRank[Key(left, right)] = rank;
            _mergeResult[rank] = merged;
        }

        _cacheLookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        Merges = merges;
    }

    /// <summary>The vocabulary: token string to id.</summary>
    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    /// <summary>The merges in rank order.</summary>
    public IReadOnlyList<(int Left, int Right, int Merged)> Merges { get; }

    /// <summary>Whether a piece that is itself a token skips the merges.</summary>
    public bool IgnoreMerges { get; }

    /// <summary>The byte values that have no token (byte-level BPE needs all 256).</summary>
    public IEnumerable<int> MissingBytes => Enumerable.Range(0, 256).Where(b => _byteToId[b] < 0);

    /// <summary>The token of an id, or <see langword="null"/>.</summary>
    /// <param name="id">The id.</param>
    /// <returns>The token.</returns>
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>The id of a token, or -1.</summary>
    /// <param name="token">The token (byte-level string).</param>
    /// <returns>The id.</returns>
    public int TokenToId(ReadOnlySpan<char> token) => _vocabLookup.TryGetValue(token, out var id) ? id : -1;

    /// <summary>Encodes one piece and appends its ids.</summary>
    /// <param name="piece">The piece's text.</param>
    /// <param name="prefixSpace">Whether a space goes before it.</param>
    /// <param name="ids">Receives the ids.</param>
    public void EncodePiece(ReadOnlySpan<char> piece, bool prefixSpace, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var cacheable = !prefixSpace && piece.Length <= MaxCachedPieceLength;
        if (cacheable && _cacheLookup.TryGetValue(piece, out var cached))
        {
            ids.AddRange(cached);
            return;
        }

        var maxBytes = Encoding.UTF8.GetMaxByteCount(piece.Length) + 1;
        var rented = ArrayPool<byte>.Shared.Rent(maxBytes);
        var symbols = ArrayPool<int>.Shared.Rent(maxBytes);
        try
        {
            var n = 0;
            if (prefixSpace)
            {
                rented[n++] = (byte)' ';
            }

            n += Encoding.UTF8.GetBytes(piece, rented.AsSpan(n));
            var count = Merge(rented.AsSpan(0, n), symbols);
            var result = symbols.AsSpan(0, count);
            if (cacheable)
            {
                if (_cache.Count >= MaxCacheEntries)
                {
                    _cache.Clear();
                }

                _cacheLookup.TryAdd(piece, result.ToArray());
            }

            foreach (var id in result)
            {
                ids.Add(id);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
            ArrayPool<int>.Shared.Return(symbols);
        }
    }

    /// <summary>Clears the piece cache (for benchmarks).</summary>
    public void ClearCache() => _cache.Clear();

    /// <summary>BPE on the bytes; writes the ids to <paramref name="symbols"/> and returns their count.</summary>
    internal int Merge(ReadOnlySpan<byte> bytes, int[] symbols)
    {
        var n = bytes.Length;
        for (var i = 0; i < n; i++)
        {
            var id = _byteToId[bytes[i]];
            if (id < 0)
            {
                throw new InvalidOperationException($"byte 0x{bytes[i]:X2} has no token in the vocabulary");
            }

            symbols[i] = id;
        }

        if (IgnoreMerges && n > 1 && TryWholeToken(bytes, out var whole))
        {
            symbols[0] = whole;
            return 1;
        }

        return n < HeapThreshold ? MergeByScan(symbols, n) : MergeByHeap(symbols, n);
    }

    private bool TryWholeToken(ReadOnlySpan<byte> bytes, out int id)
    {
        Span<char> chars = bytes.Length <= 256 ? stackalloc char[bytes.Length] : new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            chars[i] = ByteLevel.ByteToChar(bytes[i]);
        }

        return _vocabLookup.TryGetValue(chars, out id);
    }

    // O(n^2) for short words: repeatedly merge the lowest rank, leftmost on ties.
    private int MergeByScan(int[] symbols, int n)
    {
        while (n > 1)
        {
            var bestRank = int.MaxValue;
            var bestPos = -1;
            for (var i = 0; i < n - 1; i++)
            {
                if (_mergeRank.TryGetValue(Key(symbols[i], symbols[i + 1]), out var rank) && rank < bestRank)
                {
                    bestRank = rank;
                    bestPos = i;
                }
            }

            if (bestPos < 0)
            {
                break;
            }

            symbols[bestPos] = _mergeResult[bestRank];
            Array.Copy(symbols, bestPos + 2, symbols, bestPos + 1, n - bestPos - 2);
            n--;
        }

        return n;
    }

    // O(n log n): a heap of candidate merges keyed by (rank, position), as tokenizers' Word::merge_all.
    private int MergeByHeap(int[] symbols, int n)
    {
        var id = ArrayPool<int>.Shared.Rent(n);
        var prev = ArrayPool<int>.Shared.Rent(n);
        var next = ArrayPool<int>.Shared.Rent(n);
        var heap = new PriorityQueue<int, long>(n);
        try
        {
            for (var i = 0; i < n; i++)
            {
                id[i] = symbols[i];
                prev[i] = i - 1;
                next[i] = i + 1 < n ? i + 1 : -1;
            }

            for (var i = 0; i < n - 1; i++)
            {
                Push(heap, id, i, i + 1);
            }

            while (heap.TryDequeue(out var pos, out var priority))
            {
                var rank = (int)(priority >> 32);
                var right = next[pos];
                if (id[pos] < 0 || right < 0 || !_mergeRank.TryGetValue(Key(id[pos], id[right]), out var current) || current != rank)
                {
                    continue; // stale: one side was merged since this entry was pushed
                }

                id[pos] = _mergeResult[rank];
                id[right] = -1;
                next[pos] = next[right];
                if (next[pos] >= 0)
                {
                    prev[next[pos]] = pos;
                    Push(heap, id, pos, next[pos]);
                }

                if (prev[pos] >= 0)
                {
                    Push(heap, id, prev[pos], pos);
                }
            }

            var count = 0;
            for (var i = 0; i >= 0; i = next[i])
            {
                symbols[count++] = id[i];
            }

            return count;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(id);
            ArrayPool<int>.Shared.Return(prev);
            ArrayPool<int>.Shared.Return(next);
        }
    }

    private void Push(PriorityQueue<int, long> heap, int[] id, int left, int right)
    {
        if (_mergeRank.TryGetValue(Key(id[left], id[right]), out var rank))
        {
            heap.Enqueue(left, ((long)rank << 32) | (uint)left);
        }
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}
