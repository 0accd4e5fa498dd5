using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

// The direct convolution of both SIMD paths when every 16-pixel panel lies inside one output row (Wo a multiple
// of 16): B rows read in place from a zero-bordered copy of x, with no mask and no packing.
internal static unsafe partial class ConvDirect
{
    /// <summary>Rows of whole panels read from a zero-bordered copy of x (off only to time the masked form).</summary>
    internal static bool BorderedOn { get; set; } = true;

    /// <summary>Whether <see cref="RunBordered"/> computes this conv (stride 1, whole panels per output row).</summary>
    public static bool FitsBordered(in ConvDesc d) => d.Stride == 1 && d.Wo % Sgemm.NR == 0 && BorderedOn;

    /// <summary>
    /// y[:, lo:hi] = W · im2col(x)[:, lo:hi] + beta·y on the weight's path (AVX-512 16×16 or AVX2 6×16 tiles),
    /// when every 16-pixel panel lies inside one output row: x's rows that [lo, hi) reads are first copied into a
    /// zero-bordered image ((H + 2P) × (W + 2P) per channel), where B row p of the panel at output (oh, ow0) is 16
    /// contiguous floats at (oh·(W + 2P) + ow0) + delta[p]: a plain load. The masked form loaded and converted a
    /// lane mask per k step (an FP-port op beside the FMAs); the packed form (AVX2) wrote every panel first.
    /// </summary>
    public static void RunBordered(in ConvDesc d, Sgemm.PackedA w, float* x, int lo, int hi, float beta, float* y)
    {
        const int NR = Sgemm.NR;
        int k = d.K, kk = d.Cin * k * k, hw = d.Ho * d.Wo, wo = d.Wo, pad = d.Pad, m = d.Cout;
        bool avx512 = w.Path == SgemmPath.Avx512;
        int mPadded = Sgemm.RoundUp(m, Sgemm.PanelHeight(w.Path)), kcStep = Sgemm.KcStep(kk);
        int stride = d.W + 2 * pad, rows = d.H + 2 * pad;
        // Padded rows [r0, r1) hold every input row the output rows of [lo, hi) read.
        int r0 = lo / wo, r1 = (hi - 1) / wo + k;
        // Without padding the bordered image is x itself.
        float* xb = pad == 0 ? x : Scratch.TakeAligned(Scratch.Use.ConvBordered, (long)d.Cin * rows * stride + NR);
        if (pad > 0)
            for (int ci = 0; ci < d.Cin; ci++)
            for (int r = r0; r < r1; r++)
                BorderRow(x + ((long)ci * d.H + r - pad) * d.W, xb + ((long)ci * rows + r) * stride, d.W, pad,
                    (uint)(r - pad) < (uint)d.H);
        var delta = (int*)Scratch.TakeAligned(Scratch.Use.ConvTaps, kk);
        for (int ci = 0, p = 0; ci < d.Cin; ci++)
        for (int kh = 0; kh < k; kh++)
        for (int kw = 0; kw < k; kw++, p++)
            delta[p] = (ci * rows + kh) * stride + kw;
        float* edge = stackalloc float[Sgemm.MR * NR];
        for (int pc = 0; pc < kk; pc += kcStep)
        {
            int kc = Math.Min(kcStep, kk - pc);
            float betaEff = pc == 0 ? beta : 1f;
            float* aBlock = (float*)w.Data + (long)pc * mPadded;
            if (avx512 && m <= ThinRows && ThinOn)
            {
                // Four panels a k step (ConvDirect.Thin.cs); [lo, hi) is whole panels.
                for (int j0 = lo; j0 < hi; j0 += 4 * NR)
                {
                    int np = Math.Min(4, (hi - j0) / NR);
                    float* Origin(int j) => xb + (long)(j / wo) * stride + j % wo;
                    float* o0 = Origin(j0);
                    ThinTile(kc, aBlock, delta + pc, o0, np > 1 ? Origin(j0 + NR) : o0,
                        np > 2 ? Origin(j0 + 2 * NR) : o0, np > 3 ? Origin(j0 + 3 * NR) : o0, m, np, y + j0, hw,
                        betaEff);
                }
                continue;
            }
            for (int j0 = lo; j0 < hi; j0 += NR)
            {
                float* origin = xb + (long)(j0 / wo) * stride + j0 % wo;
                float* yTile = y + j0;
                if (avx512 && PrefetchOn)
                {
                    // The first 16-row tile also prefetches each B row two panels ahead (see PrefetchedRows).
                    int first = Math.Min(Sgemm.MR512, m);
                    Sgemm.Kernel16x16(kc, aBlock, new PrefetchedRows(origin, delta + pc), yTile, hw, 1f, betaEff, first,
                        NR);
                    if (m > first)
                        Tiles(kc, aBlock + (long)first * kc, new BorderedRows(origin, delta + pc), m - first,
                            yTile + (long)first * hw, hw, betaEff, NR);
                }
                else if (avx512) Tiles(kc, aBlock, new BorderedRows(origin, delta + pc), m, yTile, hw, betaEff, NR);
                else Tiles6(kc, aBlock, new BorderedRows256(origin, delta + pc), m, yTile, hw, betaEff, edge);
            }
        }
    }

