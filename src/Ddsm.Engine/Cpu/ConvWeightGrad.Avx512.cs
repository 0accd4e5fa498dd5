using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// The weight gradient of a 3×3, stride-1, pad-1 convolution on the AVX-512 path, without a column matrix:
/// dW[co, ci, kh, kw] += Σ_n Σ_(oh, ow) dy[n, co, oh, ow] · x[n, ci, oh − 1 + kh, ow − 1 + kw]. The sum runs over
/// pixels, which are contiguous in both dy and x, so it is vectorised along them: a register tile of 3 output
/// channels × the 9 taps of one input channel (27 zmm accumulators) takes, per 16 output pixels, 3 dy vectors
/// and 9 x vectors (27 FMAs on 12 loads), and is summed across its lanes once per block of images. The GEMM form
/// (dy · im2col(x)ᵀ) had to write the column matrix (9× the image) and pack it transposed; at 64 channels it ran
/// at ~70 GF/s against the forward's ~95 on one Zen 4 core.
/// x is first copied into a zero-bordered image ((H+2) × (W+2) per channel) so every tap is a plain load. Images
/// go in blocks of about 4096 pixels (the bordered copy of one block is the scratch); within a block the
/// 3-channel tiles go to threads, and each dW element is summed by one thread in a fixed order: the result does
/// not depend on the thread count.
/// </summary>
internal static unsafe partial class ConvWeightGrad
{
    private const int Lanes = 16, CoTile = 3;

    /// <summary>
    /// The lanes of the kernel that computes this conv's weight gradient on <paramref name="path"/>: 16 (rows of
    /// 16·k pixels, AVX-512 path), 8 (AVX2 path: rows of 8·k pixels, where the form beats the GEMM one), 0 (the
    /// GEMM form). On AVX2 (`bench paths rows=bwd compare=wgrad`, 1 thread, CPU time, direct/GEMM) the 8-lane
    /// form measured 0.65–0.90 at 32² and 0.86 at C32 16², but 1.05–1.11 at C128–256 16² and 1.3–1.45 at 8²,
    /// where three passes over short rows cost more than the GEMM's column matrix.
    /// </summary>
    public static int LanesFor(in ConvDesc d, SgemmPath path)
    {
        if (d.K != 3 || d.Stride != 1 || d.Pad != 1) return 0;
        if (path == SgemmPath.Avx512) return d.W % Lanes == 0 ? Lanes : 0;
        bool pays = d.W >= 32 || d.Cin * d.Cout <= 32 * 32;
        return path == SgemmPath.Avx2 && d.W % 8 == 0 && pays ? 8 : 0;
    }

    /// <summary>
    /// dW[:Cout, :Cin] (row stride CinMax·9) += the gradient of the batch (x, dy read in place), with the
    /// <paramref name="lanes"/>-lane kernel (<see cref="LanesFor"/>).
    /// </summary>
    public static void Run(in ConvDesc d, float[] x, float[] dy, float[] dw, int threads, int lanes)
    {
        int h = d.H, w = d.W, hw = h * w, stride = w + 2, padded = (h + 2) * stride;
        int block = Math.Clamp(4096 / hw, 1, d.N);
        long xImg = (long)d.Cin * hw, yImg = (long)d.Cout * hw;
        int tiles = (d.Cout + CoTile - 1) / CoTile, cin = d.Cin, cout = d.Cout, ldw = d.CinMax * 9;
        var par = new ParallelOptions { MaxDegreeOfParallelism = threads };
        // The caller's thread owns the bordered copy; the tile tasks only read it.
        float* xp = Scratch.TakeAligned(Scratch.Use.ConvColumns, (long)block * cin * padded + Lanes);
        for (int n0 = 0; n0 < d.N; n0 += block)
        {
            int nb = Math.Min(block, d.N - n0), first = n0;
            fixed (float* px = x)
            {
                float* src = px + first * xImg;
                Parallel.For(0, nb * cin, par,
                    plane => ConvDirect.BorderPlane(src + (long)plane * hw, xp + (long)plane * padded, h, w));
            }
            Parallel.For(0, tiles, par, t =>
            {
                fixed (float* pdy = dy, pdw = dw)
                {
                    int co = t * CoTile;
                    float* dyBlock = pdy + first * yImg;
                    for (int ci = 0; ci < cin; ci++)
                    {
                        float* plane = xp + (long)ci * padded, dwTile = pdw + (long)co * ldw + ci * 9;
                        int rows = Math.Min(CoTile, cout - co);
                        if (lanes == Lanes) Tile(dyBlock, yImg, hw, co, rows, plane, (long)cin * padded, nb, h, w,
                            dwTile, ldw);
                        else Tile8(dyBlock, yImg, hw, co, rows, plane, (long)cin * padded, nb, h, w, dwTile, ldw);
                    }
                }
            });
        }
    }

