using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// The CPU backend's SIMD exp/SiLU (used by the fused GroupNorm and attention's softmax) against double math, on
/// each SIMD path: the AVX-512 path's span loops take 16 lanes first, then 8, then scalars.
/// </summary>
public class VecMathTests
{
    [TearDown]
    public void Uncap() => Sgemm.Cap = null;

    /// <summary>The paths this machine can run, best first (the 16-lane loops need AVX-512).</summary>
    private static IEnumerable<SgemmPath> Paths() => new[] { Sgemm.BestPath, SgemmPath.Avx2 }.Distinct();

    [Test]
    public void ExpIsAccurateOverTheFloatRange()
    {
        // Relative error ≤ 4e-7 (a few ulp) from e^-87 to e^88, on a dense grid plus random points.
        var r = new Rng(51);
        var xs = Enumerable.Range(0, 20001).Select(i => -87f + 175f * i / 20000f)
            .Concat(Enumerable.Range(0, 5000).Select(_ => (float)(r.NextNormal() * 10))).ToArray();
        double worst = 0; float at = 0;
        foreach (var x in xs)
        {
            double want = Math.Exp(x), err = Math.Abs(VecMath.Exp(x) - want) / want;
            if (err > worst) { worst = err; at = x; }
        }
        Assert.That(worst, Is.LessThan(4e-7), $"worst relative error at x = {at}");
    }

    /// <summary>
    /// The 16-lane exp scales by 2^n with vscalefps where the 8-lane one builds 2^n from exponent bits and multiplies:
    /// both are the correctly rounded y·2^n, so every lane agrees bit for bit, down to the clamped ends and the
    /// results below the normal range.
    /// </summary>
    [Test]
    public void SixteenLaneExpIsBitIdenticalToTheEightLaneOne()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) Assert.Ignore("no AVX-512 on this machine");
        var r = new Rng(53);
        float[] ends = [-87.3365478515625f, -87.33655f, -87.2f, -86.9f, 88.3762626647949f, 88.38f, 0f, -0f];
        var xs = ends.Concat(Enumerable.Range(0, 40000).Select(i => -100f + 200f * i / 40000f))
            .Concat(Enumerable.Range(0, 4000).Select(_ => (float)(r.NextNormal() * 30))).ToArray();
        int w = System.Numerics.Vector<float>.Count;
        for (int i = 0; i + 16 <= xs.Length; i += 16)
        {
            var wide = VecMath.Exp(System.Runtime.Intrinsics.Vector512.Create(xs.AsSpan(i, 16)));
            for (int j = 0; j < 16; j += w)
            {
                var narrow = VecMath.Exp(new System.Numerics.Vector<float>(xs.AsSpan(i + j, w)));
                for (int l = 0; l < w; l++)
                    Assert.That(BitConverter.SingleToInt32Bits(wide[j + l]),
                        Is.EqualTo(BitConverter.SingleToInt32Bits(narrow[l])), $"exp({xs[i + j + l]:R})");
            }
        }
    }

    [TestCase(45)]   // 16 + 16 + 8 + 5 on the AVX-512 path, 5·8 + 5 on AVX2
    [TestCase(7)]    // scalars only
    public void ExpShiftedReturnsTheSumOfItsOutputs(int n)
    {
        foreach (var path in Paths())
        {
            Sgemm.Cap = path;
            var r = new Rng(52);
            var x = new float[n]; r.FillNormal(x, 3f);
            float shift = x.Max();
            var want = x.Select(v => Math.Exp(v - (double)shift)).ToArray();
            float sum = VecMath.ExpShifted(x, shift);
            // Per element a few ulp (4e-7 relative); the float sum of 45 terms in [0, 1] within 1e-5.
            OpCheck.AssertClose($"exp(x − shift) on {path}", x, want, 1e-7, 4e-7);
            Assert.That(sum, Is.EqualTo(want.Sum()).Within(1e-5), path.ToString());
        }
    }

    [TestCase(37)]   // a vector body plus a scalar tail
    [TestCase(29)]   // 16 + 8 + 5 on the AVX-512 path
    [TestCase(5)]    // tail only
    public void SiLUAndItsDerivativeMatchDouble(int n)
    {
        float[]? firstY = null, firstDu = null;
        foreach (var path in Paths())
        {
            Sgemm.Cap = path;
            var r = new Rng((ulong)n);
            var u = new float[n]; r.FillNormal(u, 6f);
            u[0] = -100f; u[1] = 100f; // saturated ends: silu → 0 and → u, derivative → 0 and → 1
            var dy = new float[n]; r.FillNormal(dy);
            var y = (float[])u.Clone();
            VecMath.SiLUInPlace(y);
            var du = new float[n];
            VecMath.SiLUGrad(u, du);
            for (int i = 0; i < n; i++) du[i] *= dy[i];
            var wantY = u.Select(v => v / (1 + Math.Exp(-(double)v))).ToArray();
            var wantDu = u.Select((v, i) =>
            {
                double s = 1 / (1 + Math.Exp(-(double)v));
                return dy[i] * s * (1 + v * (1 - s));
            }).ToArray();
            // Float rounding of a handful of operations: 1e-6 absolute + 1e-6 relative.
            OpCheck.AssertClose($"silu on {path}", y, wantY, 1e-6, 1e-6);
            OpCheck.AssertClose($"silu backward on {path}", du, wantDu, 1e-6, 1e-6);
            // The same operations per lane on every path: bit-identical results.
            if (firstY is null) (firstY, firstDu) = (y, du);
            else Assert.That(y.Concat(du), Is.EqualTo(firstY.Concat(firstDu!)), $"{path} vs {Sgemm.BestPath}");
        }
    }
}
