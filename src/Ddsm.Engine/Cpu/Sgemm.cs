using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// Single-precision GEMM on row-major arrays: C = alpha·op(A)·op(B) + beta·C, op(A) M×K, op(B) K×N.
/// <para>Shaped after BLIS/GotoBLAS: B is packed into KC×NC blocks of NR-wide column panels (kept in
/// L3, one NR panel hot in L1), A into MC×KC blocks of MR-tall row panels (kept in L2), and a
/// register-blocked MR×NR microkernel streams both panels. Transposes are absorbed by the packing,
/// so the microkernel sees one layout. Edges are zero-padded in the packs and clipped on store.</para>
/// <para>Two SIMD paths, chosen at run time (<see cref="Path"/>): AVX-512 (a 16×16 tile of 16 Vector512
/// accumulators, Sgemm.Avx512.cs) and AVX2/FMA (6×16, 12 Vector256 accumulators + 2 B vectors + 1 broadcast
/// A = 15 of the 16 ymm registers, Sgemm.Avx2.cs), plus a portable fallback. They differ in the A panel
/// height, so a GEMM fixes its path once and packs and computes with it throughout.</para>
/// <para>Beta semantics follow BLAS: beta == 0 overwrites C without reading it (NaN in C is ignored).</para>
/// <para>Packing buffers are the thread's <see cref="Scratch"/>: no allocation per call in steady state.</para>
/// </summary>
public static unsafe partial class Sgemm
{
    /// <summary>NR: every path's B panel width. MR: the A panel height of the AVX2 and portable kernels.</summary>
    public const int MR = 6, NR = 16;
    // KC: one B micro-panel KC×NR×4 B = 24 KiB stays in the 32 KiB L1d (the A panel streams from L2).
    // MC: the A block MC×KC×4 B = 216 KiB sits in the 512 KiB L2.
    // NC: the B block KC×NC×4 B = 6 MiB per thread, inside the shared 32 MiB L3.
    // Tried on the (shared, noisy) Zen 3 dev box, single thread, best of 9: KC 256 vs 384 and MC 72..288
    // within noise on the conv shapes; KC 384 with the C prefetch gave the best 1024³ figure (87 GF/s).
    // MC = 144 is a multiple of both panel heights (6 and 16), so A blocks start on panel boundaries.
    internal const int KC = 384, MC = 144, NC = 4096;

    /// <summary>
    /// The K block length: K is cut into equal blocks of at most KC (576 → 2×288, not 384 + 192), so no
    /// block is a short tail whose C load/store overhead is paid on little work. Multiple of 8.
    /// </summary>
    internal static int KcStep(int k)
    {
        int blocks = (k + KC - 1) / KC;
        return Math.Min(KC, RoundUp((k + blocks - 1) / Math.Max(blocks, 1), 8));
    }

    /// <summary>The best path this machine (and the runtime's settings, e.g. DOTNET_EnableAVX512=0) allows.</summary>
    public static SgemmPath BestPath { get; } =
        Avx512F.IsSupported && Vector512.IsHardwareAccelerated ? SgemmPath.Avx512
        : Fma.IsSupported && Avx2.IsSupported ? SgemmPath.Avx2 : SgemmPath.Portable;

    /// <summary>
    /// Caps the path below <see cref="BestPath"/> (null: no cap). Tests and benchmarks use it to run the AVX2
    /// and portable paths in the same process as the AVX-512 one. Read once per GEMM call.
    /// </summary>
    internal static SgemmPath? Cap { get; set; }

    /// <summary>The path a GEMM started now runs on.</summary>
    public static SgemmPath Path => Cap is { } cap && cap < BestPath ? cap : BestPath;

    /// <summary>Pack B panel by panel where A is packed first (CorePanelWise); off only to time the old way.</summary>
    internal static bool PackBPerPanel { get; set; } = true;

