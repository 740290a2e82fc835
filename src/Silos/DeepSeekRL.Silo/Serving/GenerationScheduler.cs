using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.Inference;
using DeepSeekRL.Model.Sampling;

namespace DeepSeekRL.Silo.Serving;

// The one thread that runs the model for `serve`: admitted requests take turns slice by slice (at most MaxBatch
// sequences per slice), round-robin, so a small request waits for at most one slice of each request ahead of it,
// not for a huge one to finish. Admission is bounded: beyond MaxQueue requests the caller answers 429.
// Sequence i of a request always draws from SplitMix64.ForSequence(seed, i), so slicing never changes what is sampled.

/// <summary>Runs generation requests on one model, fairly between requests, with a bounded queue. Thread-safe.</summary>
internal sealed class GenerationScheduler : IDisposable
{
    private readonly IPolicySampler _sampler;
    private readonly int _maxQueue;
    private readonly int _maxBatch;
    private readonly LinkedList<Job> _jobs = [];
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _worker;
    private int _admitted;
    private int _running;

    public GenerationScheduler(IPolicySampler sampler, int maxQueue, int maxBatch)
    {
        _sampler = sampler;
        _maxQueue = maxQueue;
        _maxBatch = maxBatch;
        _worker = new Thread(Run) { IsBackground = true, Name = "serve-generation" };
        _worker.Start();
    }

    /// <summary>Requests admitted and not finished (waiting or being generated).</summary>
    public int Admitted => Volatile.Read(ref _admitted);

    /// <summary>Requests of which at least one slice has started.</summary>
    public int Running => Volatile.Read(ref _running);

    /// <summary>
    /// Admits a request, or returns <see langword="null"/> when <c>MaxQueue</c> requests are already admitted.
    /// The task ends with the sequences in prompt order, or is cancelled with <paramref name="cancellationToken"/>.
    /// </summary>
    public Task<GeneratedSequence[]>? TryEnqueue(IReadOnlyList<int[]> prompts, ulong seed, SamplingOptions options, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _admitted) > _maxQueue)
        {
            Interlocked.Decrement(ref _admitted);
            return null;
        }

        var job = new Job(prompts, seed, options, cancellationToken);
        lock (_jobs)
        {
            _jobs.AddLast(job);
        }

        _signal.Release();
        return job.Completion.Task;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _signal.Release();
        _worker.Join();
        _stop.Dispose();
        _signal.Dispose();
    }

    private void Run()
    {
        while (true)
        {
            try
            {
                _signal.Wait(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Job job;
            lock (_jobs)
            {
                job = _jobs.First!.Value;
                _jobs.RemoveFirst();
            }

            if (RunSlice(job))
            {
                Interlocked.Decrement(ref _admitted);
                if (job.Started)
                {
                    Interlocked.Decrement(ref _running);
                }

                continue;
            }

            // Not finished: to the back of the line, behind every request that arrived meanwhile.
            lock (_jobs)
            {
                _jobs.AddLast(job);
            }

            _signal.Release();
        }
    }

    // Runs the job's next slice; true when the job is finished (done, cancelled or failed).
    private bool RunSlice(Job job)
    {
        if (job.CancellationToken.IsCancellationRequested)
        {
            job.Completion.TrySetCanceled(job.CancellationToken);
            return true;
        }

        if (!job.Started)
        {
            job.Started = true;
            Interlocked.Increment(ref _running);
        }

        var first = job.Next;
        var count = Math.Min(_maxBatch, job.Prompts.Count - first);
        var prompts = new int[count][];
        var streams = new (ulong Seed, int Index)[count];
        for (var j = 0; j < count; j++)
        {
            prompts[j] = job.Prompts[first + j];
            streams[j] = (job.Seed, first + j);
        }

        try
        {
            var result = _sampler.Generate(prompts, streams, job.Options, job.CancellationToken);
            for (var j = 0; j < count; j++)
            {
                job.Results[first + j] = result.Sequences[j];
            }
        }
        catch (OperationCanceledException) when (job.CancellationToken.IsCancellationRequested)
        {
            job.Completion.TrySetCanceled(job.CancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A failure belongs to the request that caused it; the worker goes on with the others.
            job.Completion.TrySetException(ex);
            return true;
        }

        job.Next = first + count;
        if (job.Next < job.Prompts.Count)
        {
            return false;
        }

        job.Completion.TrySetResult(job.Results);
        return true;
    }

    private sealed class Job(IReadOnlyList<int[]> prompts, ulong seed, SamplingOptions options, CancellationToken cancellationToken)
    {
        public IReadOnlyList<int[]> Prompts => prompts;

        public ulong Seed => seed;

        public SamplingOptions Options => options;

        public CancellationToken CancellationToken => cancellationToken;

        public GeneratedSequence[] Results { get; } = new GeneratedSequence[prompts.Count];

        public TaskCompletionSource<GeneratedSequence[]> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Next { get; set; }

        public bool Started { get; set; }
    }
}
