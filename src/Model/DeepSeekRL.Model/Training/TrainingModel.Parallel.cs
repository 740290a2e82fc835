using DeepSeekRL.Model.Kernels;

namespace DeepSeekRL.Model.Training;

// How the training pass spreads work over its threads: attention per (sequence, head), row ranges, routed experts;
// OpenBLAS runs single-threaded inside each parallel region.

public sealed unsafe partial class TrainingModel
{
    /// <summary>
    /// Runs <paramref name="body"/> for every (sequence, head) pair: on parallel .NET threads with single-threaded BLAS
    /// when there are several pairs and threads (each pair writes disjoint slices), else in order on this thread.
    /// </summary>
    private void ForEachSequenceHead(int batch, Action<int, int> body)
    {
        var pairs = batch * _h;
        if (_threads > 1 && pairs > 1)
        {
            Blas.BeginManagedParallel();
            try
            {
                Parallel.For(0, pairs, new ParallelOptions { MaxDegreeOfParallelism = _threads }, x => body(x / _h, x % _h));
            }
            finally
            {
                Blas.EndManagedParallel();
            }

            return;
        }

        for (var x = 0; x < pairs; x++)
        {
            body(x / _h, x % _h);
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/>(first, end) over [0, <paramref name="rows"/>) split into one contiguous range per
    /// thread (OpenBLAS single-threaded meanwhile), so that row-wise work uses the cores the matrix products use. Each
    /// row's arithmetic does not depend on the split: results are the same for any thread count.
    /// </summary>
    private void ForRows(int rows, Action<int, int> body)
    {
        var parts = Math.Min(_threads, rows / 64);
        if (parts < 2)
        {
            body(0, rows);
            return;
        }

        Blas.BeginManagedParallel();
        try
        {
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p => body((int)((long)rows * p / parts), (int)((long)rows * (p + 1) / parts)));
        }
        finally
        {
            Blas.EndManagedParallel();
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/>(expert) for every routed expert, experts spread over the training's threads (each
    /// expert's small matrix products single-threaded meanwhile: they are too small for OpenBLAS to split). An expert's
    /// arithmetic does not depend on where it runs.
    /// </summary>
    private void ForEachExpert(Action<int> body)
    {
        if (_threads < 2)
        {
            for (var e = 0; e < _e; e++)
            {
                body(e);
            }

            return;
        }

        Blas.BeginManagedParallel();
        try
        {
            Parallel.For(0, _e, new ParallelOptions { MaxDegreeOfParallelism = _threads }, body);
        }
        finally
        {
            Blas.EndManagedParallel();
        }
    }
}