    /// <summary>The A panel height of a path.</summary>
    internal static int PanelHeight(SgemmPath path) => path == SgemmPath.Avx512 ? MR512 : MR;

    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, long offA, int lda, float[] b, long offB, int ldb, float beta, float[] c, long offC, int ldc)
    {
        Validate(transA, transB, m, n, k, a, offA, lda, b, offB, ldb, c, offC, ldc);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a, pb = b, pc = c)
        {
            var packB = new StridedPackB(transB, pb + offB, ldb);
            Core(Path, transA, m, n, k, alpha, pa + offA, lda, null, ref packB, beta, pc + offC, ldc);
        }
    }

    /// <summary><see cref="Run"/> on raw pointers (the caller owns the bounds), single-threaded.</summary>
    internal static void Run(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b,
        int ldb, float beta, float* c, int ldc)
    {
        if (m == 0 || n == 0) return;
        var packB = new StridedPackB(transB, b, ldb);
        Core(Path, transA, m, n, k, alpha, a, lda, null, ref packB, beta, c, ldc);
    }

    /// <summary>Fills packed B panels: op(B)[pc:pc+kc, jc:jc+nc] as NR-column panels of kc rows × NR values.</summary>
    internal interface IPackB
    {
        void Pack(SgemmPath path, int pc, int kc, int jc, int nc, float* dst);
    }

    /// <summary>B read from a (possibly transposed) row-major matrix.</summary>
    internal readonly struct StridedPackB(bool transB, float* b, int ldb) : IPackB
    {
        public void Pack(SgemmPath path, int pc, int kc, int jc, int nc, float* dst) =>
            PackB(path, transB, b, ldb, pc, kc, jc, nc, dst);
    }

    /// <summary>
    /// C = alpha·op(A)·B + beta·C where B is produced panel by panel by <paramref name="packB"/>
    /// (a struct, so the JIT specialises the loop nest for it): convolutions pack straight from the
    /// image, fusing im2col into the packing pass.
    /// </summary>
    internal static void RunPacked<TPackB>(PackedA packedA, int m, int n, int k, float alpha,
        ref TPackB packB, float beta, float* c, int ldc) where TPackB : struct, IPackB
    {
        if (m == 0 || n == 0) return;
        Core(packedA.Path, false, m, n, k, alpha, null, 0, (float*)packedA.Data, ref packB, beta, c, ldc);
    }

    /// <summary>A whole op(A) packed by <see cref="PackWholeA"/>, and the path whose panel height it has.</summary>
    internal readonly record struct PackedA(nint Data, SgemmPath Path);

    /// <summary>
    /// Packs all of op(A) (M×K) once, KC block after KC block, in the layout the loop nest reads
    /// (block (pc, ic) at pc·RoundUp(M, MR) + ic·kc). A convolution packs its weight this way once
    /// and reuses it for every image, instead of repacking it per GEMM. Returns the packed pointer: this
    /// thread's <see cref="Scratch.Use.ConvWeight"/>, valid until its next take.
    /// </summary>
    internal static PackedA PackWholeA(bool transA, float* a, int lda, int m, int k)
    {
        var path = Path;
        int mr = RoundUp(m, PanelHeight(path));
        float* p = Scratch.TakeAligned(Scratch.Use.ConvWeight, (long)mr * k);
        int kcStep = KcStep(k);
        for (int pc = 0; pc < k; pc += kcStep)
            PackA(path, transA, a, lda, 0, m, pc, Math.Min(kcStep, k - pc), p + (long)pc * mr);
        return new PackedA((nint)p, path);
    }

    /// <summary>
    /// One big GEMM over <paramref name="threads"/> threads: C is cut into column strips (or row strips
    /// when N is narrow), each a single-threaded <see cref="Run"/> with its own packs. Strips are
    /// disjoint, so the result does not depend on scheduling.
    /// </summary>
    public static void RunParallel(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, long offA, int lda, float[] b, long offB, int ldb, float beta, float[] c, long offC, int ldc,
        int threads)
    {
        Validate(transA, transB, m, n, k, a, offA, lda, b, offB, ldb, c, offC, ldc);
        if (m == 0 || n == 0) return;
        // Below ~2 MFLOP the fork/join costs more than it saves.
        if (threads <= 1 || 2L * m * n * k < 2_000_000)
        {
            Run(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc);
            return;
        }
        bool splitN = n >= m || n >= threads * NR * 4;
        int mr = PanelHeight(Path);
        int units = splitN ? (n + NR - 1) / NR : (m + mr - 1) / mr;
        int unit = splitN ? NR : mr;
        int parts = Math.Min(threads, units);
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = threads }, p =>
        {
            int lo = (int)((long)units * p / parts) * unit;
            int hi = Math.Min(splitN ? n : m, (int)((long)units * (p + 1) / parts) * unit);
            if (lo >= hi) return;
            if (splitN)
                Run(transA, transB, m, hi - lo, k, alpha, a, offA, lda,
                    b, offB + (transB ? (long)lo * ldb : lo), ldb, beta, c, offC + lo, ldc);
            else
                Run(transA, transB, hi - lo, n, k, alpha, a, offA + (transA ? lo : (long)lo * lda), lda,
                    b, offB, ldb, beta, c, offC + (long)lo * ldc, ldc);
        });
    }

    private static void Validate(bool transA, bool transB, int m, int n, int k,
        float[] a, long offA, int lda, float[] b, long offB, int ldb, float[] c, long offC, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"sgemm: negative size m={m} n={n} k={k}");
        int aCols = transA ? m : k, aRows = transA ? k : m;
        int bCols = transB ? k : n, bRows = transB ? n : k;
        if (lda < Math.Max(1, aCols) || ldb < Math.Max(1, bCols) || ldc < Math.Max(1, n))
            throw new ArgumentException($"sgemm: leading dimension too small (lda={lda} for {aCols} cols, ldb={ldb} " +
                                        $"for {bCols}, ldc={ldc} for {n})");
        static void Fits(string what, float[] x, long off, int rows, int cols, int ld)
        {
            if (rows == 0 || cols == 0) return;
            long last = off + (long)(rows - 1) * ld + cols;
            if (off < 0 || last > x.Length)
                throw new ArgumentException(
                    $"sgemm: {what} ({rows}×{cols}, ld {ld}, offset {off}) overruns its array of {x.Length}");
        }
        Fits("A", a, offA, aRows, aCols, lda);
        Fits("B", b, offB, bRows, bCols, ldb);
        Fits("C", c, offC, m, n, ldc);
    }

    private static void Core<TPackB>(SgemmPath path, bool transA, int m, int n, int k, float alpha,
        float* a, int lda, float* packedA, ref TPackB packB, float beta, float* c, int ldc)
        where TPackB : struct, IPackB
    {
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        int mrTile = PanelHeight(path);
        int kcStep = KcStep(k);
        float* edge = stackalloc float[MR * NR];
        if ((packedA != null || m <= MC) && PackBPerPanel)
        {
            CorePanelWise(path, transA, m, n, k, kcStep, alpha, a, lda, packedA, ref packB, beta, c, ldc, edge);
            return;
        }
        int ncMax = Math.Min(NC, RoundUp(n, NR));
        float* pB = Scratch.TakeAligned(Scratch.Use.GemmB, (long)kcStep * ncMax);
        float* pA = Scratch.TakeAligned(Scratch.Use.GemmA, (long)Math.Min(MC, RoundUp(m, mrTile)) * kcStep);

        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            for (int pc = 0; pc < k; pc += kcStep)
            {
                int kc = Math.Min(kcStep, k - pc);
                float betaEff = pc == 0 ? beta : 1f;
                packB.Pack(path, pc, kc, jc, nc, pB);
                for (int ic = 0; ic < m; ic += MC)
                {
                    int mc = Math.Min(MC, m - ic);
                    float* aBlock = pA;
                    if (packedA != null) aBlock = packedA + (long)pc * RoundUp(m, mrTile) + (long)ic * kc;
                    else PackA(path, transA, a, lda, ic, mc, pc, kc, pA);
                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int nr = Math.Min(NR, nc - jr);
                        float* bPanel = pB + (long)jr * kc;
                        for (int ir = 0; ir < mc; ir += mrTile)
                        {
                            int mr = Math.Min(mrTile, mc - ir);
                            float* cTile = c + (long)(ic + ir) * ldc + jc + jr;
                            float* aPanel = aBlock + (long)ir * kc;
                            MicroTile(path, kc, aPanel, bPanel, cTile, ldc, alpha, betaEff, mr, nr, edge);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs B one NR panel at a time, just before the tiles that use it, instead of a whole KC×NC block first.
    /// Applies when all of A's rows are packed for the K block before the panels (a pre-packed A, or M ≤ MC):
    /// then the panel (≤ 24 KiB) is consumed from L1 right after it is written, where a block of KC×NC went out
    /// to L3 and came back; that round trip dominated the narrow GEMMs (a ¼-width conv has M = 16: one tile of
    /// FMAs per packed panel).
    /// </summary>
    private static void CorePanelWise<TPackB>(SgemmPath path, bool transA, int m, int n, int k, int kcStep,
        float alpha, float* a, int lda, float* packedA, ref TPackB packB, float beta, float* c, int ldc, float* edge)
        where TPackB : struct, IPackB
    {
        int mrTile = PanelHeight(path), mPadded = RoundUp(m, mrTile);
        float* pB = Scratch.TakeAligned(Scratch.Use.GemmB, (long)kcStep * NR);
        float* pA = packedA != null ? null : Scratch.TakeAligned(Scratch.Use.GemmA, (long)mPadded * kcStep);
        for (int pc = 0; pc < k; pc += kcStep)
        {
            int kc = Math.Min(kcStep, k - pc);
            float betaEff = pc == 0 ? beta : 1f;
            float* aBlock = packedA != null ? packedA + (long)pc * mPadded : pA;
            if (packedA == null) PackA(path, transA, a, lda, 0, m, pc, kc, pA);
            for (int jr = 0; jr < n; jr += NR)
            {
                int nr = Math.Min(NR, n - jr);
                packB.Pack(path, pc, kc, jr, nr, pB);
                for (int ir = 0; ir < m; ir += mrTile)
                {
                    int mr = Math.Min(mrTile, m - ir);
                    MicroTile(path, kc, aBlock + (long)ir * kc, pB, c + (long)ir * ldc + jr, ldc, alpha, betaEff,
                        mr, nr, edge);
                }
            }
        }
    }

    /// <summary>One mr×nr tile of C on the path's microkernel; <paramref name="edge"/>: MR×NR scratch.</summary>
    private static void MicroTile(SgemmPath path, int kc, float* a, float* b, float* c, long ldc, float alpha,
        float beta, int mr, int nr, float* edge)
    {
        if (path == SgemmPath.Avx512)
        {
            Kernel16x16(kc, a, b, c, ldc, alpha, beta, mr, nr);
            return;
        }
        bool avx2 = path == SgemmPath.Avx2;
        if (mr == MR && nr == NR)
        {
            if (avx2) Kernel6x16(kc, a, b, c, ldc, alpha, beta);
            else KernelPortable(kc, a, b, c, ldc, alpha, beta, MR, NR);
            return;
        }
        // Edge tile: compute the whole padded tile (4 rows where that covers it) into scratch, store the valid part.
        if (avx2 && mr <= 4 && Edge4On) Kernel4x16(kc, a, new PackedRows256(b), edge, NR, 1f, 0f);
        else if (avx2) Kernel6x16(kc, a, b, edge, NR, 1f, 0f);
        else KernelPortable(kc, a, b, edge, NR, 1f, 0f, MR, NR);
        StoreEdge(edge, c, ldc, mr, nr, alpha, beta);
    }

    /// <summary>C[0:mr, 0:nr] = alpha·edge + beta·C, from a tile computed whole into <paramref name="edge"/> (MR×NR).
    /// </summary>
    internal static void StoreEdge(float* edge, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++)
        {
            float* cp = c + r * ldc + j;
            float v = alpha * edge[r * NR + j];
            *cp = beta == 0f ? v : v + beta * *cp;
        }
    }

    internal static int RoundUp(int x, int q) => (x + q - 1) / q * q;

    private static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }
}

/// <summary>The SIMD path of <see cref="Sgemm"/>, in increasing order of width.</summary>
public enum SgemmPath { Portable, Avx2, Avx512 }
