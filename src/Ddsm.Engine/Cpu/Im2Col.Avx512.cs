using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

internal static partial class Im2Col
{
    /// <summary>
    /// One B panel of the fused im2col packing at stride 1 on AVX-512: pixels j0 … j0+nr−1 as kc rows of 16.
    /// The panel's pixels fall into runs, one per output row it touches (one run for a 16-pixel panel inside a
    /// row of 32, two on 8×8 images, …); each run of one packed row is a contiguous piece of one input row,
    /// so a packed row is one masked load per run merged into one zmm, and one store. The masks keep the lanes
    /// of the run that fall inside the input row; lanes past nr stay zero (the pack's padding).
    /// </summary>
    internal static unsafe void PackPanelStride1Avx512(float* x, in ConvDesc d, int j0, int nr, int pc, int kc,
        float* dp)
    {
        int k = d.K, pad = d.Pad, h = d.H, w = d.W, wo = d.Wo;
        // Runs: first lane, length, output row and column of the first lane.
        int* runLane = stackalloc int[Sgemm.NR];
        int* runOh = stackalloc int[Sgemm.NR];
        int* runOw = stackalloc int[Sgemm.NR];
        int* runEnd = stackalloc int[Sgemm.NR];
        int runs = 0;
        for (int c = 0; c < nr; runs++)
        {
            int j = j0 + c, ow = j % wo, len = Math.Min(wo - ow, nr - c);
            runLane[runs] = c; runOh[runs] = j / wo; runOw[runs] = ow; runEnd[runs] = c + len;
            c += len;
        }
        int ci = pc / (k * k), kh = pc / k % k, kw = pc % k;
        for (int p = 0; p < kc; p++, dp += Sgemm.NR)
        {
            float* plane = x + (long)ci * h * w;
            var v = Vector512<float>.Zero;
            for (int r = 0; r < runs; r++)
            {
                int ih = runOh[r] - pad + kh;
                if ((uint)ih >= (uint)h) continue;
                // Lane l of the run reads input column iw0 + l: the run's lanes l with 0 ≤ iw0 + l < w.
                int iw0 = runOw[r] - pad + kw - runLane[r];
                int lo = Math.Max(runLane[r], -iw0), hi = Math.Min(runEnd[r], w - iw0);
                if (lo >= hi) continue;
                var mask = Sgemm.LanesIn(lo, hi);
                // The address row + iw0 may lie before the plane (or the array): only the masked-in lanes, all
                // inside the input row, are read; AVX-512 masked loads suppress faults on the others.
                v = Avx512F.MaskLoad(plane + (long)ih * w + iw0, mask, v);
            }
            Vector512.Store(v, dp);
            if (++kw == k) { kw = 0; if (++kh == k) { kh = 0; ci++; } }
        }
    }
}
