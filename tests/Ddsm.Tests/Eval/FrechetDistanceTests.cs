using Ddsm.Engine;
using Ddsm.Eval;
using Ddsm.IO;
using MathNet.Numerics.LinearAlgebra;
using static Ddsm.Tests.Eval.EvalTestData;

namespace Ddsm.Tests.Eval;

/// <summary>
/// Fréchet distance: against closed forms (diagonal / commuting covariances), against a slow
/// reference computed differently (Denman–Beavers square root of the non-symmetric S₁S₂), and the
/// low-rank forms against the full form where both apply. Tolerances are relative to the scale of
/// the covariances (tr S), since FD is a difference of terms of that size.
/// </summary>
public class FrechetDistanceTests
{
    [Test]
    public void SetAgainstItselfIsZero()
    {
        var rng = new Rng(1);
        int d = 84;
        var x = Gaussian(rng, 400, RandomVector(rng, d), RandomSpd(rng, d, 0.1, 4).Cholesky().Factor);
        var s = FeatureStats.From(x);
        double full = FrechetDistance.Full(s, s), low = FrechetDistance.LowRank(x, x);
        TestContext.Out.WriteLine($"tr S = {s.Trace:G6}; FD(x, x) full {full:G3}, low-rank {low:G3}");
        Assert.That(Math.Abs(full), Is.LessThan(1e-6 * s.Trace));
        Assert.That(Math.Abs(low), Is.LessThan(1e-6 * s.Trace));
    }

    [Test]
    public void DiagonalGaussiansMatchClosedForm()
    {
        // FD = Σ(μ₁ − μ₂)² + Σ(√a − √b)² when both covariances are diagonal.
        var rng = new Rng(2);
        int d = 12;
        var m1 = RandomVector(rng, d); var m2 = RandomVector(rng, d);
        var a = Enumerable.Range(0, d).Select(_ => 0.2 + 3 * rng.NextDouble()).ToArray();
        var b = Enumerable.Range(0, d).Select(_ => 0.2 + 3 * rng.NextDouble()).ToArray();
        double want = Enumerable.Range(0, d)
            .Sum(i => Math.Pow(m1[i] - m2[i], 2) + Math.Pow(Math.Sqrt(a[i]) - Math.Sqrt(b[i]), 2));
        double got = FrechetDistance.Full(Stats(m1, Matrix<double>.Build.DiagonalOfDiagonalArray(a)),
                                          Stats(m2, Matrix<double>.Build.DiagonalOfDiagonalArray(b)));
        Assert.That(got, Is.EqualTo(want).Within(1e-10 * want));
    }

    [Test]
    public void CommutingGaussiansMatchClosedForm()
    {
        // Same eigenvectors Q: S₁ = Q·diag(a)·Qᵀ, S₂ = Q·diag(b)·Qᵀ → trace term Σ√(aᵢbᵢ).
        var rng = new Rng(3);
        int d = 10;
        var q = RandomRotation(rng, d);
        var a = Enumerable.Range(0, d).Select(_ => 0.1 + 2 * rng.NextDouble()).ToArray();
        var b = Enumerable.Range(0, d).Select(_ => 0.1 + 2 * rng.NextDouble()).ToArray();
        var s1 = q * Matrix<double>.Build.DiagonalOfDiagonalArray(a) * q.Transpose();
        var s2 = q * Matrix<double>.Build.DiagonalOfDiagonalArray(b) * q.Transpose();
        var m1 = RandomVector(rng, d); var m2 = RandomVector(rng, d);
        double want =
            Enumerable.Range(0, d).Sum(i => Math.Pow(m1[i] - m2[i], 2) + a[i] + b[i] - 2 * Math.Sqrt(a[i] * b[i]));
        double got = FrechetDistance.Full(Stats(m1, s1), Stats(m2, s2));
        Assert.That(got, Is.EqualTo(want).Within(1e-9 * (a.Sum() + b.Sum())));
    }

    /// <summary>tr((S₁S₂)^½) by the Denman–Beavers iteration on the NON-symmetric product (a different
    /// route from the symmetric eigendecompositions under test): Y → A^½ for A with positive spectrum.</summary>
    private static double TraceSqrtDenmanBeavers(Matrix<double> s1, Matrix<double> s2)
    {
        var y = s1 * s2;
        var z = Matrix<double>.Build.DenseIdentity(y.RowCount);
        for (int it = 0; it < 60; it++)
        {
            var yi = y.Inverse();
            var zi = z.Inverse();
            (y, z) = ((y + zi) * 0.5, (z + yi) * 0.5);
        }
        return y.Trace();
    }

