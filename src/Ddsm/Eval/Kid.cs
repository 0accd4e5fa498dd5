namespace Ddsm.Eval;

/// <summary>
/// KID over <see cref="Subsets"/> random subsets of <see cref="SubsetSize"/>: mean and (population) std.
/// </summary>
public sealed record KidResult(double Mean, double Std, int SubsetSize, int Subsets);

/// <summary>
/// Kernel Inception Distance (Bińkowski et al. 2018) on our features: the unbiased estimate of MMD²
/// with the cubic polynomial kernel k(x, y) = (xᵀy/d + 1)³,
/// MMD²ᵤ = Σ_{i≠j} k(xᵢ,xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(m(m−1)) − 2·Σ_{i,j} k(xᵢ,yⱼ)/m²,
/// averaged over seeded random subsets (each drawn without replacement), as torch-fidelity does.
/// Unlike FD it has no bias in N: equal distributions give a mean near 0, and it can be negative.
/// </summary>
public static class Kid
{
    public static KidResult Compute(FeatureMatrix real, FeatureMatrix generated, int subsetSize = 1000,
                                    int subsets = 100, ulong seed = 0)
    {
        if (real.Dim != generated.Dim)
            throw new ArgumentException($"kid: feature dimensions differ ({real.Dim} vs {generated.Dim})");
        if (subsets < 1) throw new ArgumentException($"kid: subsets must be ≥ 1, got {subsets}");
        int m = Math.Min(subsetSize, Math.Min(real.Count, generated.Count));
        if (m < 2)
            throw new ArgumentException($"kid: subsets need ≥ 2 samples per set (subset size {subsetSize}, sets of " +
                                        $"{real.Count} and {generated.Count})");
        var rng = new Rng(seed);
        var v = new double[subsets];
        for (int s = 0; s < subsets; s++)
            v[s] = Mmd2Unbiased(real.Rows(Choose(real.Count, m, rng)), generated.Rows(Choose(generated.Count, m, rng)));
        double mean = v.Average();
        return new KidResult(mean, Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / subsets), m, subsets);
    }

    /// <summary>Unbiased MMD² of two sets of equal size m ≥ 2.</summary>
    public static double Mmd2Unbiased(FeatureMatrix x, FeatureMatrix y)
    {
        int m = x.Count, d = x.Dim;
        if (y.Count != m || y.Dim != d || m < 2)
            throw new ArgumentException(
                $"kid: sets must be equal-sized with ≥ 2 samples, got ({x.Count}, {x.Dim}) and ({y.Count}, {y.Dim})");
        // Per-row partial sums, added in row order after the parallel loop: the result does not
        // depend on how rows were scheduled over threads.
        var rxx = new double[m];
        var ryy = new double[m];
        var rxy = new double[m];
        Parallel.For(0, m, i =>
        {
            var xi = x.Row(i);
            var yi = y.Row(i);
            double sxx = 0, syy = 0, sxy = 0;
            for (int j = i + 1; j < m; j++)
            {
                sxx += K(xi, x.Row(j), d);
                syy += K(yi, y.Row(j), d);
            }
            for (int j = 0; j < m; j++) sxy += K(xi, y.Row(j), d);
            (rxx[i], ryy[i], rxy[i]) = (sxx, syy, sxy);
        });
        double kxx = rxx.Sum(), kyy = ryy.Sum(), kxy = rxy.Sum();
        // Off-diagonal sums counted once above (j > i); the kernel is symmetric, so double them.
        return 2 * (kxx + kyy) / ((double)m * (m - 1)) - 2 * kxy / ((double)m * m);
    }

    private static double K(ReadOnlySpan<double> a, ReadOnlySpan<double> b, int d)
    {
        double t = System.Numerics.Tensors.TensorPrimitives.Dot(a, b) / d + 1;
        return t * t * t;
    }

    /// <summary>m distinct indices of [0, n) (partial Fisher–Yates).</summary>
    private static int[] Choose(int n, int m, Rng rng)
    {
        var a = Enumerable.Range(0, n).ToArray();
        for (int k = 0; k < m; k++)
        {
            int j = k + rng.NextInt(n - k);
            (a[k], a[j]) = (a[j], a[k]);
        }
        return a[..m];
    }
}
