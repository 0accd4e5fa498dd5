using Ddsm.Engine;
using Ddsm.Eval;
using MathNet.Numerics.LinearAlgebra;
using static Ddsm.Tests.Eval.EvalTestData;

namespace Ddsm.Tests.Eval;

/// <summary>Improved precision/recall on sets whose answer is known.</summary>
public class PrecisionRecallTests
{
    private static Matrix<double> I(int d) => Matrix<double>.Build.DenseIdentity(d);

    [Test]
    public void KnnRadiiMatchSorting()
    {
        var rng = new Rng(21);
        var x = Gaussian(rng, 60, new double[5], I(5));
        var r = PrecisionRecall.KnnRadii2(x, 3);
        for (int i = 0; i < 60; i++)
        {
            var d2 = Enumerable.Range(0, 60).Where(j => j != i)
                .Select(j => Enumerable.Range(0, 5).Sum(c => Math.Pow(x.Row(i)[c] - x.Row(j)[c], 2))).Order().ToArray();
            Assert.That(r[i], Is.EqualTo(d2[2]).Within(1e-12 * d2[2]), $"point {i}");
        }
    }

    [Test]
    public void IdenticalSetsScoreOneAndFarApartSetsScoreZero()
    {
        var rng = new Rng(22);
        var x = Gaussian(rng, 300, new double[10], I(10));
        var same = PrecisionRecall.Compute(x, x);
        Assert.That((same.Precision, same.Recall), Is.EqualTo((1.0, 1.0)));
        var far = Gaussian(rng, 300, Enumerable.Repeat(50.0, 10).ToArray(), I(10));
        var apart = PrecisionRecall.Compute(x, far);
        Assert.That((apart.Precision, apart.Recall), Is.EqualTo((0.0, 0.0)));
    }

    [Test]
    public void SameDistributionScoresHighAndMissingModeLowersOnlyRecall()
    {
        var rng = new Rng(23);
        int d = 6, n = 600;
        var x = Gaussian(rng, n, new double[d], I(d));
        var y = Gaussian(rng, n, new double[d], I(d));
        var pr = PrecisionRecall.Compute(x, y);
        TestContext.Out.WriteLine($"same distribution: {pr}");
        Assert.That(pr.Precision, Is.GreaterThan(0.8));
        Assert.That(pr.Recall, Is.GreaterThan(0.8));

        // Real data has two far-apart modes; the generator covers only one (mode collapse): every
        // generated sample is realistic (precision stays high) but half the real data is missed.
        var twoModes = new FeatureMatrix(n, d);
        var a = Gaussian(rng, n / 2, new double[d], I(d));
        var b = Gaussian(rng, n / 2, Enumerable.Repeat(30.0, d).ToArray(), I(d));
        Array.Copy(a.Data, twoModes.Data, a.Data.Length);
        Array.Copy(b.Data, 0, twoModes.Data, a.Data.Length, b.Data.Length);
        var collapsed = PrecisionRecall.Compute(twoModes, Gaussian(rng, n, new double[d], I(d)));
        TestContext.Out.WriteLine($"one of two modes: {collapsed}");
        Assert.That(collapsed.Precision, Is.GreaterThan(0.75));
        Assert.That(collapsed.Recall, Is.InRange(0.3, 0.5));
    }
}
