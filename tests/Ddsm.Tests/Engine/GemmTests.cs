using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// The packed SIMD Sgemm against a naive float64 GEMM: odd sizes that are not multiples of the 6×16
/// (AVX2) or 16×16 (AVX-512) tile, sizes past the KC/MC/NC cache blocks, all four transpose combinations,
/// alpha/beta, offsets, leading dimensions wider than the matrix. Tolerance per element:
/// |got − ref| ≤ 1e-5·(|alpha|·Σ_p |op(A)_ip·op(B)_pj| + |beta·C0_ij|) + 1e-6, i.e. float rounding
/// growing with the length of the dot product, far below the O(1) error of any indexing mistake.
/// Padding around each matrix holds NaN: reading it poisons the result, writing C's padding is caught.
/// </summary>
[TestFixture]
public class GemmTests
{
    private sealed record Case(bool TA, bool TB, int M, int N, int K, float Alpha, float Beta, int OffA, int PadA,
                               int OffB, int PadB, int OffC, int PadC);

    private static void Check(Case t, Rng rng, bool parallel = false, bool cNaN = false)
    {
        // BLAS: ld ≥ max(1, cols)
        int aRows = t.TA ? t.K : t.M, aCols = t.TA ? t.M : t.K, lda = Math.Max(1, aCols + t.PadA);
        int bRows = t.TB ? t.N : t.K, bCols = t.TB ? t.K : t.N, ldb = Math.Max(1, bCols + t.PadB);
        int ldc = t.N + t.PadC;
        var a = Matrix(rng, t.OffA, aRows, aCols, lda);
        var b = Matrix(rng, t.OffB, bRows, bCols, ldb);
        var c = Matrix(rng, t.OffC, t.M, t.N, ldc);
        if (cNaN)
            for (int i = 0; i < t.M; i++)
            for (int j = 0; j < t.N; j++) c[t.OffC + i * ldc + j] = float.NaN;
        var c0 = (float[])c.Clone();

        if (parallel)
            Sgemm.RunParallel(t.TA, t.TB, t.M, t.N, t.K, t.Alpha, a, t.OffA, lda, b, t.OffB, ldb, t.Beta, c, t.OffC,
                              ldc, 2);
        else Sgemm.Run(t.TA, t.TB, t.M, t.N, t.K, t.Alpha, a, t.OffA, lda, b, t.OffB, ldb, t.Beta, c, t.OffC, ldc);

        for (int i = 0; i < t.M; i++)
        for (int j = 0; j < t.N; j++)
        {
            double s = 0, mag = 0;
            for (int p = 0; p < t.K; p++)
            {
                double av = t.TA ? a[t.OffA + p * lda + i] : a[t.OffA + i * lda + p];
                double bv = t.TB ? b[t.OffB + j * ldb + p] : b[t.OffB + p * ldb + j];
                s += av * bv; mag += Math.Abs(av * bv);
            }
            int ci = t.OffC + i * ldc + j;
            double want = t.Alpha * s + (t.Beta == 0 ? 0 : t.Beta * (double)c0[ci]);
            double tol = 1e-5 * (Math.Abs(t.Alpha) * mag + (t.Beta == 0 ? 0 : Math.Abs(t.Beta * c0[ci]))) + 1e-6;
            if (!(Math.Abs(c[ci] - want) <= tol))
                Assert.Fail($"sgemm {t} parallel={parallel}: C[{i},{j}] got {c[ci]:G9} want {want:G9} (tol {tol:G3})");
        }
        // Everything outside C's M×N window (offset, row padding, tail) is untouched.
        for (int idx = 0; idx < c.Length; idx++)
        {
            int rel = idx - t.OffC;
            bool inside = rel >= 0 && rel / ldc < t.M && rel % ldc < t.N;
            if (!inside && !float.IsNaN(c[idx]))
                Assert.Fail($"sgemm {t}: wrote outside C at [{idx}]");
        }
    }

    /// <summary>rows×cols at offset with row stride ld; NaN in the offset, the padding and a tail.</summary>
    private static float[] Matrix(Rng rng, int off, int rows, int cols, int ld)
    {
        var x = new float[off + rows * ld + 3];
        Array.Fill(x, float.NaN);
        for (int i = 0; i < rows; i++)
        {
            var row = new float[cols];
            rng.FillNormal(row);
            row.CopyTo(x, off + i * ld);
        }
        return x;
    }

    private static IEnumerable<Case> RandomCases(int seed, int count, int maxDim)
    {
        var r = new Rng((ulong)seed);
        float[] alphas = [1f, -0.75f, 2.5f], betas = [0f, 1f, 0.5f, -1.25f];
        for (int i = 0; i < count; i++)
            yield return new Case(i % 2 == 1, i / 2 % 2 == 1, 1 + r.NextInt(maxDim), 1 + r.NextInt(maxDim),
                1 + r.NextInt(maxDim), alphas[r.NextInt(3)], betas[r.NextInt(4)], r.NextInt(5), r.NextInt(4),
                r.NextInt(5), r.NextInt(4), r.NextInt(5), r.NextInt(4));
    }

