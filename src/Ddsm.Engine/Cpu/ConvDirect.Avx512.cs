using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// Stride-1 convolution on the AVX-512 path as an implicit GEMM: y (Cout × pixels) = W · im2col(x), where the
/// 16×16 kernel reads each B row straight from the image instead of from a packed panel. When a 16-pixel panel
/// lies inside one output row, its B row p = (ci, kh, kw) is 16 contiguous input floats at a fixed offset from
/// the panel's origin (a per-p table), with the lanes that fall in the padding masked off (a per-tap mask, 9
/// per panel for 3×3). That removes the im2col packing pass, which costs as much as the FMAs when Cout is
/// small (a ¼-width conv has one 16-row tile per panel). When Wo is a multiple of 16 (every panel inside one
/// output row) the masks go too: the rows are read from a zero-bordered copy of x (<see cref="RunBordered"/>).
/// Otherwise a panel over two output rows (8×8 images, row ends) merges two masked loads per B row; over more
/// (images narrower than 8) it is packed as before. The weight
/// is the conv's <see cref="Sgemm.PackWholeA"/> pack.
/// </summary>
internal static unsafe partial class ConvDirect
{
    /// <summary>y[:, lo:hi] = W · im2col(x)[:, lo:hi] + beta·y (y rows of stride Ho·Wo).</summary>
    public static void Run(in ConvDesc d, Sgemm.PackedA w, float* x, int lo, int hi, float beta, float* y)
    {
        const int NR = Sgemm.NR, MR = Sgemm.MR512;
        int k = d.K, kk = d.Cin * k * k, hw = d.Ho * d.Wo, wo = d.Wo, h = d.H, wi = d.W, pad = d.Pad, m = d.Cout;
        int mPadded = Sgemm.RoundUp(m, MR), kcStep = Sgemm.KcStep(kk);
        if (FitsBordered(d))
        {
            RunBordered(d, w, x, lo, hi, beta, y);
            return;
        }
        // B row p = (ci, kh, kw) starts at origin + (ci·H + kh)·W + kw and uses the mask of tap kh·K + kw.
        var tables = (int*)Scratch.TakeAligned(Scratch.Use.ConvTaps, 2L * kk);
        int* delta = tables, tapOf = tables + kk;
        for (int ci = 0, p = 0; ci < d.Cin; ci++)
        for (int kh = 0; kh < k; kh++)
        for (int kw = 0; kw < k; kw++, p++)
        {
            delta[p] = (ci * h + kh) * wi + kw;
            tapOf[p] = kh * k + kw;
        }
        var masks = stackalloc Vector512<float>[2 * k * k];
        Vector512<float>* masks2 = masks + k * k;
        float* pB = Scratch.TakeAligned(Scratch.Use.GemmB, (long)kcStep * NR);
        for (int pc = 0; pc < kk; pc += kcStep)
        {
            int kc = Math.Min(kcStep, kk - pc);
            float betaEff = pc == 0 ? beta : 1f;
            float* aBlock = (float*)w.Data + (long)pc * mPadded;
            for (int j0 = lo; j0 < hi; j0 += NR)
            {
                int nr = Math.Min(NR, hi - j0), oh = j0 / wo, ow0 = j0 % wo, split = wo - ow0;
                float* yTile = y + j0;
                // Lane l of the run in output row oh reads input column ow0 − P + kw + l; of the run in row oh + 1
                // (lanes from `split` on) column l − split − P + kw. The origins (and origin + delta[p]) may point
                // before x or past a row: only lanes inside the image are masked in, and AVX-512 masked loads
                // suppress faults on the others.
                if (nr <= split)
                {
                    RunMasks(k, pad, h, wi, oh, 0, nr, ow0, masks);
                    var rows = new DirectRows(x + (long)(oh - pad) * wi + (ow0 - pad), delta + pc, tapOf + pc, masks);
                    Tiles(kc, aBlock, rows, m, yTile, hw, betaEff, nr);
                }
                else if (nr - split <= wo)
                {
                    RunMasks(k, pad, h, wi, oh, 0, split, ow0, masks);
                    RunMasks(k, pad, h, wi, oh + 1, split, nr, -split, masks2);
                    var rows = new DirectRows2(x + (long)(oh - pad) * wi + (ow0 - pad),
                        x + (long)(oh + 1 - pad) * wi - split - pad, delta + pc, tapOf + pc, masks, masks2);
                    Tiles(kc, aBlock, rows, m, yTile, hw, betaEff, nr);
                }
                else
                {
                    Im2Col.PackPanelStride1Avx512(x, d, j0, nr, pc, kc, pB);
                    Tiles(kc, aBlock, new Sgemm.PackedRows(pB), m, yTile, hw, betaEff, nr);
                }
            }
        }
    }

    /// <summary>
    /// The panel's column of C tiles, all of W's 16-row panels against the same B rows (C's rows prefetched unless
    /// <paramref name="prefetchC"/> is false, see <see cref="Sgemm.Kernel16x16{TB}"/>).
    /// </summary>
    internal static void Tiles<TB>(int kc, float* aBlock, TB rows, int m, float* y, int ldy, float beta, int nr,
        bool prefetchC = true) where TB : struct, Sgemm.IBRows
    {
        for (int ir = 0; ir < m; ir += Sgemm.MR512)
            Sgemm.Kernel16x16(kc, aBlock + (long)ir * kc, rows, y + (long)ir * ldy, ldy, 1f, beta,
                Math.Min(Sgemm.MR512, m - ir), nr, prefetchC);
    }

    /// <summary>
    /// Per tap (kh, kw), the lanes [laneLo, laneHi) of one run whose input (row oh − P + kh, column
    /// col0 − P + kw + lane) lies inside the image.
    /// </summary>
    private static void RunMasks(int k, int pad, int h, int wi, int oh, int laneLo, int laneHi, int col0,
        Vector512<float>* masks)
    {
        for (int kw = 0; kw < k; kw++)
        {
            int iw0 = col0 - pad + kw;
            var col = Sgemm.LanesIn(Math.Max(laneLo, -iw0), Math.Min(laneHi, wi - iw0));
            for (int kh = 0; kh < k; kh++)
                masks[kh * k + kw] = (uint)(oh - pad + kh) < (uint)h ? col : Vector512<float>.Zero;
        }
    }

    /// <summary>B row p read in place: 16 input floats at origin + delta[p], masked by its tap's mask.</summary>
    private readonly struct DirectRows(float* origin, int* delta, int* tapOf, Vector512<float>* masks)
        : Sgemm.IBRows
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Row(int p) =>
            Avx512F.MaskLoad(origin + delta[p], masks[tapOf[p]], Vector512<float>.Zero);
    }

    /// <summary>A panel over two output rows (8-wide images, row ends): two masked loads merged.</summary>
    private readonly struct DirectRows2(float* origin, float* origin2, int* delta, int* tapOf,
        Vector512<float>* masks, Vector512<float>* masks2) : Sgemm.IBRows
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Row(int p)
        {
            int dp = delta[p], t = tapOf[p];
            var first = Avx512F.MaskLoad(origin + dp, masks[t], Vector512<float>.Zero);
            return Avx512F.MaskLoad(origin2 + dp, masks2[t], first);
        }
    }
}
