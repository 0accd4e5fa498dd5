using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

// The Winograd transforms on the AVX-512 path when a 16-tile panel is 16 consecutive tiles of one tile row (W a
// multiple of 32): one zmm per patch value or output, the even/odd split of a row run one vpermt2ps each. Half the
// instructions of the 8-tile form, which at 32 channels cost about as much as the GEMMs between them.
internal static unsafe partial class Winograd
{
    /// <summary>Lane l takes element 2l (+ 1) of the 32 floats in two zmm.</summary>
    private static readonly Vector512<int> Evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
        28, 30), Odds = Evens + Vector512<int>.One;

    /// <summary>Lanes 0, 16, 1, 17, …: the first 16 of two zmm interleaved; and the last 16.</summary>
    private static readonly Vector512<int> ZipLo = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22,
        7, 23), ZipHi = ZipLo + Vector512.Create(8);

    /// <summary>
    /// <see cref="InputRuns"/> for panels of 16 tiles of one tile row (W a multiple of 32): patch row r is x row
    /// 2·th − 1 + r, columns 2·tw0 − 1 to 2·tw0 + 32, the first and last masked off at the image's edges.
    /// </summary>
    private static void InputRuns512(float* x, int b0, int panels, int cin, int h, int wd, int tp, int tw2, float* v,
        long xiStride)
    {
        var d = stackalloc Vector512<float>[Xi];
        var all = Vector512<float>.AllBitsSet;
        var noFirst = Vector512.GreaterThan(Vector512<int>.Indices, Vector512<int>.Zero).AsSingle();
        var noLast = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(15)).AsSingle();
        for (int pnl = 0; pnl < panels; pnl++)
        {
            int t = b0 + pnl * Lanes, i = t / tp, r0 = t % tp, th = r0 / tw2, c0 = 2 * (r0 % tw2);
            var left = c0 == 0 ? noFirst : all;
            var right = c0 + 32 == wd ? noLast : all;
            for (int ci = 0; ci < cin; ci++)
            {
                float* plane = x + ((long)i * cin + ci) * h * wd;
                for (int r = 0; r < 4; r++)
                {
                    int ih = 2 * th - 1 + r;
                    if ((uint)ih >= (uint)h)
                    {
                        d[r * 4] = d[r * 4 + 1] = d[r * 4 + 2] = d[r * 4 + 3] = Vector512<float>.Zero;
                        continue;
                    }
                    // p[0] is column c0 − 1.
                    float* p = plane + (long)ih * wd + c0 - 1;
                    Vector512<float> a = Avx512F.MaskLoad(p, left, Vector512<float>.Zero), b = Vector512.Load(p + 16);
                    Vector512<float> a2 = Vector512.Load(p + 2);
                    Vector512<float> b2 = Avx512F.MaskLoad(p + 18, right, Vector512<float>.Zero);
                    d[r * 4] = Avx512F.PermuteVar16x32x2(a, Evens, b);
                    d[r * 4 + 1] = Avx512F.PermuteVar16x32x2(a, Odds, b);
                    d[r * 4 + 2] = Avx512F.PermuteVar16x32x2(a2, Evens, b2);
                    d[r * 4 + 3] = Avx512F.PermuteVar16x32x2(a2, Odds, b2);
                }
                for (int c = 0; c < 4; c++)
                {
                    Vector512<float> d0 = d[c], d1 = d[4 + c], d2 = d[8 + c], d3 = d[12 + c];
                    d[c] = d0 - d2;
                    d[4 + c] = d1 + d2;
                    d[8 + c] = d2 - d1;
                    d[12 + c] = d1 - d3;
                }
                float* dst = v + ((long)pnl * cin + ci) * Lanes;
                for (int r = 0; r < 4; r++)
                {
                    Vector512<float> t0 = d[r * 4], t1 = d[r * 4 + 1], t2 = d[r * 4 + 2], t3 = d[r * 4 + 3];
                    float* row = dst + r * 4 * xiStride;
                    Vector512.Store(t0 - t2, row);
                    Vector512.Store(t1 + t2, row + xiStride);
                    Vector512.Store(t2 - t1, row + 2 * xiStride);
                    Vector512.Store(t1 - t3, row + 3 * xiStride);
                }
            }
        }
    }

    /// <summary><see cref="OutputTransform"/> for panels of 16 tiles of one tile row.</summary>
    private static void OutputRuns512(float* m, int ld, long xiStride, int b0, int tiles, int n0, int tp, int tw2,
        int h, int wd, int cout, float* bias, float beta, float* y)
    {
        long img = (long)cout * h * wd;
        var s = stackalloc Vector512<float>[8];
        for (int co = 0; co < cout; co++)
        {
            var bv = Vector512.Create(bias is null ? 0f : bias[co]);
            for (int l0 = 0; l0 < ld && b0 + l0 < tiles; l0 += Lanes)
            {
                float* src = m + (long)co * ld + l0;
                for (int c = 0; c < 4; c++)
                {
                    var m0 = Vector512.Load(src + c * xiStride);
                    var m1 = Vector512.Load(src + (4 + c) * xiStride);
                    var m2 = Vector512.Load(src + (8 + c) * xiStride);
                    var m3 = Vector512.Load(src + (12 + c) * xiStride);
                    s[c] = m0 + m1 + m2;
                    s[4 + c] = m1 - m2 - m3;
                }
                int t0 = b0 + l0, i = t0 / tp, r = t0 % tp, th = r / tw2, tw = r % tw2;
                float* o = y + (n0 + i) * img + (long)co * h * wd + (long)2 * th * wd + 2 * tw;
                StoreRun512(o, s[0] + s[1] + s[2] + bv, s[1] - s[2] - s[3] + bv, beta);
                StoreRun512(o + wd, s[4] + s[5] + s[6] + bv, s[5] - s[6] - s[7] + bv, beta);
            }
        }
    }

    /// <summary>32 floats at o: the lanes of <paramref name="left"/> and <paramref name="right"/> interleaved.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRun512(float* o, Vector512<float> left, Vector512<float> right, float beta)
    {
        var first = Avx512F.PermuteVar16x32x2(left, ZipLo, right);
        var second = Avx512F.PermuteVar16x32x2(left, ZipHi, right);
        if (beta != 0f)
        {
            first += Vector512.Load(o);
            second += Vector512.Load(o + 16);
        }
        Vector512.Store(first, o);
        Vector512.Store(second, o + 16);
    }
}
