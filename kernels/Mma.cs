// The TF32 tensor-core primitive: one warp computes D (16×8) += A (16×8) · B (8×8) with mma.sync on
// NVIDIA GPUs (sm_80+). Operands are TF32 values (see Dev.RoundTf32) in uint bits. Off the GPU the
// same fragments are multiplied by TileGemm.EmulateMma, so the fragment bookkeeping of every TF32
// kernel is exercised on ILGPU's CPU accelerator too.
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Ddsm.Kernels;

internal static class Mma
{
    /// <summary>
    /// Fragment ownership (PTX ISA, mma.m16n8k8 .tf32), g = lane/4, t = lane%4:
    /// a0 (g, t) a1 (g+8, t) a2 (g, t+4) a3 (g+8, t+4); b0 (k t, n g) b1 (k t+4, n g);
    /// d0 (g, 2t) d1 (g, 2t+1) d2 (g+8, 2t) d3 (g+8, 2t+1). All 32 lanes must call it together, and only
    /// where <see cref="CudaAsm.IsSupported"/> (elsewhere TileGemm.EmulateMma does the same arithmetic).
    /// </summary>
    public static void M16N8K8(ref float d0, ref float d1, ref float d2, ref float d3,
        uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        Ref<float> r0 = d0, r1 = d1, r2 = d2, r3 = d3;
        Input<uint> x0 = a0, x1 = a1, x2 = a2, x3 = a3, y0 = b0, y1 = b1;
        CudaAsm.EmitRef(
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, " +
            "%1, %2, %3};",
            ref r0, ref r1, ref r2, ref r3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
        d0 = r0.Value; d1 = r1.Value; d2 = r2.Value; d3 = r3.Value;
    }
}
