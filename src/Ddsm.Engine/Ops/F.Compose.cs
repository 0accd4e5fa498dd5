namespace Ddsm.Engine;

// Tools for backward passes written as compositions of forward contract calls (Backend.cs says why
// the contract has no element-wise backward kernels). Backward closures run under
// TensorScope.Suspend, where a Tensor temporary would belong to no scope, so temporaries are raw
// buffers, allocated and freed here only.
public static partial class F
{
    /// <summary>A raw device buffer for the length of a <c>using</c> block.</summary>
    private readonly struct Scratch : IDisposable
    {
        private readonly Backend _be;
        public DeviceBuffer Buffer { get; }

        public Scratch(Backend be, long count)
        {
            _be = be;
            Buffer = be.Allocate(count);
        }

        public void Dispose() => _be.Free(Buffer);
    }

    /// <summary>grad (n) += alpha·t, where <paramref name="fill"/> writes t into a scratch buffer.</summary>
    private static void AccumulateTemp(Backend be, DeviceBuffer grad, long n, float alpha, Action<DeviceBuffer> fill)
    {
        using var t = new Scratch(be, n);
        fill(t.Buffer);
        be.Axpby(t.Buffer, grad, n, alpha, 1f);
    }

    /// <summary>
    /// db[bo, m] += alpha·Σ x[o, m, i] over i, and over o too when b is shared (not per outer): the
    /// broadcast's reduction. GEMMs against a ones vector, because GEMM is the contract's
    /// deterministic reduction. Written as one row (onesᵀ·xᵀ), not one column (x·ones): GEMM tiles are
    /// wider in N than in M (6×16 on the CPU); measured there, the row form costs about one pass over x
    /// and the column form 3–7 times more.
    /// </summary>
    private static void SumToBroadcast(Backend be, DeviceBuffer x, DeviceBuffer db, float alpha,
        int outer, int mid, int inner, bool perOuter)
    {
        int rows = outer * mid;
        bool overOuter = !perOuter && outer > 1;
        int onesLength = overOuter ? Math.Max(inner, outer) : inner;
        using var ones = new Scratch(be, onesLength);
        be.Fill(ones.Buffer, 0, onesLength, 1f);
        // (1 × rows) = onesᵀ (1 × inner) · xᵀ (inner × rows): the sums over inner, one per (o, m).
        var rowSums = new GemmDesc(false, true, 1, rows, inner, alpha, 1f, 0, inner, 0, inner, 0, rows);
        if (!overOuter)
        {
            be.Gemm(rowSums, ones.Buffer, x, db);
            return;
        }
        using var part = new Scratch(be, rows);
        be.Gemm(rowSums with { Beta = 0f }, ones.Buffer, x, part.Buffer);
        // db (1 × mid) += onesᵀ (1 × outer) · part (outer × mid).
        var overOuterSums = new GemmDesc(false, false, 1, mid, outer, 1f, 1f, 0, outer, 0, mid, 0, mid);
        be.Gemm(overOuterSums, ones.Buffer, part.Buffer, db);
    }
}
