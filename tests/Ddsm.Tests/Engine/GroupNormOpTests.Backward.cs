using Ddsm.Engine;

namespace Ddsm.Tests.Engine;

/// <summary>
/// GroupNorm's backward at the UNet's shapes (rows of 30² and 32²: many SIMD blocks per sum, and a scalar
/// tail at 30²) against the analytic gradient in double: the small-shape tests above compare with central
/// differences at loose tolerances and never reach a row long enough for the kernels' blocked sums.
/// </summary>
public abstract partial class GroupNormOpTests
{
    [TestCase(32, true, true)]
    [TestCase(30, true, false)]
    [TestCase(30, false, true)]
    [Covers("groupnorm_fwd", "groupnorm_bwd", "groupnorm_param_grad")]
    public void BackwardAtUNetShapesMatchesDoubleGradient(int side, bool silu, bool scaleShift)
    {
        if (Small) side /= 2;
        int n = 2, c = 64, groups = 16, s = side * side;
        var r = new Rng((ulong)(side * 10 + (silu ? 1 : 0) + (scaleShift ? 2 : 0)));
        float[] Rand(int count, float offset = 0f)
        {
            var a = new float[count];
            r.FillNormal(a);
            for (int i = 0; i < a.Length; i++) a[i] += offset;
            return a;
        }
        var x = Rand(n * c * s, 1.5f); var gamma = Rand(c); var beta = Rand(c); var gy = Rand(n * c * s);
        var sc = scaleShift ? Rand(n * c) : null; var sh = scaleShift ? Rand(n * c) : null;

        var ps = new List<Tensor>
        {
            Tensor.Parameter(B, "x", x, n, c, side, side), Tensor.Parameter(B, "gamma", gamma, c),
            Tensor.Parameter(B, "beta", beta, c),
        };
        if (scaleShift)
        {
            ps.Add(Tensor.Parameter(B, "scale", sc, n, c));
            ps.Add(Tensor.Parameter(B, "shift", sh, n, c));
        }
        float[][] got;
        using (new TensorScope())
        {
            var y = F.GroupNorm(ps[0], ps[1], ps[2], groups, 1e-5f, scaleShift ? ps[3] : null,
                scaleShift ? ps[4] : null, silu);
            Tape.Backward(F.Sum(F.Mul(y, Tensor.FromArray(B, gy, y.Shape))));
            got = ps.Select(p => p.Grad!.ToArray()).ToArray();
        }
        foreach (var p in ps) p.Dispose();

        var want = Gradients(x, gamma, beta, sc, sh, gy, n, c, s, groups, 1e-5, silu);
        string[] names = ["dx", "dγ", "dβ", "dscale", "dshift"];
        // Float rounding of du and x̂ summed over 2·1024 terms with cancellation: the previous kernel (double
        // lanes throughout) and this one both reach ~1e-5 relative on dγ, ~2e-7 absolute on dx near 0.
        for (int k = 0; k < got.Length; k++)
            OpCheck.AssertClose($"{names[k]} at {side}² silu={silu} ss={scaleShift}", got[k], want[k],
                5e-6 * TolScale, 5e-5 * TolScale);
    }

    /// <summary>dx, dγ, dβ, dscale, dshift of Σ y·gy in double, y as in <see cref="Reference"/>.</summary>
    private static double[][] Gradients(float[] x, float[] gamma, float[] beta, float[]? scale, float[]? shift,
        float[] gy, int n, int c, int s, int groups, double eps, bool silu)
    {
        var dx = new double[x.Length]; var dg = new double[c]; var db = new double[c];
        var dsc = new double[n * c]; var dsh = new double[n * c];
        int cpg = c / groups, len = cpg * s;
        var xh = new double[len]; var dxh = new double[len];
        var xd = x.Select(v => (double)v).ToArray();
        for (int b = 0; b < n; b++)
            for (int g = 0; g < groups; g++)
            {
                int off = (b * c + g * cpg) * s;
                var (mu, rs) = GroupStats(xd.AsSpan(off, len), eps);
                double m1 = 0, m2 = 0;
                for (int i = 0; i < len; i++)
                {
                    int ch = g * cpg + i / s, nc = b * c + ch;
                    double s1 = 1 + (scale?[nc] ?? 0);
                    xh[i] = (x[off + i] - mu) * rs;
                    double z = xh[i] * gamma[ch] + beta[ch], u = z * s1 + (shift?[nc] ?? 0), du = gy[off + i];
                    if (silu) { double sg = 1 / (1 + Math.Exp(-u)); du *= sg * (1 + u * (1 - sg)); }
                    dsh[nc] += du; dsc[nc] += du * z;
                    double dz = du * s1;
                    dg[ch] += dz * xh[i]; db[ch] += dz;
                    dxh[i] = dz * gamma[ch];
                    m1 += dxh[i]; m2 += dxh[i] * xh[i];
                }
                m1 /= len; m2 /= len;
                for (int i = 0; i < len; i++) dx[off + i] = rs * (dxh[i] - m1 - xh[i] * m2);
            }
        return scale is null ? [dx, dg, db] : [dx, dg, db, dsc, dsh];
    }
}
