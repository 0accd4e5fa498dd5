using Ddsm.Kernels;
using System.Numerics;

namespace Ddsm.Engine.Cpu;

// Resampling, timestep embedding, dropout and the Adam update: simple memory-bound loops.
public sealed partial class CpuBackend
{
    public override void Upsample2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w)
    {
        using var timer = Profiler.Kernel("upsample2x");
        var xa = A(x); var ya = A(y);
        int w2 = 2 * w;
        Parallel.For(0, nc, Par, p =>
        {
            for (int i = 0; i < h; i++)
            {
                int src = (p * h + i) * w, d0 = (p * 2 * h + 2 * i) * w2;
                for (int j = 0; j < w; j++)
                {
                    float v = xa[src + j];
                    ya[d0 + 2 * j] = v; ya[d0 + 2 * j + 1] = v;
                }
                Array.Copy(ya, d0, ya, d0 + w2, w2);
            }
        });
    }

    public override void AvgPool2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w)
    {
        using var timer = Profiler.Kernel("avgpool2x");
        var xa = A(x); var ya = A(y);
        int ho = h / 2, wo = w / 2;
        Parallel.For(0, nc, Par, p =>
        {
            for (int i = 0; i < ho; i++)
            {
                int r0 = (p * h + 2 * i) * w, r1 = r0 + w, d = (p * ho + i) * wo;
                for (int j = 0; j < wo; j++)
                    ya[d + j] = 0.25f * (xa[r0 + 2 * j] + xa[r0 + 2 * j + 1] + xa[r1 + 2 * j] + xa[r1 + 2 * j + 1]);
            }
        });
    }

    public override void TimestepEmbedding(DeviceBuffer t, DeviceBuffer output, int n, int dim, float maxPeriod)
    {
        using var timer = Profiler.Kernel("timestep_embedding");
        var ta = A(t); var oa = A(output);
        int half = dim / 2;
        for (int b = 0; b < n; b++)
        {
            int row = b * dim;
            for (int j = 0; j < half; j++)
            {
                // Computed in double then rounded, so every backend can match to float rounding.
                double f = Math.Exp(-Math.Log(maxPeriod) * j / half);
                double a = ta[b] * f;
                oa[row + j] = (float)Math.Cos(a);
                oa[row + half + j] = (float)Math.Sin(a);
            }
            if ((dim & 1) == 1) oa[row + dim - 1] = 0f;
        }
    }

    public override void Dropout(DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, long n, float p, ulong seed)
    {
        using var timer = Profiler.Kernel("dropout");
        var xa = A(x); var ya = A(y); var ma = A(mask);
        uint threshold = CounterHash.DropThreshold(p);
        float keepScale = 1f / (1f - p);
        Chunked(n, (lo, len) =>
        {
            for (int i = lo; i < lo + len; i++)
            {
                float m = CounterHash.Mask(seed, (ulong)i, threshold, keepScale);
                ma[i] = m;
                ya[i] = xa[i] * m;
            }
        }, 1 << 14);
    }

    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
                                  in AdamHyper h)
    {
        using var timer = Profiler.Kernel("adam_step");
        var pa = A(param); var ga = A(grad); var ma = A(m); var va = A(v);
        var hp = h;
        Chunked(n, (lo, len) =>
        {
            float b1 = hp.Beta1, b2 = hp.Beta2, lr = hp.Lr, eps = hp.Eps, wd = hp.WeightDecay;
            float ibc1 = 1f / hp.BiasCorrection1, ibc2 = 1f / hp.BiasCorrection2, gs = hp.GradScale;
            int i = lo, end = lo + len;
            // SIMD body (~2.5× the scalar loop). Same operations in the same order as the scalar tail
            // (no FMA), so every element gets bit-identical results wherever the chunk boundaries fall.
            if (Vector.IsHardwareAccelerated)
            {
                int w = Vector<float>.Count;
                Vector<float> vb1 = new(b1), vb1c = new(1f - b1), vb2 = new(b2), vb2c = new(1f - b2), vlr = new(lr),
                    veps = new(eps), vwd = new(wd), vibc1 = new(ibc1), vibc2 = new(ibc2), vgs = new(gs);
                for (; i <= end - w; i += w)
                {
                    var g = new Vector<float>(ga, i) * vgs;
                    var mi = vb1 * new Vector<float>(ma, i) + vb1c * g;
                    var vi = vb2 * new Vector<float>(va, i) + vb2c * g * g;
                    mi.CopyTo(ma, i); vi.CopyTo(va, i);
                    var pv = new Vector<float>(pa, i);
                    (pv - vlr * (mi * vibc1 / (Vector.SquareRoot(vi * vibc2) + veps) + vwd * pv)).CopyTo(pa, i);
                }
            }
            for (; i < end; i++)
            {
                float g = ga[i] * gs;
                float mi = b1 * ma[i] + (1f - b1) * g;
                float vi = b2 * va[i] + (1f - b2) * g * g;
                ma[i] = mi; va[i] = vi;
                pa[i] -= lr * (mi * ibc1 / (MathF.Sqrt(vi * ibc2) + eps) + wd * pa[i]);
            }
        }, 1 << 14);
    }
}
