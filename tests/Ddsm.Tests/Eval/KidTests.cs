using Ddsm.Engine;
using Ddsm.Eval;
using MathNet.Numerics.LinearAlgebra;
using static Ddsm.Tests.Eval.EvalTestData;

namespace Ddsm.Tests.Eval;

/// <summary>
/// KID: the estimator against its formula written out, its unbiasedness, and its response to a shift.
/// </summary>
public class KidTests
{
    private static Matrix<double> I(int d) => Matrix<double>.Build.DenseIdentity(d);

    private static double Kernel(Span<double> a, Span<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return Math.Pow(s / a.Length + 1, 3);
    }

    [Test]
    public void MatchesTheFormulaWrittenOut()
    {
        var rng = new Rng(11);
        var x = Gaussian(rng, 7, RandomVector(rng, 3), I(3));
        var y = Gaussian(rng, 7, RandomVector(rng, 3), I(3));
        double xx = 0, yy = 0, xy = 0;
        for (int i = 0; i < 7; i++)
            for (int j = 0; j < 7; j++)
            {
                if (i != j) { xx += Kernel(x.Row(i), x.Row(j)); yy += Kernel(y.Row(i), y.Row(j)); }
                xy += Kernel(x.Row(i), y.Row(j));
            }
        double want = xx / 42 + yy / 42 - 2 * xy / 49;
        Assert.That(Kid.Mmd2Unbiased(x, y), Is.EqualTo(want).Within(1e-12 * Math.Abs(want) + 1e-12));
    }

    [Test]
    public void UnbiasedOnEqualDistributions()
    {
        // 400 independent pairs of 40-sample sets from one Gaussian: the mean of the unbiased MMD² is 0
        // within 4 standard errors, while the biased V-statistic (diagonal kept) is clearly positive.
        var rng = new Rng(12);
        int d = 8, m = 40, trials = 400;
        var chol = RandomSpd(rng, d, 0.5, 2).Cholesky().Factor;
        var mu = RandomVector(rng, d);
        var u = new double[trials];
        var vstat = new double[trials];
        for (int t = 0; t < trials; t++)
        {
            var x = Gaussian(rng, m, mu, chol);
            var y = Gaussian(rng, m, mu, chol);
            u[t] = Kid.Mmd2Unbiased(x, y);
            double diag = 0;
            for (int i = 0; i < m; i++) diag += Kernel(x.Row(i), x.Row(i)) + Kernel(y.Row(i), y.Row(i));
            // V-statistic = (m−1)/m·(within-set U terms) + diag/m² − 2·cross/m²; rebuild it from u and diag.
            double within = u[t] + 2 * CrossMean(x, y);
            vstat[t] = within * (m - 1) / m + diag / ((double)m * m) - 2 * CrossMean(x, y);
        }
        double mean = u.Average(), se = Math.Sqrt(u.Sum(v => (v - mean) * (v - mean)) / (trials - 1) / trials);
        TestContext.Out.WriteLine($"unbiased mean {mean:G4} (s.e. {se:G3}); biased mean {vstat.Average():G4}");
        Assert.That(Math.Abs(mean), Is.LessThan(4 * se));
        Assert.That(vstat.Average(), Is.GreaterThan(20 * se),
                    "the V-statistic's bias is what the unbiased form removes");
    }

    private static double CrossMean(FeatureMatrix x, FeatureMatrix y)
    {
        double s = 0;
        for (int i = 0; i < x.Count; i++)
            for (int j = 0; j < y.Count; j++) s += Kernel(x.Row(i), y.Row(j));
        return s / ((double)x.Count * y.Count);
    }

    [Test]
    public void NearZeroForEqualAndClearlyPositiveForShiftedSets()
    {
        var rng = new Rng(13);
        int d = 16;
        var chol = RandomSpd(rng, d, 0.5, 2).Cholesky().Factor;
        var mu = RandomVector(rng, d);
        var real = Gaussian(rng, 1500, mu, chol);
        var same = Gaussian(rng, 1500, mu, chol);
        var shifted = Gaussian(rng, 1500, mu.Select(v => v + 0.3).ToArray(), chol);
        var k0 = Kid.Compute(real, same, subsetSize: 300, subsets: 30, seed: 1);
        var k1 = Kid.Compute(real, shifted, subsetSize: 300, subsets: 30, seed: 1);
        TestContext.Out.WriteLine($"equal: {k0}; shifted by 0.3/dim: {k1}");
        Assert.That(k0.SubsetSize, Is.EqualTo(300));
        // Equal sets: |mean| within 3 subset-stds / √subsets (subsets overlap, so this is generous).
        Assert.That(Math.Abs(k0.Mean), Is.LessThan(3 * k0.Std / Math.Sqrt(30)));
        // Shifted (measured: mean 1.59, subset std 0.24; equal: 0.019 ± 0.061): far outside the null spread.
        Assert.That(k1.Mean,
                    Is.GreaterThan(4 * k1.Std).And.GreaterThan(10 * k0.Std).And.GreaterThan(20 * Math.Abs(k0.Mean)));
        // Seeded: same seed, same result; the subset size is capped by the smaller set.
        Assert.That(Kid.Compute(real, shifted, 300, 30, 1).Mean, Is.EqualTo(k1.Mean));
        Assert.That(Kid.Compute(real, shifted.Take(100), 300, 5, 1).SubsetSize, Is.EqualTo(100));
    }
}
