using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// Single-precision GEMM on row-major arrays: C = alpha·op(A)·op(B) + beta·C, op(A) M×K, op(B) K×N.
/// <para>Shaped after BLIS/GotoBLAS: B is packed into KC×NC blocks of NR-wide column panels (kept in
/// L3, one NR panel hot in L1), A into MC×KC blocks of MR-tall row panels (kept in L2), and a
/// register-blocked MR×NR microkernel streams both panels with 12 Vector256 accumulators (6 rows ×
/// 16 columns: 12 accumulators + 2 B vectors + 1 broadcast A = 15 of the 16 ymm registers, and 12
/// independent FMA chains hide the FMA latency on two pipes). Transposes are absorbed by the packing,
/// so the microkernel sees one layout. Edges are zero-padded in the packs and clipped on store.</para>
/// <para>Beta semantics follow BLAS: beta == 0 overwrites C without reading it (NaN in C is ignored).</para>
/// <para>Packing buffers are the thread's <see cref="Scratch"/>: no allocation per call in steady state.</para>
/// </summary>
public static unsafe class Sgemm
{
    public const int MR = 6, NR = 16;
    // KC: one B micro-panel KC×NR×4 B = 24 KiB stays in the 32 KiB L1d (the A panel streams from L2).
    // MC: the A block MC×KC×4 B = 216 KiB sits in the 512 KiB L2.
    // NC: the B block KC×NC×4 B = 6 MiB per thread, inside the shared 32 MiB L3.
    // Tried on the (shared, noisy) Zen 3 dev box, single thread, best of 9: KC 256 vs 384 and MC 72..288
    // within noise on the conv shapes; KC 384 with the C prefetch gave the best 1024³ figure (87 GF/s).
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

    /// <summary>Forces the portable (non-AVX2) microkernel; tests use it to cover the fallback path.</summary>
    internal static bool ForcePortable { get; set; }

