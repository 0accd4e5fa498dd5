using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

// The 3×3 stride-2 pad-1 convs (the UNet's downsampling) as direct convs on both SIMD paths. On the packed path they
// ran at ~21 GF/s at 32 channels: each 16-pixel panel was packed (288 rows of strided reads) for two 16-row tiles
// of FMAs. Here x is first split by column parity into a zero-bordered copy, so that the 16 input columns of B row
// (ci, kh, kw) for 16 consecutive output columns are contiguous: column 2·ow − 1 + kw of x is column ow + kw / 2 of
// the copy's phase kw % 2.
internal static unsafe partial class ConvDirect
{
    /// <summary>Whether <see cref="RunStride2"/> computes this conv: 3×3, stride 2, pad 1, even H and W, and output
    /// rows of 8 (a panel is two of them) or of a multiple of 16 pixels.</summary>
    public static bool FitsStride2(in ConvDesc d) =>
        d.K == 3 && d.Stride == 2 && d.Pad == 1 && d.H % 2 == 0 && d.W % 2 == 0 &&
        (d.Wo % Sgemm.NR == 0 || d.Wo == Sgemm.NR / 2);

    /// <summary>
    /// y[:, lo:hi] = W · im2col(x)[:, lo:hi] + beta·y for a conv that <see cref="FitsStride2"/>, on the weight's path.
    /// The copy holds, per channel and bordered row r (input row r − 1), the even then the odd columns of the
    /// bordered row (input columns −1, 1, 3, … and 0, 2, 4, …), Wo + 1 each; output row oh reads bordered rows
    /// 2·oh + kh.
    /// </summary>
    public static void RunStride2(in ConvDesc d, Sgemm.PackedA w, float* x, int lo, int hi, float beta, float* y)
    {
        const int NR = Sgemm.NR;
        int kk = d.Cin * 9, hw = d.Ho * d.Wo, wo = d.Wo, m = d.Cout, h = d.H, wi = d.W;
        bool avx512 = w.Path == SgemmPath.Avx512;
        int mPadded = Sgemm.RoundUp(m, Sgemm.PanelHeight(w.Path)), kcStep = Sgemm.KcStep(kk);
        int half = wo + 1, rowLen = 2 * half, rows = h + 2;
        // Bordered rows [r0, r1) hold every input row the output rows of [lo, hi) read.
        int r0 = 2 * (lo / wo), r1 = 2 * ((hi - 1) / wo) + 3;
        float* ph = Scratch.TakeAligned(Scratch.Use.ConvBordered, (long)d.Cin * rows * rowLen + NR);
        for (int ci = 0; ci < d.Cin; ci++)
        for (int r = r0; r < r1; r++)
        {
            float* even = ph + ((long)ci * rows + r) * rowLen, odd = even + half;
            float* src = x + ((long)ci * h + r - 1) * wi;
            if ((uint)(r - 1) >= (uint)h)
            {
                new Span<float>(even, rowLen).Clear();
                continue;
            }
            // Bordered column 2j is input column 2j − 1 (zero for j = 0), 2j + 1 is input column 2j (zero at the end).
            even[0] = 0f;
            for (int j = 1; j < half; j++) even[j] = src[2 * j - 1];
            for (int j = 0; j < half - 1; j++) odd[j] = src[2 * j];
            odd[half - 1] = 0f;
        }
        var delta = (int*)Scratch.TakeAligned(Scratch.Use.ConvTaps, kk);
        for (int ci = 0, p = 0; ci < d.Cin; ci++)
        for (int kh = 0; kh < 3; kh++)
        for (int kw = 0; kw < 3; kw++, p++)
            delta[p] = (ci * rows + kh) * rowLen + (kw & 1) * half + (kw >> 1);
        float* edge = stackalloc float[Sgemm.MR * NR];
        for (int pc = 0; pc < kk; pc += kcStep)
        {
            int kc = Math.Min(kcStep, kk - pc);
            float betaEff = pc == 0 ? beta : 1f;
            float* aBlock = (float*)w.Data + (long)pc * mPadded;
            for (int j0 = lo; j0 < hi; j0 += NR)
            {
                // The panel's first output row oh reads bordered rows from 2·oh; an 8-wide second row from 2·oh + 2.
                float* origin = ph + (long)(2 * (j0 / wo)) * rowLen + j0 % wo;
                var runs = new Stride2Rows(origin, wo % NR == 0 ? 8 : 2L * rowLen, delta + pc);
                if (!avx512) Tiles6(kc, aBlock, runs, m, y + j0, hw, betaEff, edge);
                else if (wo % NR == 0)
                    Tiles(kc, aBlock, new BorderedRows(origin, delta + pc), m, y + j0, hw, betaEff, NR);
                else Tiles(kc, aBlock, runs, m, y + j0, hw, betaEff, NR);
            }
        }
    }

    /// <summary>
    /// B row p: 16 floats as two runs of 8, at origin + delta[p] and origin + delta[p] + second (8 for a
    /// 16-pixel output row, the next output row's offset for rows of 8).
    /// </summary>
    private readonly struct Stride2Rows(float* origin, long second, int* delta) : Sgemm.IBRows, Sgemm.IBRows256
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Row(int p) => Vector512.Create(Lo(p), Hi(p));
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Lo(int p) => Avx.LoadVector256(origin + delta[p]);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Hi(int p) => Avx.LoadVector256(origin + delta[p] + second);
    }
}
