using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

// The AVX-512 microkernel. A 16×16 tile (16 zmm accumulators, one B vector, the A values as broadcast
// operands) rather than a register-filling 28×16 or 12×32: the UNet's channel counts (M of every conv GEMM)
// are multiples of 16, so no panel is padded (6-row panels pad 64 → 66 and 16 → 18 rows, and the last panel
// is an edge tile), NR stays 16 so the im2col packing and the column strips are those of the AVX2 path, and
// 16 independent FMA chains already cover latency × throughput (4 × 1 zmm FMA/cycle on Zen 4, 4 × 2 on Xeon).
// Per k step: 16 FMAs, one 64-byte B load and 16 broadcast loads, ~2.5× fewer instructions per FLOP than the
// 6×16 ymm kernel. Edge tiles are stored with masked stores instead of going through a scratch tile.
public static unsafe partial class Sgemm
{
    /// <summary>The A panel height of the AVX-512 path (its NR is the common 16).</summary>
    internal const int MR512 = 16;

    /// <summary>
    /// C[0:rows, 0:cols] = alpha·Σ_p a[p,0:16]ᵀ·b[p,0:16] + beta·C; a: kc×16 packed, b: kc×16 packed
    /// (zero-padded past the valid rows and columns, so the loop never branches). Only rows × cols of C are
    /// read or written.
    /// </summary>
    private static void Kernel16x16(int kc, float* a, float* b, float* c, long ldc, float alpha, float beta,
        int rows, int cols) => Kernel16x16(kc, a, new PackedRows(b), c, ldc, alpha, beta, rows, cols);

    /// <summary>Where the 16×16 kernel reads row p of its B panel (a struct: the JIT specialises the loop).</summary>
    internal interface IBRows
    {
        Vector512<float> Row(int p);
    }

    /// <summary>A packed panel: kc rows of 16 contiguous floats.</summary>
    internal readonly struct PackedRows(float* b) : IBRows
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Row(int p) => Vector512.Load(b + (long)p * NR);
    }

    /// <summary>
    /// The tile with B rows from <paramref name="b"/> (packed, or read in place by a direct conv). C's rows are
    /// prefetched unless <paramref name="prefetchC"/> is false: Winograd's M tiles, a scratch block in L1/L2 written
    /// with beta 0 on the first K block, gain nothing from it, and at 32–64 channels (K steps per call) the 32
    /// prefetches cost 4–5 % of the conv.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel16x16<TB>(int kc, float* a, TB b, float* c, long ldc, float alpha, float beta,
        int rows, int cols, bool prefetchC = true) where TB : struct, IBRows
    {
        // C is touched only after the k loop: prefetch its rows now (a 16-float row spans at most two lines).
        if (prefetchC)
            for (int r = 0; r < rows; r++)
            {
                Sse.Prefetch0(c + r * ldc);
                Sse.Prefetch0(c + r * ldc + 15);
            }
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        Vector512<float> c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<float> c8 = default, c9 = default, c10 = default, c11 = default;
        Vector512<float> c12 = default, c13 = default, c14 = default, c15 = default;
        for (int p = 0; p < kc; p++, a += MR512)
        {
            var bv = b.Row(p);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[0]), bv, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[1]), bv, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[2]), bv, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[3]), bv, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[4]), bv, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[5]), bv, c5);
            c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[6]), bv, c6);
            c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[7]), bv, c7);
            c8 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[8]), bv, c8);
            c9 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[9]), bv, c9);
            c10 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[10]), bv, c10);
            c11 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[11]), bv, c11);
            c12 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[12]), bv, c12);
            c13 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[13]), bv, c13);
            c14 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[14]), bv, c14);
            c15 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[15]), bv, c15);
        }
        if (rows == MR512 && cols == NR)
        {
            StoreRow512(c, c0, alpha, beta);
            StoreRow512(c + 1 * ldc, c1, alpha, beta);
            StoreRow512(c + 2 * ldc, c2, alpha, beta);
            StoreRow512(c + 3 * ldc, c3, alpha, beta);
            StoreRow512(c + 4 * ldc, c4, alpha, beta);
            StoreRow512(c + 5 * ldc, c5, alpha, beta);
            StoreRow512(c + 6 * ldc, c6, alpha, beta);
            StoreRow512(c + 7 * ldc, c7, alpha, beta);
            StoreRow512(c + 8 * ldc, c8, alpha, beta);
            StoreRow512(c + 9 * ldc, c9, alpha, beta);
            StoreRow512(c + 10 * ldc, c10, alpha, beta);
            StoreRow512(c + 11 * ldc, c11, alpha, beta);
            StoreRow512(c + 12 * ldc, c12, alpha, beta);
            StoreRow512(c + 13 * ldc, c13, alpha, beta);
            StoreRow512(c + 14 * ldc, c14, alpha, beta);
            StoreRow512(c + 15 * ldc, c15, alpha, beta);
        }
        else
        {
            // Edge tile: spill the accumulators and store the valid rows through a column mask.
            Vector512<float>* t = stackalloc Vector512<float>[MR512];
            t[0] = c0; t[1] = c1; t[2] = c2; t[3] = c3;
            t[4] = c4; t[5] = c5; t[6] = c6; t[7] = c7;
            t[8] = c8; t[9] = c9; t[10] = c10; t[11] = c11;
            t[12] = c12; t[13] = c13; t[14] = c14; t[15] = c15;
            var mask = LanesIn(0, cols);
            for (int r = 0; r < rows; r++) StoreRowMasked512(c + r * ldc, t[r], mask, alpha, beta);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow512(float* c, Vector512<float> v, float alpha, float beta)
    {
        if (alpha != 1f) v *= Vector512.Create(alpha);
        if (beta == 0f) Vector512.Store(v, c);
        else if (beta == 1f) Vector512.Store(Vector512.Load(c) + v, c);
        else Vector512.Store(Avx512F.FusedMultiplyAdd(Vector512.Load(c), Vector512.Create(beta), v), c);
    }

    /// <summary>
    /// The masked form: lanes outside <paramref name="mask"/> are neither read nor written. Safe past the end of
    /// C's array: AVX-512 masked loads and stores suppress faults on masked-off lanes.
    /// </summary>
    private static void StoreRowMasked512(float* c, Vector512<float> v, Vector512<float> mask, float alpha, float beta)
    {
        if (alpha != 1f) v *= Vector512.Create(alpha);
        if (beta != 0f)
            v = Avx512F.FusedMultiplyAdd(Avx512F.MaskLoad(c, mask, Vector512<float>.Zero), Vector512.Create(beta), v);
        Avx512F.MaskStore(c, mask, v);
    }

    /// <summary>The lanes l with lo ≤ l &lt; hi, as a float mask for masked loads and stores.</summary>
    internal static Vector512<float> LanesIn(int lo, int hi) =>
        (Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(lo))
         & Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(hi))).AsSingle();
}
