using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

// The AVX2/FMA microkernel (6×16, 12 ymm accumulators) and the portable one: the paths of machines
// without AVX-512, and of DOTNET_EnableAVX512=0. Both take a full MR×NR tile; Sgemm.MicroTile routes
// edge tiles through a scratch tile.
public static unsafe partial class Sgemm
{
    /// <summary>
    /// C[6×16] = alpha·Σ_p a[p,0:6]ᵀ·b[p,0:16] + beta·C. a: kc×6 packed, b: kc×16 packed.
    /// </summary>
    private static void Kernel6x16(int kc, float* a, float* b, float* c, long ldc, float alpha, float beta) =>
        Kernel6x16(kc, a, new PackedRows256(b), c, ldc, alpha, beta);

    /// <summary>Where the 6×16 kernel reads row p of its B panel, as two ymm halves (a struct: the JIT specialises).
    /// </summary>
    internal interface IBRows256
    {
        Vector256<float> Lo(int p);
        Vector256<float> Hi(int p);
    }

    /// <summary>A packed panel: kc rows of 16 contiguous floats.</summary>
    internal readonly struct PackedRows256(float* b) : IBRows256
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Lo(int p) => Avx.LoadVector256(b + (long)p * NR);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Hi(int p) => Avx.LoadVector256(b + (long)p * NR + 8);
    }

    /// <summary>The tile with B rows from <paramref name="b"/> (packed, or read in place by a direct conv).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel6x16<TB>(int kc, float* a, TB b, float* c, long ldc, float alpha, float beta)
        where TB : struct, IBRows256
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
        // One k per trip: 12 FMAs against 2 loads and 6 broadcasts keep the FMA ports busy; unrolling by two
        // measured no faster on the AVX2 path (bench paths rows=gemm) and wrote the step out twice.
        for (int p = 0; p < kc; p++, a += MR)
        {
            var b0 = b.Lo(p); var b1 = b.Hi(p);
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

    /// <summary>
    /// Rows 0–3 of the 6-row tile only (a still packed 6 per k): the last tile of a column whose height leaves 4
    /// rows or fewer. With 16 output channels the 6×16 kernel computed 6 + 6 + 6 rows for 16; this one makes it
    /// 6 + 6 + 4, with its 8 accumulators still enough chains to fill both FMA ports (latency 4).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel4x16<TB>(int kc, float* a, TB b, float* c, long ldc, float alpha, float beta)
        where TB : struct, IBRows256
    {
        if (Sse.IsSupported)
            for (int r = 0; r < 4; r++)
            {
                Sse.Prefetch0(c + r * ldc);
                Sse.Prefetch0(c + r * ldc + 15);
            }
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++, a += MR)
        {
            var b0 = b.Lo(p); var b1 = b.Hi(p);
            var av = Avx.BroadcastScalarToVector256(a);
            c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Avx.BroadcastScalarToVector256(a + 1);
            c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Avx.BroadcastScalarToVector256(a + 2);
            c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Avx.BroadcastScalarToVector256(a + 3);
            c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
        }
        StoreRow(c, c00, c01, alpha, beta);
        StoreRow(c + ldc, c10, c11, alpha, beta);
        StoreRow(c + 2 * ldc, c20, c21, alpha, beta);
        StoreRow(c + 3 * ldc, c30, c31, alpha, beta);
    }

    /// <summary>Use <see cref="Kernel4x16{TB}"/> for the short last tiles (off only to time the 6-row edge).</summary>
    internal static bool Edge4On { get; set; } = true;

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
    private static void KernelPortable(int kc, float* a, float* b, float* c, long ldc, float alpha, float beta,
        int mr, int nr)
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
