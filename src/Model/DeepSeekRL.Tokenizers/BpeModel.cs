using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;

namespace DeepSeekRL.Tokenizers;

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

    // The rank of a pair that has no merge; above every real rank, so the scan's minimum needs no special case.
    private const int NoMerge = int.MaxValue;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabLookup;
    private readonly string?[] _idToToken;
    private readonly int[] _byteToId = new int[256];
    private readonly PairEntry[] _pairTable;
    private readonly int _pairShift;
    private readonly int[] _mergeResult;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheLookup;
    private int _cacheCount;

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

        // A power of two at least twice the merge count keeps linear probes short.
        var bits = Math.Max(4, 64 - BitOperations.LeadingZeroCount((ulong)Math.Max(1, merges.Count)) + 1);
        _pairShift = 64 - bits;
        _pairTable = new PairEntry[1 << bits];
        Array.Fill(_pairTable, new PairEntry(-1, NoMerge));
        _mergeResult = new int[merges.Count];
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (left, right, merged) = merges[rank];
            // A repeated pair keeps its last rank, as the HashMap (Rust) and Map (JS) built in rank order do.
            var key = Key(left, right);
            var mask = _pairTable.Length - 1;
            var i = HashSlot(key, _pairShift);
            while (_pairTable[i].Key >= 0 && _pairTable[i].Key != key)
            {
                i = (i + 1) & mask;
            }

            _pairTable[i] = new PairEntry(key, rank);
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
    /// <remarks>A cache hit allocates nothing; a miss allocates only the cached key and ids.</remarks>
    public void EncodePiece(ReadOnlySpan<char> piece, bool prefixSpace, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (!prefixSpace && piece.Length == 1 && piece[0] < 0x80 && _byteToId[piece[0]] >= 0)
        {
            // One byte has no pair to merge: its id, without a cache lookup (a fifth of DeepSeek's pieces).
            ids.Add(_byteToId[piece[0]]);
            return;
        }

        var cacheable = !prefixSpace && piece.Length <= MaxCachedPieceLength;
        if (cacheable && _cacheLookup.TryGetValue(piece, out var cached))
        {
            Append(ids, cached);
            return;
        }

        var maxBytes = Encoding.UTF8.GetMaxByteCount(piece.Length) + 1;
        var scratch = Scratch.For(maxBytes);
        var bytes = scratch.Bytes;
        var n = 0;
        if (prefixSpace)
        {
            bytes[n++] = (byte)' ';
        }

        n += Encoding.UTF8.GetBytes(piece, bytes.AsSpan(n));
        var symbols = scratch.Symbols.AsSpan(0, n);
        var count = Merge(bytes.AsSpan(0, n), symbols, scratch);
        var result = symbols[..count];
        if (cacheable)
        {
            // ConcurrentDictionary.Count takes every lock (microseconds), so the size is counted here; racing
            // threads may overshoot the bound by a few entries, which is harmless.
            if (Volatile.Read(ref _cacheCount) >= MaxCacheEntries)
            {
                ClearCache();
            }

            if (_cacheLookup.TryAdd(piece, result.ToArray()))
            {
                Interlocked.Increment(ref _cacheCount);
            }
        }

        Append(ids, result);
    }

    /// <summary>Clears the piece cache (for benchmarks).</summary>
    public void ClearCache()
    {
        _cache.Clear();
        Volatile.Write(ref _cacheCount, 0);
    }

    /// <summary>BPE on the bytes; writes the ids to <paramref name="symbols"/> and returns their count.</summary>
    internal int Merge(ReadOnlySpan<byte> bytes, Span<int> symbols) => Merge(bytes, symbols, Scratch.For(bytes.Length));

    private int Merge(ReadOnlySpan<byte> bytes, Span<int> symbols, Scratch scratch)
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

        if (n < 2)
        {
            return n;
        }

        return n < HeapThreshold ? MergeByScan(symbols[..n], scratch.Ranks) : MergeByHeap(symbols[..n], scratch);
    }

    private static void Append(List<int> ids, ReadOnlySpan<int> values)
    {
        var count = ids.Count;
        CollectionsMarshal.SetCount(ids, count + values.Length);
        values.CopyTo(CollectionsMarshal.AsSpan(ids)[count..]);
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

    // O(n^2) compares but O(n) table lookups for short words: rank[i] caches the rank of pair (i, i+1), so each merge
    // looks up only its two new pairs. Repeatedly merges the lowest rank, leftmost on ties.
    private int MergeByScan(Span<int> symbols, int[] rankBuffer)
    {
        var n = symbols.Length;
        var ranks = rankBuffer.AsSpan(0, n - 1);
        for (var i = 0; i < n - 1; i++)
        {
            ranks[i] = RankOf(symbols[i], symbols[i + 1]);
        }

        while (n > 1)
        {
            var bestRank = NoMerge;
            var best = -1;
            for (var i = 0; i < n - 1; i++)
            {
                if (ranks[i] < bestRank)
                {
                    bestRank = ranks[i];
                    best = i;
                }
            }

            if (best < 0)
            {
                break;
            }

            // (n) symbols, (n-1) pair ranks -> drop symbol best+1 and pair best+1's slot, then refresh the two
            // pairs around the merged symbol.
            symbols[best] = _mergeResult[bestRank];
            symbols[(best + 2)..n].CopyTo(symbols[(best + 1)..]);
            if (best + 2 < n - 1)
            {
                ranks[(best + 2)..(n - 1)].CopyTo(ranks[(best + 1)..]);
            }

            n--;
            if (best > 0)
            {
                ranks[best - 1] = RankOf(symbols[best - 1], symbols[best]);
            }

            if (best < n - 1)
            {
                ranks[best] = RankOf(symbols[best], symbols[best + 1]);
            }
        }

        return n;
    }

    // O(n log n): a binary min-heap of candidate merges keyed by (rank, position) over a doubly linked list of
    // symbols, as tokenizers' Word::merge_all. Entries go stale when a neighbour merges; they are checked on pop.
    private int MergeByHeap(Span<int> symbols, Scratch scratch)
    {
        var n = symbols.Length;
        var id = scratch.Ids;
        var prev = scratch.Prev;
        var next = scratch.Next;
        var heap = scratch.Heap;
        var size = 0;
        for (var i = 0; i < n; i++)
        {
            id[i] = symbols[i];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }

        for (var i = 0; i < n - 1; i++)
        {
            size = Push(heap, size, id, i, i + 1);
        }

        while (size > 0)
        {
            var top = heap[0];
            size = PopMin(heap, size);
            var pos = (int)(uint)top;
            var rank = (int)(top >> 32);
            var right = next[pos];
            if (id[pos] < 0 || right < 0 || RankOf(id[pos], id[right]) != rank)
            {
                continue; // stale: one side was merged since this entry was pushed
            }

            id[pos] = _mergeResult[rank];
            id[right] = -1;
            next[pos] = next[right];
            if (next[pos] >= 0)
            {
                prev[next[pos]] = pos;
                size = Push(heap, size, id, pos, next[pos]);
            }

            if (prev[pos] >= 0)
            {
                size = Push(heap, size, id, prev[pos], pos);
            }
        }

        var count = 0;
        for (var i = 0; i >= 0; i = next[i])
        {
            symbols[count++] = id[i];
        }

        return count;
    }

    private int Push(long[] heap, int size, int[] id, int left, int right)
    {
        var rank = RankOf(id[left], id[right]);
        if (rank == NoMerge)
        {
            return size;
        }

        // Sift up; positions are distinct among live entries, so (rank, position) orders like the Rust heap.
        var entry = ((long)rank << 32) | (uint)left;
        var i = size;
        while (i > 0)
        {
            var parent = (i - 1) >> 1;
            if (heap[parent] <= entry)
            {
                break;
            }

            heap[i] = heap[parent];
            i = parent;
        }

        heap[i] = entry;
        return size + 1;
    }

    private static int PopMin(long[] heap, int size)
    {
        size--;
        var last = heap[size];
        var i = 0;
        while (true)
        {
            var child = (2 * i) + 1;
            if (child >= size)
            {
                break;
            }

            if (child + 1 < size && heap[child + 1] < heap[child])
            {
                child++;
            }

            if (last <= heap[child])
            {
                break;
            }

            heap[i] = heap[child];
            i = child;
        }

        heap[i] = last;
        return size;
    }

    // Open addressing with linear probing; Fibonacci hashing of the packed pair spreads it over the table (a
    // Dictionary<long, int> hashes a pair as left ^ right, which piles small ids into a few long chains).
    private int RankOf(int left, int right)
    {
        var key = Key(left, right);
        var table = _pairTable;
        var mask = table.Length - 1;
        var i = HashSlot(key, _pairShift);
        while (true)
        {
            ref readonly var entry = ref table[i];
            if (entry.Key == key)
            {
                return entry.Rank;
            }

            if (entry.Key < 0)
            {
                return NoMerge;
            }

            i = (i + 1) & mask;
        }
    }

    private static int HashSlot(long key, int shift) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> shift);

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    private readonly record struct PairEntry(long Key, int Rank);

    /// <summary>Per-thread buffers for the merge; grown on demand, so a cache miss rents nothing.</summary>
    private sealed class Scratch
    {
        // Buffers beyond this many bytes are not kept after use (one huge piece should not pin memory forever).
        private const int MaxKept = 1 << 16;

        [ThreadStatic]
        private static Scratch? t_current;

        private Scratch(int capacity)
        {
            Bytes = new byte[capacity];
            Symbols = new int[capacity];
            Ranks = new int[capacity];
            Ids = new int[capacity];
            Prev = new int[capacity];
            Next = new int[capacity];
            Heap = new long[3 * capacity]; // n-1 initial entries plus at most 2 per merge
        }

        public byte[] Bytes { get; }

        public int[] Symbols { get; }

        public int[] Ranks { get; }

        public int[] Ids { get; }

        public int[] Prev { get; }

        public int[] Next { get; }

        public long[] Heap { get; }

        /// <summary>This thread's buffers, with room for <paramref name="capacity"/> bytes and symbols.</summary>
        public static Scratch For(int capacity)
        {
            var current = t_current;
            if (current is not null && current.Bytes.Length >= capacity)
            {
                return current;
            }

            var size = capacity <= MaxKept ? Math.Max(64, (int)BitOperations.RoundUpToPowerOf2((uint)capacity)) : capacity;
            var created = new Scratch(size);
            if (size <= MaxKept)
            {
                t_current = created;
            }

            return created;
        }
    }
}