    /// <summary>
    /// dW[co + i, ci, ·, ·] += Σ over the block's images and pixels, for the tile's <paramref name="rows"/> (1–3)
    /// output channels. A tile with fewer rows reads its last row's dy again and stores only its own rows. The
    /// lane sums are a second method's output through memory: with the sums' calls in the same method, the JIT
    /// keeps the accumulators in stack slots and writes each back on every iteration of the pixel loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile(float* dy, long yImg, int hw, int co, int rows, float* xPlane, long xImg, int images,
        int h, int w, float* dw, int ldw)
    {
        var acc = stackalloc Vector512<float>[3 * 9];
        Sums(dy, yImg, hw, co, rows, xPlane, xImg, images, h, w, acc);
        for (int r = 0; r < rows; r++)
        for (int t = 0; t < 9; t++)
            dw[(long)r * ldw + t] += Sum(acc[r * 9 + t]);
    }

    /// <summary>The tile's 27 lane-wise sums into <paramref name="acc"/> (row-major: output channel, tap).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sums(float* dy, long yImg, int hw, int co, int rows, float* xPlane, long xImg, int images,
        int h, int w, Vector512<float>* acc)
    {
        int stride = w + 2;
        long r1 = (long)Math.Min(1, rows - 1) * hw, r2 = (long)Math.Min(2, rows - 1) * hw;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default;
        Vector512<float> a06 = default, a07 = default, a08 = default, a10 = default, a11 = default, a12 = default;
        Vector512<float> a13 = default, a14 = default, a15 = default, a16 = default, a17 = default, a18 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a24 = default, a25 = default;
        Vector512<float> a26 = default, a27 = default, a28 = default;
        for (int n = 0; n < images; n++)
        {
            float* g0 = dy + n * yImg + (long)co * hw;
            float* xs = xPlane + n * xImg;
            for (int oh = 0; oh < h; oh++)
            {
                float* gRow = g0 + (long)oh * w;
                float* x0 = xs + (long)oh * stride;
                for (int ow = 0; ow < w; ow += Lanes)
                {
                    var d0 = Vector512.Load(gRow + ow);
                    var d1 = Vector512.Load(gRow + r1 + ow);
                    var d2 = Vector512.Load(gRow + r2 + ow);
                    float* p = x0 + ow;
                    var v = Vector512.Load(p);
                    a00 = Vector512.FusedMultiplyAdd(d0, v, a00); a10 = Vector512.FusedMultiplyAdd(d1, v, a10);
                    a20 = Vector512.FusedMultiplyAdd(d2, v, a20);
                    v = Vector512.Load(p + 1);
                    a01 = Vector512.FusedMultiplyAdd(d0, v, a01); a11 = Vector512.FusedMultiplyAdd(d1, v, a11);
                    a21 = Vector512.FusedMultiplyAdd(d2, v, a21);
                    v = Vector512.Load(p + 2);
                    a02 = Vector512.FusedMultiplyAdd(d0, v, a02); a12 = Vector512.FusedMultiplyAdd(d1, v, a12);
                    a22 = Vector512.FusedMultiplyAdd(d2, v, a22);
                    p += stride;
                    v = Vector512.Load(p);
                    a03 = Vector512.FusedMultiplyAdd(d0, v, a03); a13 = Vector512.FusedMultiplyAdd(d1, v, a13);
                    a23 = Vector512.FusedMultiplyAdd(d2, v, a23);
                    v = Vector512.Load(p + 1);
                    a04 = Vector512.FusedMultiplyAdd(d0, v, a04); a14 = Vector512.FusedMultiplyAdd(d1, v, a14);
                    a24 = Vector512.FusedMultiplyAdd(d2, v, a24);
                    v = Vector512.Load(p + 2);
                    a05 = Vector512.FusedMultiplyAdd(d0, v, a05); a15 = Vector512.FusedMultiplyAdd(d1, v, a15);
                    a25 = Vector512.FusedMultiplyAdd(d2, v, a25);
                    p += stride;
                    v = Vector512.Load(p);
                    a06 = Vector512.FusedMultiplyAdd(d0, v, a06); a16 = Vector512.FusedMultiplyAdd(d1, v, a16);
                    a26 = Vector512.FusedMultiplyAdd(d2, v, a26);
                    v = Vector512.Load(p + 1);
                    a07 = Vector512.FusedMultiplyAdd(d0, v, a07); a17 = Vector512.FusedMultiplyAdd(d1, v, a17);
                    a27 = Vector512.FusedMultiplyAdd(d2, v, a27);
                    v = Vector512.Load(p + 2);
                    a08 = Vector512.FusedMultiplyAdd(d0, v, a08); a18 = Vector512.FusedMultiplyAdd(d1, v, a18);
                    a28 = Vector512.FusedMultiplyAdd(d2, v, a28);
                }
            }
        }
        acc[0] = a00; acc[1] = a01; acc[2] = a02; acc[3] = a03; acc[4] = a04; acc[5] = a05; acc[6] = a06;
        acc[7] = a07; acc[8] = a08; acc[9] = a10; acc[10] = a11; acc[11] = a12; acc[12] = a13; acc[13] = a14;
        acc[14] = a15; acc[15] = a16; acc[16] = a17; acc[17] = a18; acc[18] = a20; acc[19] = a21; acc[20] = a22;
        acc[21] = a23; acc[22] = a24; acc[23] = a25; acc[24] = a26; acc[25] = a27; acc[26] = a28;
    }

    /// <summary>The 16 lanes summed in double (each lane already holds a sum over ~N·H·W/16 products).</summary>
    private static float Sum(Vector512<float> v)
    {
        var (lo, hi) = Vector512.Widen(v);
        return (float)Vector512.Sum(lo + hi);
    }
}
