namespace Ddsm.Eval;

/// <summary>Precision (fidelity) and recall (coverage) of generated samples, both in [0, 1].</summary>
public sealed record PrecisionRecallResult(double Precision, double Recall, int K);

/// <summary>
/// Improved precision and recall (Kynkäänniemi et al. 2019). A set's manifold is the union of balls
/// around its points, each with the radius to that point's k-th nearest neighbour in the same set
/// (k = 3 in the paper). Precision = fraction of generated samples inside the real manifold; recall =
/// fraction of real samples inside the generated manifold. Euclidean distances in double, O(N²·d),
/// rows in parallel: fine up to N ≈ 10k. Use sets of equal size: the radii shrink as a set grows.
/// </summary>
public static class PrecisionRecall
{
    public static PrecisionRecallResult Compute(FeatureMatrix real, FeatureMatrix generated, int k = 3)
    {
        if (real.Dim != generated.Dim)
            throw new ArgumentException($"precision/recall: feature dimensions differ ({real.Dim} vs {generated.Dim})");
        if (k < 1 || real.Count <= k || generated.Count <= k)
            throw new ArgumentException(
                $"precision/recall: need more than k = {k} samples per set, got {real.Count} and {generated.Count}");
        var realR2 = KnnRadii2(real, k);
        var genR2 = KnnRadii2(generated, k);
        return new PrecisionRecallResult(Inside(real, realR2, generated), Inside(generated, genR2, real), k);
    }

    /// <summary>Squared distance from each point to its k-th nearest other point of the same set.</summary>
    public static double[] KnnRadii2(FeatureMatrix x, int k)
    {
        var r = new double[x.Count];
        Parallel.For(0, x.Count, i =>
        {
            // The k smallest squared distances so far, ascending (k is tiny: insertion is fastest).
            Span<double> best = stackalloc double[k];
            best.Fill(double.PositiveInfinity);
            var xi = x.Row(i);
            for (int j = 0; j < x.Count; j++)
            {
                if (j == i) continue;
                double d2 = Dist2(xi, x.Row(j));
                if (d2 >= best[k - 1]) continue;
                int p = k - 1;
                while (p > 0 && best[p - 1] > d2) { best[p] = best[p - 1]; p--; }
                best[p] = d2;
            }
            r[i] = best[k - 1];
        });
        return r;
    }

    /// <summary>Fraction of <paramref name="queries"/> within radius of at least one manifold point.</summary>
    public static double Inside(FeatureMatrix manifold, double[] radii2, FeatureMatrix queries)
    {
        var hit = new bool[queries.Count];
        Parallel.For(0, queries.Count, q =>
        {
            var v = queries.Row(q);
            for (int i = 0; i < manifold.Count; i++)
                if (Dist2(v, manifold.Row(i)) <= radii2[i]) { hit[q] = true; return; }
        });
        return (double)hit.Count(h => h) / queries.Count;
    }

    private static double Dist2(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double t = a[i] - b[i];
            s += t * t;
        }
        return s;
    }
}
