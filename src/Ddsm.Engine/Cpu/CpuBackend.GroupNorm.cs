using System.Buffers;

namespace Ddsm.Engine.Cpu;

// GroupNorm with ADM's fused scale-shift norm and SiLU, in one pass over x per (sample, group):
//   xhat = (x − μ_ng)·rstd_ng,  z = xhat·γ_c + β_c,  u = z·(1 + scale_nc) + shift_nc,  y = act(u).
// The group of (n, g) is one contiguous block of C/G channel rows of S floats, so each task owns its
// block of x, y, dx, dscale, dshift outright: no atomics. Statistics are two-pass (DoubleSums).
// dγ/dβ sum over samples, so each task writes per-(n, c) partials that are reduced afterwards in a
// fixed order: results are bit-identical whatever the thread schedule.
public sealed partial class CpuBackend
{
    public override void GroupNormForward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer y, DeviceBuffer mean, DeviceBuffer rstd)
    {
        using var timer = Profiler.Kernel("groupnorm_fwd");
        var xa = A(x); var ga = A(gamma); var ba = A(beta); var ya = A(y); var ma = A(mean); var ra = A(rstd);
        var sca = scale is null ? null : A(scale); var sha = shift is null ? null : A(shift);
        var g = d;
        int cpg = d.C / d.G, s = d.S, groupLen = cpg * s;
        Parallel.For(0, d.N * d.G, Par, ng =>
        {
            int n = ng / g.G, c0 = ng % g.G * cpg;
            int off = (n * g.C + c0) * s;
            var xs = xa.AsSpan(off, groupLen);
            double mu = DoubleSums.Sum(xs) / groupLen;
            double r = 1.0 / Math.Sqrt(DoubleSums.SumSquaredDeviations(xs, mu) / groupLen + g.Eps);
            ma[ng] = (float)mu; ra[ng] = (float)r;
            for (int j = 0; j < cpg; j++)
            {
                int c = c0 + j, nc = n * g.C + c;
                // y = a·x + b per channel: the whole affine chain folded into two scalars.
                double s1 = 1.0 + (sca is null ? 0.0 : sca[nc]);
                double a = r * ga[c] * s1;
                double b = (ba[c] - mu * r * ga[c]) * s1 + (sha is null ? 0.0 : sha[nc]);
                var xr = xa.AsSpan(off + j * s, s);
                GroupNormRows.AffineAct(xr, (float)a, (float)b, g.SiLU, ya.AsSpan(off + j * s, s));
            }
        });
    }

    public override void GroupNormBackward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer dy,
        DeviceBuffer? dx, DeviceBuffer? dgamma, DeviceBuffer? dbeta, DeviceBuffer? dscale, DeviceBuffer? dshift)
    {
        using var timer = Profiler.Kernel("groupnorm_bwd");
        var xa = A(x); var ga = A(gamma); var ba = A(beta); var ma = A(mean); var ra = A(rstd); var gya = A(dy);
        var sca = scale is null ? null : A(scale); var sha = shift is null ? null : A(shift);
        var dxa = dx is null ? null : A(dx);
        var dsca = dscale is null ? null : A(dscale); var dsha = dshift is null ? null : A(dshift);
        var g = d;
        int cpg = d.C / d.G, s = d.S, groupLen = cpg * s;
        // du = ∂L/∂u differs from dy only through the activation; without it dy is used in place.
        bool silu = d.SiLU;
        // (N, C) per-sample partials of Σ_s dz and Σ_s dz·xhat, for dβ and dγ: every entry is written below, so
        // pooled arrays serve (a new pair of N·C doubles per call was 128 KiB of garbage at N64 C128).
        var partB = dbeta is null ? null : ArrayPool<double>.Shared.Rent(d.N * d.C);
        var partG = dgamma is null ? null : ArrayPool<double>.Shared.Rent(d.N * d.C);
        Parallel.For(0, d.N * d.G, Par, ng =>
        {
            // Scratch: du of the group (with SiLU); xhat = x·r − μ·r is recomputed from x where needed.
            var duBuf = silu ? Scratch.Take(Scratch.Use.Norm, groupLen) : null;
            int n = ng / g.G, c0 = ng % g.G * cpg;
            int off = (n * g.C + c0) * s;
            double mu = ma[ng], r = ra[ng];
            float rf = (float)r, b0 = (float)(-mu * r);
            var duAll = silu ? duBuf.AsSpan(0, groupLen) : gya.AsSpan(off, groupLen);
            double m1 = 0, m2 = 0; // Σ_c k_c·Σ_s du, Σ_c k_c·Σ_s du·xhat with k_c = γ_c(1+scale)
            for (int j = 0; j < cpg; j++)
            {
                int c = c0 + j, nc = n * g.C + c;
                double s1 = 1.0 + (sca is null ? 0.0 : sca[nc]);
                // u = xhat·γ(1+scale) + β(1+scale) + shift, recomputed for du = dy·silu'(u).
                float zs = (float)(ga[c] * s1), zb = (float)(ba[c] * s1 + (sha is null ? 0.0 : sha[nc]));
                var (sumDu, sumDuXh) = GroupNormRows.Reduce(xa.AsSpan(off + j * s, s), rf, b0, silu, zs, zb,
                    gya.AsSpan(off + j * s, s), duAll.Slice(j * s, s),
                    dxa is null ? default : dxa.AsSpan(off + j * s, s));
                if (dsha is not null) dsha[nc] += (float)sumDu;
                // ∂u/∂scale = z = xhat·γ + β.
                if (dsca is not null) dsca[nc] += (float)(ga[c] * sumDuXh + ba[c] * sumDu);
                if (partB is not null) partB[nc] = s1 * sumDu;
                if (partG is not null) partG[nc] = s1 * sumDuXh;
                double k = ga[c] * s1;
                m1 += k * sumDu; m2 += k * sumDuXh;
            }
            if (dxa is not null)
            {
                // dx = rstd·(k_c·du − mean(dxhat) − xhat·mean(dxhat·xhat)), means over the group.
                m1 /= groupLen; m2 /= groupLen;
                for (int j = 0; j < cpg; j++)
                {
                    int c = c0 + j, nc = n * g.C + c;
                    double k = ga[c] * (1.0 + (sca is null ? 0.0 : sca[nc]));
                    GroupNormRows.AddDx(xa.AsSpan(off + j * s, s), rf, b0, duAll.Slice(j * s, s),
                        (float)(r * k), (float)(-r * m1), (float)(-r * m2), dxa.AsSpan(off + j * s, s));
                }
            }
        });

        // Fixed-order reduction over samples: deterministic dγ, dβ on the active prefix only.
        if (partG is not null)
        {
            ReduceOverSamples(partG, A(dgamma!), d.N, d.C);
            ArrayPool<double>.Shared.Return(partG);
        }
        if (partB is not null)
        {
            ReduceOverSamples(partB, A(dbeta!), d.N, d.C);
            ArrayPool<double>.Shared.Return(partB);
        }
    }

    private static void ReduceOverSamples(double[] part, float[] dst, int n, int c)
    {
        for (int ch = 0; ch < c; ch++)
        {
            double acc = 0;
            for (int i = 0; i < n; i++) acc += part[i * c + ch];
            dst[ch] += (float)acc;
        }
    }
}
