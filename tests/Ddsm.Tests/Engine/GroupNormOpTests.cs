using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// GroupNorm (slimmable, with ADM's fused scale-shift and SiLU) against a float64 reference.
/// Tolerances: forward |err| ≤ 1e-4 + 1e-3·|ref|; gradients vs central differences in double
/// ≤ 2e-3 + 2e-3·|ref| (float accumulation over groups of ≤ 512 elements stays well inside).
/// </summary>
public abstract partial class GroupNormOpTests : BackendFixture
{
    /// <summary>
    /// y = act((xhat·γ[:C] + β[:C])·(1+scale) + shift) in double; x (N, C, S), γ/β (CMax), scale/shift (N, C).
    /// </summary>
    internal static double[] Reference(double[] x, double[] gamma, double[] beta, double[]? scale, double[]? shift,
        int n, int c, int s, int groups, double eps, bool silu)
    {
        var y = new double[x.Length];
        int cpg = c / groups, len = cpg * s;
        for (int b = 0; b < n; b++)
            for (int g = 0; g < groups; g++)
            {
                int off = (b * c + g * cpg) * s;
                var (mu, r) = GroupStats(x.AsSpan(off, len), eps);
                for (int i = 0; i < len; i++)
                {
                    int ch = g * cpg + i / s;
                    double u = ((x[off + i] - mu) * r * gamma[ch] + beta[ch]) * (1 + (scale?[b * c + ch] ?? 0)) +
                        (shift?[b * c + ch] ?? 0);
                    y[off + i] = silu ? u / (1 + Math.Exp(-u)) : u;
                }
            }
        return y;
    }

    /// <summary>Two-pass mean and 1/√(var + eps) of one group, in double.</summary>
    internal static (double Mean, double Rstd) GroupStats(ReadOnlySpan<double> x, double eps)
    {
        double mu = 0, v = 0;
        foreach (var e in x) mu += e;
        mu /= x.Length;
        foreach (var e in x) v += (e - mu) * (e - mu);
        return (mu, 1 / Math.Sqrt(v / x.Length + eps));
    }

    // (cMax, c, groups): the slim cases 2/8 width with 4 groups, and true slim widths with 16 groups
    // (CMax = 64, C = 16 has one channel per group), plus a full-width layer.
    [TestCase(32, 8, 4, false, false)]
    [TestCase(32, 8, 4, true, true)]
    [TestCase(128, 32, 16, false, false)]
    [TestCase(128, 32, 16, true, true)]
    [TestCase(128, 32, 16, true, false)]
    [TestCase(64, 16, 16, false, true)]
    [TestCase(64, 16, 16, true, true)]
    [TestCase(48, 48, 16, true, true)]
    [Covers("groupnorm_fwd", "groupnorm_bwd", "groupnorm_param_grad")]
    public void ForwardAndGradients(int cMax, int c, int groups, bool scaleShift, bool silu)
    {
        var r = new Rng((ulong)(cMax * 1000 + c * 10 + groups + (scaleShift ? 7 : 0) + (silu ? 3 : 0)));
        int n = 1 + r.NextInt(3), h = 2 + r.NextInt(3), w = 2 + r.NextInt(4), s = h * w;
        var x = Input.Random(r, n, c, h, w);
        // Non-centred data: a mean offset exercises the two-pass statistics.
        for (int i = 0; i < x.Data.Length; i++) x.Data[i] = 1.5f + 2f * x.Data[i];
        var gamma = Input.Random(r, cMax); var beta = Input.Random(r, cMax);
        var inputs = new List<Input> { x, gamma, beta };
        if (scaleShift)
        {
            inputs.Add(Input.Random(r, n, c));
            inputs.Add(Input.Random(r, n, c));
        }
        OpCheck.Run(B, $"group_norm cMax={cMax} C={c} G={groups} N={n} S={s} ss={scaleShift} silu={silu}",
            t => F.GroupNorm(t[0], t[1], t[2], groups, 1e-5f, scaleShift ? t[3] : null, scaleShift ? t[4] : null, silu),
            v =>
                Reference(v[0], v[1], v[2], scaleShift ? v[3] : null, scaleShift ? v[4] : null, n, c, s, groups, 1e-5,
                          silu),
            inputs.ToArray(), atol: 1e-4 * TolScale, rtol: 1e-3 * TolScale, gradAtol: 2e-3 * TolScale,
            gradRtol: 2e-3 * TolScale,
            maxGradSamples: 64);
    }

