namespace Ddsm.Engine.Cpu;

public sealed partial class CpuBackend
{
    public override void Gemm(in GemmDesc d, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c)
    {
        var aa = A(a); var ba = A(b); var ca = A(c);
        var g = d;
        Parallel.For(0, g.Batch, Par, bi =>
            Sgemm.Run(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha,
                aa, g.OffsetA + bi * g.StrideA, g.Lda,
                ba, g.OffsetB + bi * g.StrideB, g.Ldb, g.Beta,
                ca, g.OffsetC + bi * g.StrideC, g.Ldc));
    }
}
