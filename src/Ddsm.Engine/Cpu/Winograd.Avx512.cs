using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

// The Winograd transforms on the AVX-512 path when a 16-tile panel is 16 consecutive tiles of one tile row (W a
// multiple of 32), or 2 or 4 whole tile rows (W = 16, 8): one zmm per patch value or output, each patch column one
// vpermt2ps of a patch row's floats, all 16 patch values (or M values) of a channel in registers. Half the
// instructions of the 8-tile forms, which at 32 channels cost about as much as the GEMMs between them; at 8×8 the
// gathered patches and the element-wise output stores they replace took half of a 64-channel conv
// (`paths compare=panels512`, N16, 1 thread: 8² convs 0.45–0.66× the time).
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
    /// 2·th − 1 + r, columns 2·tw0 − 1 to 2·tw0 + 32, the first and last masked off at the image's edges; rows
    /// above and below the image read <see cref="ZeroRow"/>. The 16 patch values live in registers throughout.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputRuns512(float* x, int b0, int panels, int cin, int h, int wd, int tp, int tw2, float* v,
        long xiStride)
    {
        var all = Vector512<float>.AllBitsSet;
        var noFirst = Vector512.GreaterThan(Vector512<int>.Indices, Vector512<int>.Zero).AsSingle();
        var noLast = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(15)).AsSingle();
        long plane = (long)h * wd;
        for (int pnl = 0; pnl < panels; pnl++)
        {
            int t = b0 + pnl * Lanes, i = t / tp, r0 = t % tp, th = r0 / tw2, c0 = 2 * (r0 % tw2);
            var left = c0 == 0 ? noFirst : all;
            var right = c0 + 32 == wd ? noLast : all;
            // Patch rows 1 and 2 are inside the image; rows 0 and 3 may be the zero row, which the channels do not
            // step.
            float* p1 = x + (long)i * cin * plane + (long)2 * th * wd + c0 - 1, p2 = p1 + wd;
            bool top = th > 0, bottom = 2 * th + 2 < h;
            float* p0 = top ? p1 - wd : ZeroRow - 1, p3 = bottom ? p2 + wd : ZeroRow - 1;
            long s0 = top ? plane : 0, s3 = bottom ? plane : 0;
            float* dst = v + (long)pnl * cin * Lanes;
            for (int ci = 0; ci < cin; ci++, p0 += s0, p1 += plane, p2 += plane, p3 += s3, dst += Lanes)
            {
                var (d00, d01, d02, d03) = Row512(p0, left, right);
                var (d10, d11, d12, d13) = Row512(p1, left, right);
                var (d20, d21, d22, d23) = Row512(p2, left, right);
                var (d30, d31, d32, d33) = Row512(p3, left, right);
                // Columns first (t = Bᵀ d), then each row of t (V = t B), stored as ξ = 4·row + column.
                Store4(d00 - d20, d01 - d21, d02 - d22, d03 - d23, dst, xiStride);
                Store4(d10 + d20, d11 + d21, d12 + d22, d13 + d23, dst + 4 * xiStride, xiStride);
                Store4(d20 - d10, d21 - d11, d22 - d12, d23 - d13, dst + 8 * xiStride, xiStride);
                Store4(d10 - d30, d11 - d31, d12 - d32, d13 - d33, dst + 12 * xiStride, xiStride);
            }
        }
    }

    /// <summary>
    /// <see cref="InputRuns512"/> for W = 16 and W = 8, where a panel is R = 32 / W whole tile rows of W / 2 tiles
    /// (lane q·W/2 + j: tile (th0 + q, j)). Patch row r of the panel is R image rows, 2·(th0 + q) − 1 + r, held as
    /// 32 floats in two zmm (one row each at W = 16, two at W = 8); each of its four columns is one two-source
    /// permute of them (<see cref="PanelIndex"/>), masked where the patch reaches past the image's left or right
    /// edge. Rows above and below the image are zeros.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputPanels512(float* x, int b0, int panels, int cin, int h, int wd, int tp, int tw2, float* v,
        long xiStride)
    {
        var ix = wd == 16 ? Index16 : Index8;
        Vector512<int> i0 = ix[0], i1 = ix[1], i2 = ix[2], i3 = ix[3];
        Vector512<float> m0 = ix[4].AsSingle(), m3 = ix[5].AsSingle();
        long plane = (long)h * wd;
        int rows = 32 / wd;
        for (int pnl = 0; pnl < panels; pnl++)
        {
            int t = b0 + pnl * Lanes, i = t / tp, th0 = t % tp / tw2;
            bool top = th0 > 0, bottom = 2 * (th0 + rows) < h;
            // mid[k] is image row 2·th0 + k of channel 0; the rows above and below are the zero row when outside.
            float* mid = x + (long)i * cin * plane + (long)2 * th0 * wd;
            long topStep = top ? plane : 0, botStep = bottom ? plane : 0;
            float* above = top ? mid - wd : ZeroRow, below = bottom ? mid + 2 * rows * wd : ZeroRow;
            float* dst = v + (long)pnl * cin * Lanes;
            for (int ci = 0; ci < cin; ci++, mid += plane, above += topStep, below += botStep, dst += Lanes)
            {
                Vector512<float> a0, b0v, a1, b1, a2, b2, a3, b3;
                if (wd == 16)
                {
                    // Patch row r: image rows 2·th0 − 1 + r and 2·th0 + 1 + r.
                    Vector512<float> r0 = Vector512.Load(mid), r1 = Vector512.Load(mid + 16);
                    Vector512<float> r2 = Vector512.Load(mid + 32), r3 = Vector512.Load(mid + 48);
                    (a0, b0v) = (Vector512.Load(above), r1);
                    (a1, b1) = (r0, r2);
                    (a2, b2) = (r1, r3);
                    (a3, b3) = (r2, Vector512.Load(below));
                }
                else
                {
                    // Patch row r: image rows 2·th0 − 1 + r + 2q, q = 0 … 3, 8 floats each.
                    a0 = Vector512.Create(Vector256.Load(above), Vector256.Load(mid + 8));
                    b0v = Vector512.Create(Vector256.Load(mid + 24), Vector256.Load(mid + 40));
                    a1 = Vector512.Create(Vector256.Load(mid), Vector256.Load(mid + 16));
                    b1 = Vector512.Create(Vector256.Load(mid + 32), Vector256.Load(mid + 48));
                    a2 = Vector512.Create(Vector256.Load(mid + 8), Vector256.Load(mid + 24));
                    b2 = Vector512.Create(Vector256.Load(mid + 40), Vector256.Load(mid + 56));
                    a3 = Vector512.Create(Vector256.Load(mid + 16), Vector256.Load(mid + 32));
                    b3 = Vector512.Create(Vector256.Load(mid + 48), Vector256.Load(below));
                }
                var (d00, d01, d02, d03) = Columns512(a0, b0v, i0, i1, i2, i3, m0, m3);
                var (d10, d11, d12, d13) = Columns512(a1, b1, i0, i1, i2, i3, m0, m3);
                var (d20, d21, d22, d23) = Columns512(a2, b2, i0, i1, i2, i3, m0, m3);
                var (d30, d31, d32, d33) = Columns512(a3, b3, i0, i1, i2, i3, m0, m3);
                Store4(d00 - d20, d01 - d21, d02 - d22, d03 - d23, dst, xiStride);
                Store4(d10 + d20, d11 + d21, d12 + d22, d13 + d23, dst + 4 * xiStride, xiStride);
                Store4(d20 - d10, d21 - d11, d22 - d12, d23 - d13, dst + 8 * xiStride, xiStride);
                Store4(d10 - d30, d11 - d31, d12 - d32, d13 - d33, dst + 12 * xiStride, xiStride);
            }
        }
    }

    /// <summary>Patch columns 0 … 3 of a panel's patch row from its 32 floats (a, b): one permute each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>) Columns512(
        Vector512<float> a, Vector512<float> b, Vector512<int> i0, Vector512<int> i1, Vector512<int> i2,
        Vector512<int> i3, Vector512<float> m0, Vector512<float> m3) =>
        (Avx512F.PermuteVar16x32x2(a, i0, b) & m0, Avx512F.PermuteVar16x32x2(a, i1, b),
         Avx512F.PermuteVar16x32x2(a, i2, b), Avx512F.PermuteVar16x32x2(a, i3, b) & m3);

    /// <summary>
    /// For W = 16 and W = 8: the permute indices of patch columns 0 … 3 (lane q·W/2 + j reads float q·W + 2j − 1 + c
    /// of a patch row's 32), then the lanes of column 0 and of column 3 that lie inside the image (all bits set).
    /// </summary>
    private static readonly Vector512<int>[] Index16 = PanelIndex(16), Index8 = PanelIndex(8);

    private static Vector512<int>[] PanelIndex(int wd)
    {
        var idx = new int[6][];
        for (int k = 0; k < 6; k++) idx[k] = new int[16];
        for (int l = 0; l < 16; l++)
        {
            int q = l / (wd / 2), j = l % (wd / 2);
            for (int c = 0; c < 4; c++)
            {
                int col = 2 * j - 1 + c;
                idx[c][l] = (uint)col < (uint)wd ? q * wd + col : 0;
            }
            idx[4][l] = j > 0 ? -1 : 0;               // column 0 reads col 2j − 1
            idx[5][l] = 2 * j + 2 < wd ? -1 : 0;      // column 3 reads col 2j + 2
        }
        return idx.Select(a => Vector512.Create(a)).ToArray();
    }

    /// <summary>Patch row <paramref name="r"/>'s four columns of 16 tiles: the even and odd elements of x at
    /// p (p[0] masked by <paramref name="left"/>) and at p + 2 (p[33] masked by <paramref name="right"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>) Row512(float* p,
        Vector512<float> left, Vector512<float> right)
    {
        Vector512<float> a = Avx512F.MaskLoad(p, left, Vector512<float>.Zero), b = Vector512.Load(p + 16);
        Vector512<float> a2 = Vector512.Load(p + 2), b2 = Avx512F.MaskLoad(p + 18, right, Vector512<float>.Zero);
        return (Avx512F.PermuteVar16x32x2(a, Evens, b), Avx512F.PermuteVar16x32x2(a, Odds, b),
                Avx512F.PermuteVar16x32x2(a2, Evens, b2), Avx512F.PermuteVar16x32x2(a2, Odds, b2));
    }

    /// <summary>One row of t B: (t0 − t2, t1 + t2, t2 − t1, t1 − t3) at 4 consecutive ξ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(Vector512<float> t0, Vector512<float> t1, Vector512<float> t2, Vector512<float> t3,
        float* dst, long xiStride)
    {
        Vector512.Store(t0 - t2, dst);
        Vector512.Store(t1 + t2, dst + xiStride);
        Vector512.Store(t2 - t1, dst + 2 * xiStride);
        Vector512.Store(t1 - t3, dst + 3 * xiStride);
    }

    /// <summary>
    /// <see cref="OutputTransform"/> for the panels <see cref="InputRuns512"/> fills: per output channel and panel, the
    /// 16 M values in registers, Y = Aᵀ M A, and the 2×2 outputs of each tile interleaved into output rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OutputRuns512(float* m, int ld, long xiStride, int b0, int tiles, int n0, int tp, int tw2,
        int h, int wd, int cout, float* bias, float beta, float* y)
    {
        long img = (long)cout * h * wd, plane = (long)h * wd;
        for (int co = 0; co < cout; co++)
        {
            var bv = Vector512.Create(bias is null ? 0f : bias[co]);
            for (int l0 = 0; l0 < ld && b0 + l0 < tiles; l0 += Lanes)
            {
                float* src = m + (long)co * ld + l0;
                // Rows first (s = Aᵀ M), column by column.
                Vector512<float> m0 = Vector512.Load(src), m4 = Vector512.Load(src + 4 * xiStride);
                Vector512<float> m8 = Vector512.Load(src + 8 * xiStride), m12 = Vector512.Load(src + 12 * xiStride);
                Vector512<float> s0 = m0 + m4 + m8, s4 = m4 - m8 - m12;
                m0 = Vector512.Load(src + xiStride); m4 = Vector512.Load(src + 5 * xiStride);
                m8 = Vector512.Load(src + 9 * xiStride); m12 = Vector512.Load(src + 13 * xiStride);
                Vector512<float> s1 = m0 + m4 + m8, s5 = m4 - m8 - m12;
                m0 = Vector512.Load(src + 2 * xiStride); m4 = Vector512.Load(src + 6 * xiStride);
                m8 = Vector512.Load(src + 10 * xiStride); m12 = Vector512.Load(src + 14 * xiStride);
                Vector512<float> s2 = m0 + m4 + m8, s6 = m4 - m8 - m12;
                m0 = Vector512.Load(src + 3 * xiStride); m4 = Vector512.Load(src + 7 * xiStride);
                m8 = Vector512.Load(src + 11 * xiStride); m12 = Vector512.Load(src + 15 * xiStride);
                Vector512<float> s3 = m0 + m4 + m8, s7 = m4 - m8 - m12;
                int t0 = b0 + l0, i = t0 / tp, r = t0 % tp, th = r / tw2, tw = r % tw2;
                float* o = y + (n0 + i) * img + co * plane + (long)2 * th * wd + 2 * tw;
                StoreTiles512(o, wd, s0 + s1 + s2 + bv, s1 - s2 - s3 + bv, beta);
                StoreTiles512(o + wd, wd, s4 + s5 + s6 + bv, s5 - s6 - s7 + bv, beta);
            }
        }
    }

    /// <summary>
    /// One output row of each of the panel's tiles, the tiles' left outputs in <paramref name="left"/> and right ones
    /// in <paramref name="right"/>, interleaved: at W = 32·k the panel's 16 tiles make 32 floats of one row at o; at
    /// W = 16 its two tile rows make a row at o and one at o + 2W; at W = 8 its four make rows o, o + 2W, o + 4W and
    /// o + 6W.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTiles512(float* o, int wd, Vector512<float> left, Vector512<float> right, float beta)
    {
        var first = Avx512F.PermuteVar16x32x2(left, ZipLo, right);
        var second = Avx512F.PermuteVar16x32x2(left, ZipHi, right);
        if (wd == 8)
        {
            Store8(o, first.GetLower(), beta);
            Store8(o + 16, first.GetUpper(), beta);
            Store8(o + 32, second.GetLower(), beta);
            Store8(o + 48, second.GetUpper(), beta);
            return;
        }
        float* o2 = wd == 16 ? o + 32 : o + 16;
        if (beta != 0f)
        {
            first += Vector512.Load(o);
            second += Vector512.Load(o2);
        }
        Vector512.Store(first, o);
        Vector512.Store(second, o2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store8(float* o, Vector256<float> v, float beta)
    {
        if (beta != 0f) v += Vector256.Load(o);
        Vector256.Store(v, o);
    }
}
