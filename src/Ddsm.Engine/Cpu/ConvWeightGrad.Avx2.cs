using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

// The 8-lane form of the direct 3×3 weight gradient, the AVX2 path's (where it pays: LanesFor). Its 16 ymm
// registers hold 3 output channels × the 3 taps of one kernel row, so a tile makes three passes over the pixels.
internal static unsafe partial class ConvWeightGrad
{
    /// <summary>
    /// dW[co + i, ci, ·, ·] += the block's sums for the tile's <paramref name="rows"/> (1–3) output channels, one
    /// kernel row kh at a time (see the 16-lane <c>Tile</c>).
    /// </summary>
    private static void Tile8(float* dy, long yImg, int hw, int co, int rows, float* xPlane, long xImg, int images,
        int h, int w, float* dw, int ldw)
    {
        var acc = stackalloc Vector256<float>[9];
        for (int kh = 0; kh < 3; kh++)
        {
            Sums8(dy, yImg, hw, co, rows, xPlane + (long)kh * (w + 2), xImg, images, h, w, acc);
            for (int r = 0; r < rows; r++)
            for (int kw = 0; kw < 3; kw++)
                dw[(long)r * ldw + kh * 3 + kw] += Sum(acc[r * 3 + kw]);
        }
    }

    /// <summary>
    /// One kernel row of the 8-lane tile: 3 output channels × 3 taps kw (9 accumulators, 3 dy vectors, an x
    /// vector: 9 FMAs on 6 loads per 8 pixels), x already offset to the row kh.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sums8(float* dy, long yImg, int hw, int co, int rows, float* xPlane, long xImg, int images,
        int h, int w, Vector256<float>* acc)
    {
        int stride = w + 2;
        long r1 = (long)Math.Min(1, rows - 1) * hw, r2 = (long)Math.Min(2, rows - 1) * hw;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default;
        Vector256<float> a6 = default, a7 = default, a8 = default;
        for (int n = 0; n < images; n++)
        {
            float* g0 = dy + n * yImg + (long)co * hw;
            float* xs = xPlane + n * xImg;
            for (int oh = 0; oh < h; oh++)
            {
                float* gRow = g0 + (long)oh * w;
                float* x0 = xs + (long)oh * stride;
                for (int ow = 0; ow < w; ow += 8)
                {
                    var d0 = Avx.LoadVector256(gRow + ow);
                    var d1 = Avx.LoadVector256(gRow + r1 + ow);
                    var d2 = Avx.LoadVector256(gRow + r2 + ow);
                    float* p = x0 + ow;
                    var v = Avx.LoadVector256(p);
                    a0 = Fma.MultiplyAdd(d0, v, a0); a3 = Fma.MultiplyAdd(d1, v, a3); a6 = Fma.MultiplyAdd(d2, v, a6);
                    v = Avx.LoadVector256(p + 1);
                    a1 = Fma.MultiplyAdd(d0, v, a1); a4 = Fma.MultiplyAdd(d1, v, a4); a7 = Fma.MultiplyAdd(d2, v, a7);
                    v = Avx.LoadVector256(p + 2);
                    a2 = Fma.MultiplyAdd(d0, v, a2); a5 = Fma.MultiplyAdd(d1, v, a5); a8 = Fma.MultiplyAdd(d2, v, a8);
                }
            }
        }
        acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3; acc[4] = a4; acc[5] = a5; acc[6] = a6; acc[7] = a7;
        acc[8] = a8;
    }

    /// <summary>The 8 lanes summed in double.</summary>
    private static float Sum(Vector256<float> v)
    {
        var (lo, hi) = Vector256.Widen(v);
        return (float)Vector256.Sum(lo + hi);
    }
}
