using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace Ddsm.Eval;

/// <summary>
/// Fréchet distance between Gaussians fitted to two feature sets (FID's formula, our features):
/// FD = ‖μ₁ − μ₂‖² + tr S₁ + tr S₂ − 2·tr((S₁^½ S₂ S₁^½)^½).
/// <para><b>Full form</b> (<see cref="Full"/>): S₁^½ = V·diag(√max(λ, 0))·Vᵀ from a symmetric
/// eigendecomposition; M = S₁^½ S₂ S₁^½ is symmetric PSD, so its square root's trace is Σ√max(λᵢ(M), 0)
/// over a second symmetric eigendecomposition. This avoids scipy's general sqrtm of the non-symmetric
/// S₁S₂, whose complex round-off pytorch-fid has to discard.</para>
/// <para><b>Low-rank forms</b>, for N &lt; d (the covariances are then rank ≤ N − 1 and the d×d problem
/// wastes work on zeros). Write Sₖ = AₖᵀAₖ with Aₖ = (Xₖ − μₖ)/√(Nₖ − 1), (Nₖ, d). The non-zero
/// eigenvalues of S₁^½ S₂ S₁^½ equal those of S₁S₂ (similar matrices, S₁^½·(S₁^½S₂)·S₁^{−½} on the
/// range of S₁; by continuity in general), and the non-zero eigenvalues of a product PQ equal those of
/// QP. With P = A₁ᵀ and Q = A₁A₂ᵀA₂: S₁S₂ = A₁ᵀ(A₁A₂ᵀA₂) has the non-zero eigenvalues of
/// A₁A₂ᵀA₂A₁ᵀ = G·Gᵀ with the cross-Gram G = A₁A₂ᵀ (N₁, N₂). Those are the squared singular values of
/// G, so tr((S₁^½ S₂ S₁^½)^½) = Σ σᵢ(G), the nuclear norm of G (<see cref="LowRank"/>), and
/// tr Sₖ = ‖Aₖ‖²_F. With S₁ known only as a matrix (cached reference statistics) and set 2 small, the
/// same argument with P = A₂ᵀ, Q = A₂S₁ gives the eigenvalues of A₂S₁A₂ᵀ (N₂, N₂), symmetric PSD
/// (<see cref="Compute(FeatureStats, FeatureMatrix)"/>).</para>
/// <para>Where both apply they agree to ~1e-8 relative (tests: N = 30, d = 84). On rank-deficient
/// covariances the full form is the less exact one: its d − N + 1 zero eigenvalues come out as ±1e-15
/// and the clamp-and-sqrt turns each into up to ~3e-8; the low-rank forms never see them.</para>
/// </summary>
public static class FrechetDistance
{
    private static MatrixBuilder<double> M => Matrix<double>.Build;

    /// <summary>Full d×d form from two sets of statistics.</summary>
    public static double Full(FeatureStats a, FeatureStats b)
    {
        CheckDims(a.Dim, b.Dim);
        int d = a.Dim;
        var s1 = M.DenseOfRowMajor(d, d, a.Covariance);
        var s2 = M.DenseOfRowMajor(d, d, b.Covariance);
        var e1 = Symmetrize(s1).Evd(Symmetricity.Symmetric);
        var sqrtL = M.DiagonalOfDiagonalArray(e1.EigenValues.Select(l => Math.Sqrt(Math.Max(l.Real, 0))).ToArray());
        var root1 = e1.EigenVectors * sqrtL * e1.EigenVectors.Transpose();   // S₁^½ (d, d)
        var mid = root1 * s2 * root1;                                         // (d, d), symmetric PSD
        return MeanTerm(a.Mean, b.Mean) + a.Trace + b.Trace - 2 * SumSqrtEigen(mid);
    }

    /// <summary>Cross-Gram form from two raw feature sets (exact for any N; O(N₁N₂·d + min(N)³)).</summary>
    public static double LowRank(FeatureMatrix x, FeatureMatrix y)
    {
        CheckDims(x.Dim, y.Dim);
        if (x.Count < 2 || y.Count < 2)
            throw new ArgumentException($"fréchet distance: need ≥ 2 samples per set, got {x.Count} and {y.Count}");
        var (mx, ax) = Factor(x);   // (N₁, d)
        var (my, ay) = Factor(y);   // (N₂, d)
        var g = ax * ay.Transpose();                                           // (N₁, N₂)
        double nuclear = g.Svd(computeVectors: false).S.Sum();
        return MeanTerm(mx, my) + Frob2(ax) + Frob2(ay) - 2 * nuclear;
    }

    /// <summary>From two raw feature sets: the low-rank form when either has fewer samples than
    /// dimensions, otherwise the full form of their statistics.</summary>
    public static double Compute(FeatureMatrix x, FeatureMatrix y) =>
        Math.Min(x.Count, y.Count) <= x.Dim ? LowRank(x, y) : Full(FeatureStats.From(x), FeatureStats.From(y));

    /// <summary>Reference statistics against generated features: the (N, N) form A·S_ref·Aᵀ when the
    /// generated set has no more samples than dimensions, otherwise the full form.</summary>
    public static double Compute(FeatureStats reference, FeatureMatrix generated)
    {
        CheckDims(reference.Dim, generated.Dim);
        if (generated.Count > generated.Dim) return Full(reference, FeatureStats.From(generated));
        if (generated.Count < 2)
            throw new ArgumentException($"fréchet distance: need ≥ 2 generated samples, got {generated.Count}");
        int d = reference.Dim;
        var (mg, ag) = Factor(generated);                                      // (N, d)
        var s1 = M.DenseOfRowMajor(d, d, reference.Covariance);
        var mid = ag * s1 * ag.Transpose();                                   // (N, N), symmetric PSD
        return MeanTerm(reference.Mean, mg) + reference.Trace + Frob2(ag) - 2 * SumSqrtEigen(mid);
    }

    /// <summary>(μ, A = (X − μ)/√(N − 1)).</summary>
    private static (double[] Mean, Matrix<double> A) Factor(FeatureMatrix x)
    {
        int n = x.Count, d = x.Dim;
        var mean = new double[d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) mean[j] += x.Data[i * d + j];
        for (int j = 0; j < d; j++) mean[j] /= n;
        var c = FeatureStats.Centered(x, mean);
        double s = 1 / Math.Sqrt(n - 1);
        for (int i = 0; i < c.Length; i++) c[i] *= s;
        return (mean, M.DenseOfRowMajor(n, d, c));
    }

    private static double SumSqrtEigen(Matrix<double> sym) =>
        Symmetrize(sym).Evd(Symmetricity.Symmetric).EigenValues.Sum(l => Math.Sqrt(Math.Max(l.Real, 0)));

    /// <summary>(S + Sᵀ)/2: products like R·S·R are symmetric only up to round-off, and the symmetric
    /// solver reads one triangle, so make the matrix exactly what the solver assumes.</summary>
    private static Matrix<double> Symmetrize(Matrix<double> s) => (s + s.Transpose()) * 0.5;

    private static double Frob2(Matrix<double> a) => a.Enumerate().Sum(v => v * v);

    private static double MeanTerm(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
        return s;
    }

    private static void CheckDims(int a, int b)
    {
        if (a != b) throw new ArgumentException($"fréchet distance: feature dimensions differ ({a} vs {b})");
    }
}
