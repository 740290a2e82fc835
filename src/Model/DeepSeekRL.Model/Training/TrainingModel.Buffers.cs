using System.Numerics;

namespace DeepSeekRL.Model.Training;

// The step buffers of TrainingModel: a pool of pinned arrays in size classes, handed out by Alloc, recycled per step
// (and per layer by the backward), reserved for a run's largest batch, let go when unused or when a run ends.

/// <content>Step buffers.</content>
public sealed unsafe partial class TrainingModel
{
    /// <summary>
    /// A pinned buffer of at least <paramref name="length"/> floats, the first <paramref name="length"/> zeroed, from
    /// the step pool. Lengths round up to a size class (1/8 of an octave), and a request no free buffer of its class
    /// can serve takes the smallest free larger one (up to 16× its size), so steps of nearby and of smaller shapes
    /// share buffers: the pool settles at the largest step's set. Every buffer handed out since the previous
    /// <see cref="Forward"/> is recycled at the next one (or earlier, by the backward, once dead). Callers index within
    /// their own length: a buffer may be longer than asked for, and its tail holds stale values.
    /// </summary>
    private float[] Alloc(int length) => Alloc(length, clear: true);

    /// <summary>
    /// <see cref="Alloc(int)"/> without the zeroing, for a buffer its caller writes in full before reading it (a product
    /// with beta 0, a copy, a row-wise softmax): the logits, softmax and their gradients are (B·T, V) and the attention
    /// probabilities (B, H, T, T), and zeroing them cost a tenth of a training step's time.
    /// </summary>
    private float[] AllocUncleared(int length) => Alloc(length, clear: false);

    private float[] Alloc(int length, bool clear)
    {
        length = Math.Max(1, length);
        var size = SizeClass(length);
        float[]? a = null;
        if (_pool.TryGetValue(size, out var free) && free.Count > 0)
        {
            a = free.Pop();
        }
        else
        {
            foreach (var larger in _sizes)
            {
                if (larger > size && larger / 16 <= size && _pool[larger].Count > 0)
                {
                    a = _pool[larger].Pop();
                    break;
                }
            }
        }

        if (a is null)
        {
            a = GC.AllocateArray<float>(size, pinned: true);
        }
        else if (clear)
        {
            a.AsSpan(0, length).Clear();
        }

        _lastUse[a.Length] = _steps;
        _live.Add(a);
        return a;
    }

    /// <summary>
    /// Fills every buffer the model holds (free and in use) with <paramref name="value"/>, for tests: a step after it
    /// that reads a value it did not write (an <see cref="AllocUncleared"/> buffer that is not written in full) sees it.
    /// The last step's activations are lost; the next <see cref="Forward"/> starts a new step as usual.
    /// </summary>
    internal void FillHeldBuffers(float value)
    {
        foreach (var a in _pool.Values.SelectMany(free => free).Concat(_live.OfType<float[]>()))
        {
            a.AsSpan().Fill(value);
        }
    }

    /// <summary>The size class of a length: exact up to 1,024 floats in steps of 64, then 8 classes per octave.</summary>
    internal static int SizeClass(int length)
    {
        if (length <= 1024)
        {
            return (length + 63) & ~63;
        }

        var unit = 1L << (BitOperations.Log2((uint)length) - 3);
        return (int)Math.Min(Array.MaxLength, (length + unit - 1) / unit * unit);
    }

    /// <summary>Returns the step buffers _live[first..end) but <paramref name="keep"/> to the pool before the step ends (they are dead).</summary>
    private void Release(int first, int end, float[]? keep = null)
    {
        for (var i = first; i < end; i++)
        {
            if (_live[i] is { } a && !ReferenceEquals(a, keep))
            {
                Push(a);
                _live[i] = null;
            }
        }
    }

    /// <summary>Returns one dead step buffer to the pool before the step ends.</summary>
    private void Release(float[] a)
    {
        var i = _live.LastIndexOf(a);
        if (i >= 0)
        {
            Push(a);
            _live[i] = null;
        }
    }

    private void Push(float[] a)
    {
        if (!_pool.TryGetValue(a.Length, out var free))
        {
            _pool[a.Length] = free = new Stack<float[]>();
            _sizes.Add(a.Length);
        }

        free.Push(a);
        _lastUse[a.Length] = _steps;
    }

    /// <summary>
    /// Returns every buffer of the previous step to the pool (its activations die with the new forward), and drops the
    /// pooled buffers of every size no step has used in the last <see cref="PoolKeepSteps"/>: batches of varying
    /// shapes (padded to their longest sequence) would otherwise each leave a step's worth of pinned buffers behind.
    /// Dropped buffers are pinned garbage that the GC is slow to find; once they add up, one collection returns them.
    /// </summary>
    private void RecycleStep()
    {
        _steps++;
        foreach (var a in _live)
        {
            if (a is not null)
            {
                Push(a);
            }
        }

        _live.Clear();
        if (_pool.Count > 0 && _steps % PoolKeepSteps == 0)
        {
            foreach (var (length, last) in _lastUse.ToList())
            {
                if (_steps - last >= PoolKeepSteps)
                {
                    if (_pool.Remove(length, out var dropped))
                    {
                        _droppedFloats += (long)length * dropped.Count;
                        _sizes.Remove(length);
                    }

                    _lastUse.Remove(length);
                }
            }
        }

        if (_droppedFloats >= CollectAfterFloats)
        {
            _droppedFloats = 0;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
    }

    /// <summary>
    /// Allocates the step buffers of the largest batch a run will see (<paramref name="batch"/> sequences of
    /// <paramref name="length"/> tokens) by running a forward and a backward of that shape with no target, so that
    /// every later step of that shape or a smaller one takes its buffers from the pool: without it, a run whose
    /// batches grow now and then allocates each new largest set beside the previous one (a full demo's SFT peaked at
    /// 2.0 GB). Changes no weight; the next <see cref="Forward"/> starts a new step as usual.
    /// </summary>
    /// <param name="batch">B, the most sequences of a step.</param>
    /// <param name="length">T, the longest sequence (at least 2).</param>
    /// <param name="mtpWeight">The MTP weight the run's steps use (0 = no MTP module in the step).</param>
    /// <param name="balanceAlpha">The balance-loss α the run's steps use.</param>
    public void Reserve(int batch, int length, float mtpWeight = 0, float balanceAlpha = 0)
    {
        var tokens = new int[batch * length]; // token 0 everywhere, no target weighted
        Forward(tokens, batch, new float[tokens.Length], mtpWeight, balanceAlpha);
        Backward(new Gradients(_c));
    }

    /// <summary>
    /// Lets go of every step buffer (the last forward's activations included) and returns their memory to the system
    /// with one collection: call it when a training run ends, so that the next run's buffers do not come on top of
    /// pinned garbage. The next <see cref="Forward"/> allocates afresh.
    /// </summary>
    public void ReleaseBuffers()
    {
        var held = HeldFloats;
        _pool.Clear();
        _sizes.Clear();
        _lastUse.Clear();
        _live.Clear();
        _h0 = _hL = _rFinal = _z = _logits = _probs = [];
        _b = _t = 0;
        _blocks = [];
        _mtp = null;
        _tokens = [];
        _droppedFloats = 0;
        if (held > 0)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
    }

    /// <summary>The step buffers the model holds, in use or pooled, in floats (for tests and diagnostics).</summary>
    internal long HeldFloats => _pool.Sum(p => (long)p.Key * p.Value.Count) + _live.Sum(a => (long)(a?.Length ?? 0));
}
