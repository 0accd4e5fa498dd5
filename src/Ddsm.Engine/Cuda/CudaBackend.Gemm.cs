namespace Ddsm.Engine.Cuda;

// Batched GEMM → kernels/gemm.cu (64×64 block tiles; exact FP32 or TF32 tensor cores per ExactFp32).
public sealed partial class CudaBackend
{
    public override void Gemm(in GemmDesc d, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c)
    {
        if (d.M <= 0 || d.N <= 0 || d.Batch <= 0) return;
        if (d.Batch > 65535) throw new NotSupportedException($"{Name} gemm: batch {d.Batch} > 65535");
        uint gy = Ceil(d.M, 64);
        if (gy > 65535) throw new NotSupportedException($"{Name} gemm: M {d.M} too large for one launch");
        Launch("gemm.cu", ExactFp32 ? "gemm_f32" : "gemm_tf32", (Ceil(d.N, 64), gy, (uint)d.Batch), 128,
            A().I32(d.TransA ? 1 : 0).I32(d.TransB ? 1 : 0).I32(d.M).I32(d.N).I32(d.K).F32(d.Alpha).F32(d.Beta)
               .Ptr(Own(a)).I64(d.OffsetA).I32(d.Lda).I64(d.StrideA)
               .Ptr(Own(b)).I64(d.OffsetB).I32(d.Ldb).I64(d.StrideB)
               .Ptr(Own(c)).I64(d.OffsetC).I32(d.Ldc).I64(d.StrideC));
    }
}
