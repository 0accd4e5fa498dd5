namespace Ddsm.Engine.Cpu;

public sealed partial class CpuBackend
{
    /// <summary>
    /// Batched GEMM. With at least as many matrices as threads, whole GEMMs go to threads (no
    /// splitting overhead, each thread keeps its packs hot); otherwise each GEMM is split internally.
    /// </summary>
    public override void Gemm(in GemmDesc d, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c)
    {
        var g = d;   // the workers' copy: an `in` parameter cannot be captured
        using var timer = Profiler.Kernel("gemm");
        var aa = A(a); var ba = A(b); var ca = A(c);
        if (g.Batch <= 0) return;
        if (g.Batch >= Threads && Threads > 1)
        {
            Parallel.For(0, g.Batch, Par, bi =>
                Sgemm.Run(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha,
                    aa, g.OffsetA + bi * g.StrideA, g.Lda,
                    ba, g.OffsetB + bi * g.StrideB, g.Ldb, g.Beta,
                    ca, g.OffsetC + bi * g.StrideC, g.Ldc));
            return;
        }
        for (int bi = 0; bi < g.Batch; bi++)
            Sgemm.RunParallel(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha,
                aa, g.OffsetA + bi * g.StrideA, g.Lda,
                ba, g.OffsetB + bi * g.StrideB, g.Ldb, g.Beta,
                ca, g.OffsetC + bi * g.StrideC, g.Ldc, Threads);
    }
}
