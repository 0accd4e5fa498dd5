namespace Ddsm.Engine.Cpu;

/// <summary>
/// Single-precision GEMM on row-major arrays: C = alpha·op(A)·op(B) + beta·C.
/// PLACEHOLDER: a correct naive loop; to be replaced by the packed SIMD kernel.
/// </summary>
public static class Sgemm
{
    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, long offA, int lda, float[] b, long offB, int ldb, float beta, float[] c, long offC, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[offA + (long)p * lda + i] : a[offA + (long)i * lda + p];
                    float bv = transB ? b[offB + (long)j * ldb + p] : b[offB + (long)p * ldb + j];
                    s += av * bv;
                }
                long ci = offC + (long)i * ldc + j;
                c[ci] = alpha * s + (beta == 0f ? 0f : beta * c[ci]);
            }
    }
}