    [TestCase(6, 4UL)]
    [TestCase(20, 5UL)]
    public void NonCommutingGaussiansMatchSlowReference(int d, ulong seed)
    {
        var rng = new Rng(seed);
        var s1 = RandomSpd(rng, d, 0.2, 3);
        var s2 = RandomSpd(rng, d, 0.2, 3);   // independent rotation: S₁S₂ ≠ S₂S₁
        Assert.That((s1 * s2 - s2 * s1).FrobeniusNorm(), Is.GreaterThan(0.1), "test needs non-commuting covariances");
        var m1 = RandomVector(rng, d); var m2 = RandomVector(rng, d);
        double want = Enumerable.Range(0, d).Sum(i => Math.Pow(m1[i] - m2[i], 2)) + s1.Trace() + s2.Trace() - 2 *
            TraceSqrtDenmanBeavers(s1, s2);
        double got = FrechetDistance.Full(Stats(m1, s1), Stats(m2, s2));
        TestContext.Out.WriteLine($"d={d}: FD {got:G12} reference {want:G12}");
        Assert.That(got, Is.EqualTo(want).Within(1e-9 * (s1.Trace() + s2.Trace())));
        // Symmetric in its arguments, as a distance must be.
        Assert.That(FrechetDistance.Full(Stats(m2, s2), Stats(m1, s1)),
                    Is.EqualTo(got).Within(1e-9 * (s1.Trace() + s2.Trace())));
    }

    [Test]
    public void SampleEstimateApproachesTheTrueDistance()
    {
        // Samples of two known Gaussians: the plug-in FD is within a few % of the exact one at N = 20k, d = 8.
        var rng = new Rng(6);
        int d = 8;
        var s1 = RandomSpd(rng, d, 0.5, 2); var s2 = RandomSpd(rng, d, 0.5, 2);
        var m1 = RandomVector(rng, d); var m2 = RandomVector(rng, d);
        double exact = FrechetDistance.Full(Stats(m1, s1), Stats(m2, s2));
        var x = Gaussian(rng, 20_000, m1, s1.Cholesky().Factor);
        var y = Gaussian(rng, 20_000, m2, s2.Cholesky().Factor);
        double est = FrechetDistance.Compute(x, y);
        TestContext.Out.WriteLine($"exact {exact:G6}, from 20k samples {est:G6}");
        Assert.That(est, Is.EqualTo(exact).Within(0.05 * exact));
    }

    [TestCase(30, 84)]     // N < d: rank-deficient covariances, the case the low-rank form is for
    [TestCase(120, 20)]    // N > d: both forms apply to full-rank covariances too
    public void LowRankEqualsFullForm(int n, int d)
    {
        var rng = new Rng((ulong)(n * 1000 + d));
        var x = Gaussian(rng, n, RandomVector(rng, d), RandomSpd(rng, d, 0.1, 3).Cholesky().Factor);
        var y = Gaussian(rng, n + 7, RandomVector(rng, d, 0.3), RandomSpd(rng, d, 0.1, 3).Cholesky().Factor);
        var sx = FeatureStats.From(x); var sy = FeatureStats.From(y);
        double full = FrechetDistance.Full(sx, sy);
        double crossGram = FrechetDistance.LowRank(x, y);
        double hybrid = FrechetDistance.Compute(sx, y);   // the (N, N) form A·S·Aᵀ when N ≤ d
        double tol = 1e-7 * (sx.Trace + sy.Trace);
        TestContext.Out.WriteLine($"N={n} d={d}: full {full:G12} cross-Gram {crossGram:G12} A·S·Aᵀ {hybrid:G12}");
        Assert.That(crossGram, Is.EqualTo(full).Within(tol));
        Assert.That(hybrid, Is.EqualTo(full).Within(tol));
    }

    [Test]
    public void StatsFileRoundTripsAndRejectsMalformedFiles()
    {
        var rng = new Rng(8);
        var s = FeatureStats.From(Gaussian(rng, 50, RandomVector(rng, 5), RandomSpd(rng, 5, 0.5, 2).Cholesky().Factor));
        var dir = Directory.CreateTempSubdirectory("ddsm-stats-").FullName;
        try
        {
            var path = Path.Combine(dir, "s.safetensors");
            s.Save(path, new Dictionary<string, string> { ["dataset"] = "toy" });
            var (back, meta) = FeatureStats.Load(path);
            Assert.That(back.Mean, Is.EqualTo(s.Mean));
            Assert.That(back.Covariance, Is.EqualTo(s.Covariance));
            Assert.That(back.Count, Is.EqualTo(50));
            Assert.That(meta["dataset"], Is.EqualTo("toy"));

            var bad = Path.Combine(dir, "bad.safetensors");
            SafeTensors.Write(bad, [SafeTensor.F32("mean", new float[5], 5)],
                              new Dictionary<string, string> { ["format"] = FeatureStats.Format, ["count"] = "50" });
            Assert.That(() => FeatureStats.Load(bad),
                        Throws.TypeOf<DataFormatException>().With.Message.Contain("covariance"));
            File.WriteAllBytes(bad, [1, 2, 3]);
            Assert.That(() => FeatureStats.Load(bad), Throws.TypeOf<DataFormatException>());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void MismatchedDimensionsAreRejected()
    {
        var rng = new Rng(9);
        var a = Gaussian(rng, 10, new double[3], Matrix<double>.Build.DenseIdentity(3));
        var b = Gaussian(rng, 10, new double[4], Matrix<double>.Build.DenseIdentity(4));
        Assert.That(() => FrechetDistance.LowRank(a, b), Throws.ArgumentException.With.Message.Contain("3 vs 4"));
        Assert.That(() => FrechetDistance.Full(FeatureStats.From(a), FeatureStats.From(b)), Throws.ArgumentException);
    }
}
