// Batched row-major GEMM: C_b = alpha·op(A_b)·op(B_b) + beta·C_b, op = optional transpose.
// Layout: A at offA + b·strideA with leading dimension lda (element (i, j) of the stored matrix at
// i·lda + j), same for B and C; op(A) is M×K, op(B) is K×N. beta == 0 never reads C.
// Launch: grid (ceil(N/64), ceil(M/64), batch), 128 threads (TileGemm).
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>Arguments of <see cref="GemmKernels.Gemm{TMode}"/> (buffers whole; offsets in elements).</summary>
public struct GemmArgs
{
    public ArrayView<float> A, B, C;
    public long OffsetA, OffsetB, OffsetC, StrideA, StrideB, StrideC;
    public int M, N, K, Lda, Ldb, Ldc;
    public int TransA, TransB;
    public float Alpha, Beta;
}

internal struct GemmProblem : ITileProblem
{
    private readonly ArrayView<float> _a, _b, _c;
    private readonly long _offA, _offB, _offC;
    private readonly int _m, _n, _lda, _ldb, _ldc;
    private readonly bool _ta, _tb;
    private readonly float _alpha, _beta;

    public GemmProblem(in GemmArgs g, long batch)
    {
        _a = g.A; _b = g.B; _c = g.C;
        _offA = g.OffsetA + batch * g.StrideA;
        _offB = g.OffsetB + batch * g.StrideB;
        _offC = g.OffsetC + batch * g.StrideC;
        _m = g.M; _n = g.N; _lda = g.Lda; _ldb = g.Ldb; _ldc = g.Ldc;
        _ta = g.TransA != 0; _tb = g.TransB != 0; _alpha = g.Alpha; _beta = g.Beta;
    }

    public readonly int M => _m;
    public readonly int N => _n;
    public readonly bool AKContiguous => !_ta;
    public readonly bool BNContiguous => !_tb;
    public readonly float A(int m, int k) => _ta ? _a[_offA + (long)k * _lda + m] : _a[_offA + (long)m * _lda + k];
    public readonly float B(int k, int n) => _tb ? _b[_offB + (long)n * _ldb + k] : _b[_offB + (long)k * _ldb + n];

    public readonly void Store(int m, int n, float v)
    {
        long i = _offC + (long)m * _ldc + n;
        _c[i] = _beta == 0f ? _alpha * v : _alpha * v + _beta * _c[i];
    }
}

public static class GemmKernels
{
    internal static KernelEntry[] Catalog =>
    [
        Entry<ExactFp32>(), Entry<TensorTf32>(),
    ];

    private static KernelEntry Entry<TMode>() where TMode : struct, IMathMode =>
        KernelEntry.Of<GemmArgs>(Gemm<TMode>, KernelCatalog.Tagged<TMode>("gemm"), "gemm", hot: true,
            "batched C = alpha·op(A)·op(B) + beta·C on 64×64 tiles");

    /// <summary>
    /// C (batch × M×N) = alpha·op(A)·op(B) + beta·C. Grid (ceil(N/64), ceil(M/64), batch), 128 threads.
    /// </summary>
    public static void Gemm<TMode>(GemmArgs a) where TMode : struct, IMathMode
    {
        var p = new GemmProblem(a, Grid.IdxZ);
        TileGemm.Run<GemmProblem, TMode>(ref p, Grid.IdxY * TileGemm.Bm, Grid.IdxX * TileGemm.Bn, 0, a.K);
    }
}