    /// <summary>
    /// The AVX2 column of C tiles: 6-row tiles, then the last (m not a multiple of 6): 4 rows straight into y, fewer
    /// through <paramref name="edge"/> (6×16) on the 4-row kernel, 5 on the 6-row kernel, stored as the GEMM stores
    /// its edge tiles.
    /// </summary>
    internal static void Tiles6<TB>(int kc, float* aBlock, TB rows, int m, float* y, int ldy, float beta, float* edge)
        where TB : struct, Sgemm.IBRows256
    {
        const int MR = Sgemm.MR, NR = Sgemm.NR;
        int ir = 0;
        for (; ir + MR <= m; ir += MR)
            Sgemm.Kernel6x16(kc, aBlock + (long)ir * kc, rows, y + (long)ir * ldy, ldy, 1f, beta);
        int left = m - ir;
        if (left == 0) return;
        float* a = aBlock + (long)ir * kc;
        if (left == 4 && Sgemm.Edge4On)
        {
            Sgemm.Kernel4x16(kc, a, rows, y + (long)ir * ldy, ldy, 1f, beta);
            return;
        }
        if (left < 4 && Sgemm.Edge4On) Sgemm.Kernel4x16(kc, a, rows, edge, NR, 1f, 0f);
        else Sgemm.Kernel6x16(kc, a, rows, edge, NR, 1f, 0f);
        Sgemm.StoreEdge(edge, y + (long)ir * ldy, ldy, left, NR, 1f, beta);
    }

    /// <summary>
    /// One row of a zero-bordered copy: pad zeros, the input row (zeros for a row outside the image), pad zeros.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void BorderRow(float* src, float* dst, int w, int pad, bool inside)
    {
        for (int i = 0; i < pad; i++) dst[i] = dst[pad + w + i] = 0f;
        dst += pad;
        if (inside) new ReadOnlySpan<float>(src, w).CopyTo(new Span<float>(dst, w));
        else new Span<float>(dst, w).Clear();
    }

    /// <summary>
    /// One h × w plane into its zero-bordered (h + 2) × (w + 2) copy (a pad of 1): the 3×3 weight gradient's and the
    /// Winograd transforms' input.
    /// </summary>
    internal static void BorderPlane(float* src, float* dst, int h, int w)
    {
        for (int r = 0; r < h + 2; r++)
            BorderRow(src + (long)(r - 1) * w, dst + (long)r * (w + 2), w, 1, (uint)(r - 1) < (uint)h);
    }

    /// <summary>B row p read in place from the zero-bordered copy: 16 floats at origin + delta[p].</summary>
    private readonly struct BorderedRows(float* origin, int* delta) : Sgemm.IBRows
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Row(int p) => Vector512.Load(origin + delta[p]);
    }

    /// <summary>
    /// On the AVX-512 path the first tile row of each panel prefetches its B rows two panels (32 floats) ahead: a
    /// conv's K rows are K streams a plane apart, more than the hardware prefetchers follow, so where x is no longer
    /// in cache (a UNet skip conv reads the block's input long after the norm that read it last) every B row was a
    /// miss. The AVX2 kernel, with 2.5× the instructions per FMA, hid them: prefetching measured 0.91–1.01 there, so
    /// it does not. Off only to time it.
    /// </summary>
    internal static bool PrefetchOn { get; set; } = true;

    /// <summary>How far ahead <see cref="PrefetchedRows"/> asks for a B row: two 16-pixel panels.</summary>
    private const int PrefetchAhead = 2 * Sgemm.NR;

    /// <summary><see cref="BorderedRows"/> that also prefetch each row <see cref="PrefetchAhead"/> floats on.</summary>
    private readonly struct PrefetchedRows(float* origin, int* delta) : Sgemm.IBRows
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Row(int p)
        {
            float* q = origin + delta[p];
            Sse.Prefetch0(q + PrefetchAhead);
            return Vector512.Load(q);
        }
    }

    /// <summary>The same rows as two ymm halves, for the AVX2 kernel.</summary>
    private readonly struct BorderedRows256(float* origin, int* delta) : Sgemm.IBRows256
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Lo(int p) => Avx.LoadVector256(origin + delta[p]);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Hi(int p) => Avx.LoadVector256(origin + delta[p] + 8);
    }
}