    [Test]
    [Covers("groupnorm_fwd", "groupnorm_bwd", "groupnorm_param_grad")]
    public void GradientOutsideActivePrefixIsExactlyZeroAndAccumulates()
    {
        var r = new Rng(21);
        int n = 2, c = 32, cMax = 128, s = 9;
        using var scope = new TensorScope();
        var x = Tensor.FromArray(B, Rand(r, n * c * s), n, c, 3, 3);
        var gamma = Tensor.Parameter(B, "gamma", Rand(r, cMax), cMax);
        var beta = Tensor.Parameter(B, "beta", Rand(r, cMax), cMax);
        var gy = Tensor.FromArray(B, Rand(r, n * c * s), n, c, 3, 3);
        float[] dg1 = [], db1 = [];
        for (int pass = 1; pass <= 2; pass++)
        {
            var y = F.GroupNorm(x, gamma, beta, 16, silu: true);
            Tape.Backward(F.Sum(F.Mul(y, gy)));
            var dg = gamma.Grad!.ToArray(); var db = beta.Grad!.ToArray();
            for (int i = c; i < cMax; i++)
            {
                Assert.That(dg[i], Is.EqualTo(0f), $"dγ[{i}] outside the active prefix C={c}");
                Assert.That(db[i], Is.EqualTo(0f), $"dβ[{i}] outside the active prefix C={c}");
            }
            Assert.That(dg.Take(c).Count(v => v != 0f), Is.EqualTo(c), "every active dγ is non-zero");
            if (pass == 1) { dg1 = dg; db1 = db; continue; }
            // Backward accumulates: a second identical pass doubles the gradient (the sandwich rule relies on it).
            OpCheck.AssertClose("dγ after two passes", dg, dg1.Select(v => 2.0 * v).ToArray(), 1e-6, 1e-6);
            OpCheck.AssertClose("dβ after two passes", db, db1.Select(v => 2.0 * v).ToArray(), 1e-6, 1e-6);
        }
        gamma.Dispose(); beta.Dispose();
    }

    [Test]
    [Covers("groupnorm_fwd")]
    public void LargeSpatialWithBigMeanMatchesReference()
    {
        // A 32×32 map (group of 2·1024 elements; Small: 16×16, 2·256) offset by 50: statistics must not
        // lose the variance.
        var r = new Rng(22);
        int n = 1, c = 32, cMax = 32, groups = 16, side = Small ? 16 : 32, s = side * side;
        var x = Rand(r, n * c * s).Select(v => 50f + v).ToArray();
        var gamma = Rand(r, cMax); var beta = Rand(r, cMax);
        using var scope = new TensorScope();
        var y = F.GroupNorm(Tensor.FromArray(B, x, n, c, side, side), Tensor.FromArray(B, gamma, cMax),
            Tensor.FromArray(B, beta, cMax), groups);
        var want = Reference(D(x), D(gamma), D(beta), null, null, n, c, s, groups, 1e-5, false);
        // Folding x·a + b in float near |x| = 50 costs ~50·2⁻²⁴·a: tolerance 2e-4 absolute.
        OpCheck.AssertClose($"group_norm {side}×{side} mean 50", y.ToArray(), want, 2e-4 * TolScale, 1e-4 * TolScale);
    }

    [Test]
    public void BadInputNamesOpAndShapes()
    {
        using var scope = new TensorScope();
        var x = Tensor.Zeros(B, 2, 12, 4, 4);
        var g64 = Tensor.Zeros(B, 64); var b64 = Tensor.Zeros(B, 64);
        var ex = Assert.Throws<ArgumentException>(() => F.GroupNorm(x, g64, b64, 16));
        Assert.That(ex!.Message,
                    Does.Contain("group_norm").And.Contain("C=12").And.Contain("G=16").And.Contain("(2, 12, 4, 4)"));

        var big = Tensor.Zeros(B, 2, 96, 2, 2);
        ex = Assert.Throws<ArgumentException>(() => F.GroupNorm(big, g64, b64, 16));
        Assert.That(ex!.Message, Does.Contain("group_norm").And.Contain("(2, 96, 2, 2)").And.Contain("64"));

        var x32 = Tensor.Zeros(B, 2, 32, 2, 2);
        ex = Assert.Throws<ArgumentException>(() => F.GroupNorm(x32, g64, Tensor.Zeros(B, 48), 16));
        Assert.That(ex!.Message, Does.Contain("group_norm").And.Contain("(64)").And.Contain("(48)"));

        ex = Assert.Throws<ArgumentException>(() => F.GroupNorm(x32, g64, b64, 16, scale: Tensor.Zeros(B, 2, 64)));
        Assert.That(ex!.Message,
                    Does.Contain("group_norm").And.Contain("scale").And.Contain("(2, 64)").And.Contain("(2, 32)"));

        using var other = new CpuBackend();
        var xo = Tensor.Zeros(other, 2, 32, 2, 2);
        ex = Assert.Throws<ArgumentException>(() => F.GroupNorm(xo, g64, b64, 16));
        Assert.That(ex!.Message, Does.Contain("group_norm").And.Contain("different devices"));
    }

    private static float[] Rand(Rng r, int count)
    {
        var a = new float[count];
        r.FillNormal(a);
        return a;
    }

    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();
}