    [Test]
    public void OddSizesAllTransposesAlphaBetaOffsets()
    {
        var rng = new Rng(21);
        // Sizes around the 6×16 and 16×16 tile edges, then random ones in 1..70.
        int[] edge = [1, 5, 6, 7, 15, 16, 17, 70];
        int i = 0;
        foreach (int m in edge)
        foreach (int n in edge)
        {
            int k = edge[(m + n) % edge.Length];
            Check(new Case(i % 2 == 1, i / 2 % 2 == 1, m, n, k, 1f, 0f, 0, 0, 0, 0, 0, 0), rng);
            i++;
        }
        foreach (var c in RandomCases(22, 64, 70)) Check(c, rng);
    }

    [Test]
    public void BlocksPastKcMcNc()
    {
        var rng = new Rng(23);
        // m > MC (144), k > KC (384): several A and K blocks, and a beta that must apply only once.
        foreach (bool ta in new[] { false, true })
        foreach (bool tb in new[] { false, true })
            Check(new Case(ta, tb, 151, 37, 401, 0.5f, 0.75f, 3, 2, 1, 5, 2, 1), rng);
        // n > NC (4096): two column blocks.
        Check(new Case(false, true, 7, 4100, 9, 1f, 1f, 0, 0, 0, 0, 0, 0), rng);
    }

    [Test]
    public void BetaZeroIgnoresNaNInC()
    {
        var rng = new Rng(24);
        Check(new Case(false, false, 13, 21, 8, 1f, 0f, 1, 1, 1, 1, 1, 2), rng, cNaN: true);
        Check(new Case(true, true, 6, 16, 3, -2f, 0f, 0, 0, 0, 0, 0, 0), rng, cNaN: true);
        // k == 0: C = beta·C, and beta == 0 must still clear NaN.
        Check(new Case(false, false, 5, 9, 0, 1f, 0f, 0, 0, 0, 0, 0, 0), rng, cNaN: true);
    }

    [Test]
    public void ParallelSplitsMatch()
    {
        var rng = new Rng(25);
        // split on M or N
        foreach (var c in RandomCases(26, 8, 70)) Check(c with { M = c.M + 130, K = c.K + 100 }, rng, parallel: true);
        // wide: split on N
        Check(new Case(true, false, 9, 300, 200, 1f, 1f, 0, 3, 0, 1, 0, 2), rng, parallel: true);
    }

    // The paths below the machine's best, in this process: the AVX2 and portable kernels and packings against
    // the same float64 reference (on a machine without AVX-512 the AVX2 case repeats the default one).
    [TestCase(SgemmPath.Portable, 27)]
    [TestCase(SgemmPath.Avx2, 30)]
    public void CappedPathMatches(SgemmPath cap, int seed)
    {
        var rng = new Rng((ulong)seed);
        Sgemm.Cap = cap;
        try
        {
            Assert.That(Sgemm.Path, Is.LessThanOrEqualTo(cap));
            foreach (var c in RandomCases(seed + 1, 16, 40)) Check(c, rng);
            Check(new Case(false, true, 151, 37, 401, 0.5f, 0.75f, 3, 2, 1, 5, 2, 1), rng);
            foreach (var c in RandomCases(seed + 2, 4, 70))
                Check(c with { M = c.M + 130, K = c.K + 100 }, rng, parallel: true);
        }
        finally { Sgemm.Cap = null; }
    }

    [Test]
    public void BackendBatchedGemm()
    {
        // 3 batches of (5×7)·(7×9) with strides, through CpuBackend.Gemm (threads over batch).
        var be = CpuBackend.Instance;
        var rng = new Rng(29);
        int batch = 3, m = 5, k = 7, n = 9;
        var a = new float[batch * m * k]; var b = new float[batch * k * n];
        rng.FillNormal(a); rng.FillNormal(b);
        using var scope = new TensorScope();
        var ta = Tensor.FromArray(be, a, batch, m, k); var tb = Tensor.FromArray(be, b, batch, k, n);
        var tc = Tensor.Empty(be, batch, m, n);
        be.Gemm(new GemmDesc(false, false, m, n, k, 1f, 0f, 0, k, 0, n, 0, n, batch, m * k, k * n, m * n), ta.Buffer,
                tb.Buffer, tc.Buffer);
        var c = tc.ToArray();
        for (int q = 0; q < batch; q++)
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int p = 0; p < k; p++) s += (double)a[q * m * k + i * k + p] * b[q * k * n + p * n + j];
            Assert.That(c[q * m * n + i * n + j], Is.EqualTo(s).Within(1e-4), $"batch {q} C[{i},{j}]");
        }
    }
}
