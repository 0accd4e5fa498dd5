using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

// Convs with at most 4 output channels (a UNet's output conv: 1 for Fashion-MNIST, 3 for RGB) on the AVX-512 path's
// bordered form. The 16×16 kernel computed 16 rows for them, 15 (13) of them the pack's zero rows, and stored the
// one (three) valid through its spilled edge tile. Here four 16-pixel panels share each k step instead: 1 row × 4
// panels (4 FMA chains) or 4 rows × 4 panels, the B rows read in place as in RunBordered.
internal static unsafe partial class ConvDirect
{
    /// <summary>Output channels up to which <see cref="RunBordered"/> takes the thin kernels (AVX-512).</summary>
    internal const int ThinRows = 4;

    /// <summary>The thin kernels for Cout ≤ 4 (off only to time and test the 16-row tiles they replace).</summary>
    internal static bool ThinOn { get; set; } = true;

    /// <summary>
    /// y[0:m, j0 + 16·j …] (+)= A[0:m] · B for the panels j &lt; np (at most 4) whose B row p is 16 floats at
    /// origin_j + delta[p]; A is the 16-row packed K block (rows past Cout zero). Missing panels repeat panel 0's
    /// origin and are not stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ThinTile(int kc, float* a, int* delta, float* o0, float* o1, float* o2, float* o3, int m,
        int np, float* y, long ldy, float beta)
    {
        if (m == 1)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int p = 0; p < kc; p++, a += Sgemm.MR512)
            {
                int dp = delta[p];
                var av = Vector512.Create(a[0]);
                s0 = Avx512F.FusedMultiplyAdd(av, Vector512.Load(o0 + dp), s0);
                s1 = Avx512F.FusedMultiplyAdd(av, Vector512.Load(o1 + dp), s1);
                s2 = Avx512F.FusedMultiplyAdd(av, Vector512.Load(o2 + dp), s2);
                s3 = Avx512F.FusedMultiplyAdd(av, Vector512.Load(o3 + dp), s3);
            }
            StorePanels(y, np, s0, s1, s2, s3, beta);
            return;
        }
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        for (int p = 0; p < kc; p++, a += Sgemm.MR512)
        {
            int dp = delta[p];
            Vector512<float> b0 = Vector512.Load(o0 + dp), b1 = Vector512.Load(o1 + dp);
            Vector512<float> b2 = Vector512.Load(o2 + dp), b3 = Vector512.Load(o3 + dp);
            var av = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(av, b0, c00); c01 = Avx512F.FusedMultiplyAdd(av, b1, c01);
            c02 = Avx512F.FusedMultiplyAdd(av, b2, c02); c03 = Avx512F.FusedMultiplyAdd(av, b3, c03);
            av = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(av, b0, c10); c11 = Avx512F.FusedMultiplyAdd(av, b1, c11);
            c12 = Avx512F.FusedMultiplyAdd(av, b2, c12); c13 = Avx512F.FusedMultiplyAdd(av, b3, c13);
            av = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(av, b0, c20); c21 = Avx512F.FusedMultiplyAdd(av, b1, c21);
            c22 = Avx512F.FusedMultiplyAdd(av, b2, c22); c23 = Avx512F.FusedMultiplyAdd(av, b3, c23);
            av = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(av, b0, c30); c31 = Avx512F.FusedMultiplyAdd(av, b1, c31);
            c32 = Avx512F.FusedMultiplyAdd(av, b2, c32); c33 = Avx512F.FusedMultiplyAdd(av, b3, c33);
        }
        StorePanels(y, np, c00, c01, c02, c03, beta);
        StorePanels(y + ldy, np, c10, c11, c12, c13, beta);
        if (m > 2) StorePanels(y + 2 * ldy, np, c20, c21, c22, c23, beta);
        if (m > 3) StorePanels(y + 3 * ldy, np, c30, c31, c32, c33, beta);
    }

    /// <summary>One output row's first <paramref name="np"/> panels (16 floats each, consecutive).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePanels(float* y, int np, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2,
        Vector512<float> v3, float beta)
    {
        StorePanel(y, v0, beta);
        if (np > 1) StorePanel(y + 16, v1, beta);
        if (np > 2) StorePanel(y + 32, v2, beta);
        if (np > 3) StorePanel(y + 48, v3, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePanel(float* y, Vector512<float> v, float beta)
    {
        if (beta != 0f) v = Avx512F.FusedMultiplyAdd(Vector512.Load(y), Vector512.Create(beta), v);
        Vector512.Store(v, y);
    }
}