    public static bool UsesAvx2Fma => !ForcePortable && Fma.IsSupported && Avx2.IsSupported;

    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, long offA, int lda, float[] b, long offB, int ldb, float beta, float[] c, long offC, int ldc)
    {
        Validate(transA, transB, m, n, k, a, offA, lda, b, offB, ldb, c, offC, ldc);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a, pb = b, pc = c)
        {
            var packB = new StridedPackB(transB, pb + offB, ldb);
            Core(transA, m, n, k, alpha, pa + offA, lda, null, ref packB, beta, pc + offC, ldc);
        }
    }

    /// <summary>Fills packed B panels: op(B)[pc:pc+kc, jc:jc+nc] as NR-column panels of kc rows × NR values.</summary>
    internal interface IPackB
    {
        void Pack(int pc, int kc, int jc, int nc, float* dst);
    }

    /// <summary>B read from a (possibly transposed) row-major matrix.</summary>
    internal readonly struct StridedPackB(bool transB, float* b, int ldb) : IPackB
    {
        public void Pack(int pc, int kc, int jc, int nc, float* dst) => PackB(transB, b, ldb, pc, kc, jc, nc, dst);
    }

    /// <summary>
    /// C = alpha·op(A)·B + beta·C where B is produced panel by panel by <paramref name="packB"/>
    /// (a struct, so the JIT specialises the loop nest for it): convolutions pack straight from the
    /// image, fusing im2col into the packing pass.
    /// </summary>
    internal static void RunPacked<TPackB>(float* packedA, int m, int n, int k, float alpha,
        ref TPackB packB, float beta, float* c, int ldc) where TPackB : struct, IPackB
    {
        if (m == 0 || n == 0) return;
        Core(false, m, n, k, alpha, null, 0, packedA, ref packB, beta, c, ldc);
    }

    /// <summary>
    /// Packs all of op(A) (M×K) once, KC block after KC block, in the layout the loop nest reads
    /// (block (pc, ic) at pc·RoundUp(M, MR) + ic·kc). A convolution packs its weight this way once
    /// and reuses it for every image, instead of repacking it per GEMM. Returns the packed pointer: this
    /// thread's <see cref="Scratch.Use.ConvWeight"/>, valid until its next take.
    /// </summary>
    internal static float* PackWholeA(bool transA, float* a, int lda, int m, int k)
    {
        int mr = RoundUp(m, MR);
        float* p = Scratch.TakeAligned(Scratch.Use.ConvWeight, (long)mr * k);
        int kcStep = KcStep(k);
        for (int pc = 0; pc < k; pc += kcStep)
            PackA(transA, a, lda, 0, m, pc, Math.Min(kcStep, k - pc), p + (long)pc * mr);
        return p;
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
        int units = splitN ? (n + NR - 1) / NR : (m + MR - 1) / MR;
        int unit = splitN ? NR : MR;
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

    private static void Core<TPackB>(bool transA, int m, int n, int k, float alpha,
        float* a, int lda, float* packedA, ref TPackB packB, float beta, float* c, int ldc) where TPackB : struct,
        IPackB
    {
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        int ncMax = Math.Min(NC, RoundUp(n, NR));
        int kcStep = KcStep(k);
        float* pB = Scratch.TakeAligned(Scratch.Use.GemmB, (long)kcStep * ncMax);
        float* pA = Scratch.TakeAligned(Scratch.Use.GemmA, (long)Math.Min(MC, RoundUp(m, MR)) * kcStep);
        bool avx = UsesAvx2Fma;
        float* edge = stackalloc float[MR * NR];

        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            for (int pc = 0; pc < k; pc += kcStep)
            {
                int kc = Math.Min(kcStep, k - pc);
                float betaEff = pc == 0 ? beta : 1f;
                packB.Pack(pc, kc, jc, nc, pB);
                for (int ic = 0; ic < m; ic += MC)
                {
                    int mc = Math.Min(MC, m - ic);
                    float* aBlock = pA;
                    if (packedA != null) aBlock = packedA + (long)pc * RoundUp(m, MR) + (long)ic * kc;
                    else PackA(transA, a, lda, ic, mc, pc, kc, pA);
                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int nr = Math.Min(NR, nc - jr);
                        float* bPanel = pB + (long)jr * kc;
                        for (int ir = 0; ir < mc; ir += MR)
                        {
                            int mr = Math.Min(MR, mc - ir);
                            float* aPanel = aBlock + (long)ir * kc;
                            float* cTile = c + (long)(ic + ir) * ldc + jc + jr;
                            if (mr == MR && nr == NR)
                            {
                                if (avx) Kernel6x16(kc, aPanel, bPanel, cTile, ldc, alpha, betaEff);
                                else KernelPortable(kc, aPanel, bPanel, cTile, ldc, alpha, betaEff, MR, NR);
                            }
                            else
                            {
                                // Edge tile: compute the whole padded tile into scratch, store the valid part.
                                if (avx) Kernel6x16(kc, aPanel, bPanel, edge, NR, 1f, 0f);
                                else KernelPortable(kc, aPanel, bPanel, edge, NR, 1f, 0f, MR, NR);
                                for (int r = 0; r < mr; r++)
                                for (int j = 0; j < nr; j++)
                                {
                                    float* cp = cTile + (long)r * ldc + j;
                                    float v = alpha * edge[r * NR + j];
                                    *cp = betaEff == 0f ? v : v + betaEff * *cp;
                                }
                            }
                        }
                    }
                }
            }
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

    /// <summary>
    /// Packs op(A)[ic:ic+mc, pc:pc+kc] into MR-row panels, each kc steps of MR contiguous values
    /// (rows past mc are zero so the microkernel never branches).
    /// </summary>
    private static void PackA(bool transA, float* a, int lda, int ic, int mc, int pc, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* d = dst + (long)ir * kc;
            if (transA)
            {
                // op(A)(i, p) = a[p·lda + i]: MR values of one stored row per step.
                float* s = a + (long)pc * lda + ic + ir;
                for (int p = 0; p < kc; p++, s += lda, d += MR)
                {
                    int r = 0;
                    for (; r < mr; r++) d[r] = s[r];
                    for (; r < MR; r++) d[r] = 0f;
                }
            }
            else
            {
                // op(A)(i, p) = a[i·lda + p]: walk MR stored rows in lockstep.
                int r = 0;
                for (; r < mr; r++)
                {
                    float* s = a + (long)(ic + ir + r) * lda + pc;
                    float* dd = d + r;
                    for (int p = 0; p < kc; p++) dd[p * MR] = s[p];
                }
                for (; r < MR; r++)
                    for (int p = 0; p < kc; p++) d[p * MR + r] = 0f;
            }
        }
    }

    /// <summary>Packs op(B)[pc:pc+kc, jc:jc+nc] into NR-column panels, each kc rows of NR contiguous values.</summary>
    private static void PackB(bool transB, float* b, int ldb, int pc, int kc, int jc, int nc, float* dst)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* d = dst + (long)jr * kc;
            if (!transB)
            {
                float* s = b + (long)pc * ldb + jc + jr;
                if (nr == NR && Vector256.IsHardwareAccelerated)
                {
                    for (int p = 0; p < kc; p++, s += ldb, d += NR)
                    {
                        Vector256.Store(Vector256.Load(s), d);
                        Vector256.Store(Vector256.Load(s + 8), d + 8);
                    }
                }
                else
                {
                    for (int p = 0; p < kc; p++, s += ldb, d += NR)
                    {
                        int j = 0;
                        for (; j < nr; j++) d[j] = s[j];
                        for (; j < NR; j++) d[j] = 0f;
                    }
                }
            }
            else
            {
                // op(B)(p, j) = b[j·ldb + p]: each stored row is one packed column. Full 8×8 blocks
                // go through an in-register transpose; the rest element by element.
                int p0 = 0;
                if (Avx.IsSupported && !ForcePortable && nr == NR)
                {
                    for (; p0 + 8 <= kc; p0 += 8)
                        for (int jb = 0; jb < NR; jb += 8)
                            Transpose8x8(b + (long)(jc + jr + jb) * ldb + pc + p0, ldb, d + p0 * NR + jb, NR);
                }
                int j = 0;
                for (; j < nr; j++)
                {
                    float* s = b + (long)(jc + jr + j) * ldb + pc;
                    float* dd = d + j;
                    for (int p = p0; p < kc; p++) dd[p * NR] = s[p];
                }
                for (; j < NR; j++)
                    for (int p = 0; p < kc; p++) d[p * NR + j] = 0f;
            }
        }
    }

    /// <summary>dst[i·ldd + j] = src[j·lds + i] for an 8×8 block (AVX unpack/shuffle/permute network).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* src, long lds, float* dst, long ldd)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + lds);
        var r2 = Avx.LoadVector256(src + 2 * lds); var r3 = Avx.LoadVector256(src + 3 * lds);
        var r4 = Avx.LoadVector256(src + 4 * lds); var r5 = Avx.LoadVector256(src + 5 * lds);
        var r6 = Avx.LoadVector256(src + 6 * lds); var r7 = Avx.LoadVector256(src + 7 * lds);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>
    /// C[6×16] = alpha·Σ_p a[p,0:6]ᵀ·b[p,0:16] + beta·C. a: kc×6 packed, b: kc×16 packed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(int kc, float* a, float* b, float* c, long ldc, float alpha, float beta)
    {
        // C is touched only after the k loop: prefetch its 6 rows now so a tile that lives in L3 (big
        // GEMMs) arrives while the FMAs run instead of stalling the stores.
        if (Sse.IsSupported)
            for (int r = 0; r < MR; r++)
            {
                Sse.Prefetch0(c + r * ldc);
                Sse.Prefetch0(c + r * ldc + 15);
            }
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        int p = 0;
        // Unrolled by two: halves the loop overhead against 24 FMAs per trip.
        for (; p + 1 < kc; p += 2, a += 2 * MR, b += 2 * NR)
        {
            var b0 = Avx.LoadVector256(b); var b1 = Avx.LoadVector256(b + 8);
            var av = Avx.BroadcastScalarToVector256(a);
            c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Avx.BroadcastScalarToVector256(a + 1);
            c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Avx.BroadcastScalarToVector256(a + 2);
            c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Avx.BroadcastScalarToVector256(a + 3);
            c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            av = Avx.BroadcastScalarToVector256(a + 4);
            c40 = Fma.MultiplyAdd(av, b0, c40); c41 = Fma.MultiplyAdd(av, b1, c41);
            av = Avx.BroadcastScalarToVector256(a + 5);
            c50 = Fma.MultiplyAdd(av, b0, c50); c51 = Fma.MultiplyAdd(av, b1, c51);

            b0 = Avx.LoadVector256(b + 16); b1 = Avx.LoadVector256(b + 24);
            av = Avx.BroadcastScalarToVector256(a + 6);
            c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Avx.BroadcastScalarToVector256(a + 7);
            c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Avx.BroadcastScalarToVector256(a + 8);
            c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Avx.BroadcastScalarToVector256(a + 9);
            c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            av = Avx.BroadcastScalarToVector256(a + 10);
            c40 = Fma.MultiplyAdd(av, b0, c40); c41 = Fma.MultiplyAdd(av, b1, c41);
            av = Avx.BroadcastScalarToVector256(a + 11);
            c50 = Fma.MultiplyAdd(av, b0, c50); c51 = Fma.MultiplyAdd(av, b1, c51);
        }
        if (p < kc)
        {
            var b0 = Avx.LoadVector256(b); var b1 = Avx.LoadVector256(b + 8);
            var av = Avx.BroadcastScalarToVector256(a);
            c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Avx.BroadcastScalarToVector256(a + 1);
            c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Avx.BroadcastScalarToVector256(a + 2);
            c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Avx.BroadcastScalarToVector256(a + 3);
            c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            av = Avx.BroadcastScalarToVector256(a + 4);
            c40 = Fma.MultiplyAdd(av, b0, c40); c41 = Fma.MultiplyAdd(av, b1, c41);
            av = Avx.BroadcastScalarToVector256(a + 5);
            c50 = Fma.MultiplyAdd(av, b0, c50); c51 = Fma.MultiplyAdd(av, b1, c51);
        }
        StoreRow(c, c00, c01, alpha, beta);
        StoreRow(c + ldc, c10, c11, alpha, beta);
        StoreRow(c + 2 * ldc, c20, c21, alpha, beta);
        StoreRow(c + 3 * ldc, c30, c31, alpha, beta);
        StoreRow(c + 4 * ldc, c40, c41, alpha, beta);
        StoreRow(c + 5 * ldc, c50, c51, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector256<float> v0, Vector256<float> v1, float alpha, float beta)
    {
        if (alpha != 1f)
        {
            var al = Vector256.Create(alpha);
            v0 = Avx.Multiply(v0, al); v1 = Avx.Multiply(v1, al);
        }
        if (beta == 0f)
        {
            Avx.Store(c, v0); Avx.Store(c + 8, v1);
        }
        else if (beta == 1f)
        {
            Avx.Store(c, Avx.Add(Avx.LoadVector256(c), v0));
            Avx.Store(c + 8, Avx.Add(Avx.LoadVector256(c + 8), v1));
        }
        else
        {
            var be = Vector256.Create(beta);
            Avx.Store(c, Fma.MultiplyAdd(Avx.LoadVector256(c), be, v0));
            Avx.Store(c + 8, Fma.MultiplyAdd(Avx.LoadVector256(c + 8), be, v1));
        }
    }

    /// <summary>The same tile contract without AVX2/FMA: plain scalar loops the JIT may vectorise.</summary>
    private static void KernelPortable(int kc, float* a, float* b, float* c, long ldc, float alpha, float beta, int mr,
                                       int nr)
    {
        float* acc = stackalloc float[MR * NR];
        new Span<float>(acc, MR * NR).Clear();
        for (int p = 0; p < kc; p++, a += MR, b += NR)
            for (int r = 0; r < mr; r++)
            {
                float av = a[r];
                float* accRow = acc + r * NR;
                for (int j = 0; j < nr; j++) accRow[j] += av * b[j];
            }
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < nr; j++)
            {
                float* cp = c + r * ldc + j;
                float v = alpha * acc[r * NR + j];
                *cp = beta == 0f ? v : v + beta * *cp;
            }
    }
}
