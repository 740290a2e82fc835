using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace DeepSeekRL.Model.Kernels;

// SGEMM through OpenBLAS (Debian libopenblas0-pthread, libopenblas.so.0) by P/Invoke, row-major only.
// It is not a BLAS binding: only the calls the engine needs, with the thread count and core type set once.

/// <summary>Row-major single-precision matrix products through OpenBLAS.</summary>
/// <remarks>
/// OpenBLAS reads <c>OPENBLAS_CORETYPE</c> when the library loads. On Zen 4/5 its auto-detection can fall back to a
/// slow kernel, so on a CPU with the AVX-512 subset of those kernels the first use sets it to <c>SkylakeX</c> in the
/// native environment when absent (the launcher exports it too); on any other CPU OpenBLAS's own detection stays
/// (SkylakeX kernels die of SIGILL there). The thread count is process-wide (<see cref="SetThreads"/>); it is not thread-safe to
/// change it while products run.
/// </remarks>
public static unsafe partial class Blas
{
    private const string Library = "libopenblas.so.0";
    private const int RowMajor = 101;
    private const int NoTrans = 111;
    private const int Trans = 112;
    private static int _initialised;
    private static int _maxThreads = 1;
    private static int _currentThreads = -1;
    private static volatile bool _capped;

    /// <summary>
    /// Products with fewer multiply-adds than this run on one OpenBLAS thread: waking a second thread costs more than
    /// it saves on decode-sized products, and far more when the cores are shared (measured: 7x slower decode at load 9).
    /// </summary>
    public const long ParallelThreshold = 1L << 22;

    /// <summary>
    /// The environment variable naming the OpenBLAS library to load instead of <c>libopenblas.so.0</c> (a soname or a
    /// path); the launcher's prerequisite check (infra/prerequisites.sh) looks for the same library.
    /// </summary>
    public const string LibraryVariable = "DEEPSEEKRL_OPENBLAS";

    static Blas() => NativeLibrary.SetDllImportResolver(typeof(Blas).Assembly, Resolve);

    /// <summary>
    /// The core type forced when <c>OPENBLAS_CORETYPE</c> is not set: <c>SkylakeX</c> on a CPU with AVX-512 F, CD, BW,
    /// DQ and VL, else <see langword="null"/> (OpenBLAS detects the core itself).
    /// </summary>
    public static string? DefaultCoreType { get; } =
        Avx512F.IsSupported && Avx512CD.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported
            ? "SkylakeX"
            : null;

    /// <summary>Sets the core type (if absent) before the library loads, and the OpenBLAS thread count.</summary>
    /// <param name="threads">OpenBLAS threads (at least 1).</param>
    public static void SetThreads(int threads)
    {
        EnsureLoaded();
        _maxThreads = Math.Max(1, threads);
        _currentThreads = _maxThreads;
        openblas_set_num_threads(_maxThreads);
    }

    /// <summary>
    /// Runs every product on one OpenBLAS thread until <see cref="EndManagedParallel"/>: while .NET threads call BLAS
    /// concurrently, OpenBLAS's own pool would oversubscribe the cores.
    /// </summary>
    public static void BeginManagedParallel()
    {
        EnsureLoaded();
        _capped = true;
        openblas_set_num_threads(1);
        _currentThreads = 1;
    }

    /// <summary>Ends <see cref="BeginManagedParallel"/>.</summary>
    public static void EndManagedParallel() => _capped = false;

    /// <summary>The OpenBLAS thread count set by <see cref="SetThreads"/> (used for large products).</summary>
    public static int MaxThreads => _maxThreads;

    /// <summary>The OpenBLAS thread count.</summary>
    /// <returns>The count.</returns>
    public static int GetThreads()
    {
        EnsureLoaded();
        return openblas_get_num_threads();
    }

    /// <summary>The core type OpenBLAS selected (for example <c>SkylakeX</c>).</summary>
    /// <returns>The name.</returns>
    public static string CoreName()
    {
        EnsureLoaded();
        return Marshal.PtrToStringAnsi(openblas_get_corename()) ?? "?";
    }

