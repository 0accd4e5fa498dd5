using System.Runtime.InteropServices;

namespace Ddsm.Engine.Cuda;

// Slimmable convolution → kernels/conv.cu (implicit GEMM on the shared 64×64 tile engine).
public sealed partial class CudaBackend
{
    private const string Cv = "conv.cu";

    /// <summary>Mirror of struct ConvGeom in conv.cu (9 ints, then the 64-bit weight row stride).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct ConvGeom
    {
        public int Cin, H, W, Cout, K, S, P, Ho, Wo;
        public long WStride;
    }

    private static ConvGeom Geom(in ConvDesc d)
    {
        if (d.Cin > d.CinMax || d.Cout > d.CoutMax)
            throw new ArgumentException($"conv: active channels ({d.Cin}→{d.Cout}) exceed the weight's ({d.CinMax}→{d.CoutMax})");
        return new ConvGeom
        {
            Cin = d.Cin, H = d.H, W = d.W, Cout = d.Cout, K = d.K, S = d.Stride, P = d.Pad, Ho = d.Ho, Wo = d.Wo,
            WStride = (long)d.CinMax * d.K * d.K,
        };
    }

    private string Variant(string stem) => stem + (ExactFp32 ? "_f32" : "_tf32");

    public override void Conv2dForward(in ConvDesc d, DeviceBuffer x, DeviceBuffer w, DeviceBuffer? bias, DeviceBuffer y)
    {
        var g = Geom(d);
        long ncols = (long)d.N * d.Ho * d.Wo;
        Launch(Cv, Variant("conv_fwd"), (Ceil(ncols, 64), Ceil(d.Cout, 64), 1), 128,
            A().Ptr(Own(x)).Ptr(Own(w)).Ptr(Opt(bias)).Ptr(Own(y)).I32(d.N).Struct(g));
    }

    public override void Conv2dBackwardData(in ConvDesc d, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer dx)
    {
        var g = Geom(d);
        long ncols = (long)d.N * d.H * d.W;
        Launch(Cv, Variant("conv_bwd_data"), (Ceil(ncols, 64), Ceil(d.Cin, 64), 1), 128,
            A().Ptr(Own(dy)).Ptr(Own(w)).Ptr(Own(dx)).I32(d.N).Struct(g));
    }

    public override void Conv2dBackwardWeight(in ConvDesc d, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer dw, DeviceBuffer? dbias)
    {
        var g = Geom(d);
        int cols = d.Cin * d.K * d.K;
        long kTot = (long)d.N * d.Ho * d.Wo;
        if (cols > 0 && d.Cout > 0 && kTot > 0)
        {
            // Split the long N·Ho·Wo reduction so that ~2 blocks per SM are busy, but keep ≥ 256 terms per split.
            long blocksMN = (long)Ceil(d.Cout, 64) * Ceil(cols, 64);
            long splits = Math.Clamp((2L * MultiprocessorCount + blocksMN - 1) / blocksMN, 1, 64);
            splits = Math.Min(splits, Math.Max(1, kTot / 256));
            long chunk = ((kTot + splits - 1) / splits + 15) / 16 * 16;
            splits = (kTot + chunk - 1) / chunk;
            var partial = Allocate(splits * d.Cout * cols);   // (splits, Cout, Cin·K·K)
            try
            {
                Launch(Cv, Variant("conv_bwd_weight"), (Ceil(cols, 64), Ceil(d.Cout, 64), (uint)splits), 128,
                    A().Ptr(Own(x)).Ptr(Own(dy)).Ptr(partial).I32(d.N).Struct(g).I32((int)chunk));
                Launch(Cv, "conv_wgrad_reduce", (Blocks((long)d.Cout * cols), 1, 1), 256,
                    A().Ptr(partial).Ptr(Own(dw)).I32((int)splits).I32(d.Cout).I32(cols).I64(g.WStride));
            }
            finally { Free(partial); }   // stream order: reuse only by later work
        }
        if (dbias is not null && d.Cout > 0)
            Launch(Cv, "conv_bias_grad", ((uint)d.Cout, 1, 1), 256,
                A().Ptr(Own(dy)).Ptr(Own(dbias)).I32(d.N).I32(d.Cout).I32(d.Ho * d.Wo));
    }
}