    /// <summary>Makes sure <c>OPENBLAS_CORETYPE</c> is set in the native environment; idempotent.</summary>
    public static void EnsureLoaded()
    {
        if (Interlocked.Exchange(ref _initialised, 1) == 1)
        {
            return;
        }

        // Environment.SetEnvironmentVariable does not reach the native environ on Linux; setenv does.
        if (DefaultCoreType is not null && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE")))
        {
            _ = setenv("OPENBLAS_CORETYPE", DefaultCoreType, 0);
            Environment.SetEnvironmentVariable("OPENBLAS_CORETYPE", DefaultCoreType);
        }
    }

    /// <summary>C (M,N) = alpha·A (M,K) · B(N,K)ᵀ + beta·C: the linear layer y = x Wᵀ with W stored [out, in].</summary>
    /// <param name="m">Rows of A and C.</param>
    /// <param name="n">Rows of B, columns of C.</param>
    /// <param name="k">The inner dimension.</param>
    /// <param name="a">A, leading dimension <paramref name="lda"/>.</param>
    /// <param name="lda">Leading dimension of A.</param>
    /// <param name="b">B, leading dimension <paramref name="ldb"/>.</param>
    /// <param name="ldb">Leading dimension of B.</param>
    /// <param name="c">C, leading dimension <paramref name="ldc"/>.</param>
    /// <param name="ldc">Leading dimension of C.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="beta">Scale of the old C (0 overwrites).</param>
    public static void GemmNT(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, float alpha = 1f, float beta = 0f)
    {
        if (m == 0 || n == 0)
        {
            return;
        }

        UseThreads((long)m * n * k);
        if (m == 1)
        {
            // y = B x: one row is a matrix-vector product (sgemv avoids sgemm's packing). Some OpenBLAS versions scale
            // y by beta even when it is 0 (NaN · 0 stays NaN), and a caller's y may hold stale values: overwrite means clear.
            ClearIfOverwriting(c, n, beta);
            cblas_sgemv(RowMajor, NoTrans, n, k, alpha, b, ldb, a, 1, beta, c, 1);
            return;
        }

        cblas_sgemm(RowMajor, NoTrans, Trans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    /// <summary>C (M,N) = alpha·A (M,K) · B (K,N) + beta·C.</summary>
    /// <param name="m">Rows of A and C.</param>
    /// <param name="n">Columns of B and C.</param>
    /// <param name="k">The inner dimension.</param>
    /// <param name="a">A, leading dimension <paramref name="lda"/>.</param>
    /// <param name="lda">Leading dimension of A.</param>
    /// <param name="b">B, leading dimension <paramref name="ldb"/>.</param>
    /// <param name="ldb">Leading dimension of B.</param>
    /// <param name="c">C, leading dimension <paramref name="ldc"/>.</param>
    /// <param name="ldc">Leading dimension of C.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="beta">Scale of the old C (0 overwrites).</param>
    public static void GemmNN(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, float alpha = 1f, float beta = 0f)
    {
        if (m == 0 || n == 0)
        {
            return;
        }

        UseThreads((long)m * n * k);
        if (m == 1)
        {
            // y = Bᵀ x.
            ClearIfOverwriting(c, n, beta);
            cblas_sgemv(RowMajor, Trans, k, n, alpha, b, ldb, a, 1, beta, c, 1);
            return;
        }

        cblas_sgemm(RowMajor, NoTrans, NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    private static void ClearIfOverwriting(float* y, int n, float beta)
    {
        if (beta == 0)
        {
            new Span<float>(y, n).Clear();
        }
    }

    private static void UseThreads(long work)
    {
        var wanted = _capped || work < ParallelThreshold ? 1 : _maxThreads;
        if (wanted != _currentThreads)
        {
            EnsureLoaded();
            openblas_set_num_threads(wanted);
            _currentThreads = wanted;
        }
    }

    private static nint Resolve(string name, System.Reflection.Assembly assembly, DllImportSearchPath? searchPath) =>
        name == Library && Environment.GetEnvironmentVariable(LibraryVariable) is { Length: > 0 } chosen
            ? NativeLibrary.Load(chosen, assembly, searchPath)
            : 0; // the default probing

    [LibraryImport(Library)]
    private static partial void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Library)]
    private static partial void cblas_sgemv(int order, int trans, int m, int n, float alpha, float* a, int lda, float* x, int incx, float beta, float* y, int incy);

    [LibraryImport(Library)]
    private static partial void openblas_set_num_threads(int threads);

    [LibraryImport(Library)]
    private static partial int openblas_get_num_threads();

    [LibraryImport(Library)]
    private static partial nint openblas_get_corename();

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
