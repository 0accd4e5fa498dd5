using ILGPU;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

// Slimmable convolution → kernels/Conv.cs (implicit GEMM on the shared 64×64 tile engine).
public sealed partial class IlgpuBackend
{
    private ConvArgs Conv(in ConvDesc d)
    {
        if (d.Cin > d.CinMax || d.Cout > d.CoutMax)
            throw new ArgumentException(
                $"conv: active channels ({d.Cin}→{d.Cout}) exceed the weight's ({d.CinMax}→{d.CoutMax})");
        return new ConvArgs
        {
            G = new ConvGeom
            {
                N = d.N, Cin = d.Cin, H = d.H, W = d.W, Cout = d.Cout, K = d.K, S = d.Stride, P = d.Pad,
                Ho = d.Ho, Wo = d.Wo, WStride = (long)d.CinMax * d.K * d.K,
            },
        };
    }

    public override void Conv2dForward(in ConvDesc d, DeviceBuffer x, DeviceBuffer w, DeviceBuffer? bias,
                                       DeviceBuffer y)
    {
        var a = Conv(d);
        a.X = Own(x).View; a.Wt = Own(w).View; a.Bias = Opt(bias); a.Y = Own(y).View;
        LaunchTiles(K<ConvArgs>(Mode("conv_fwd")),
                    new Index3D(Ceil((long)d.N * d.Ho * d.Wo, Tile.Cols), Ceil(d.Cout, Tile.Rows), 1), a);
    }

    public override void Conv2dBackwardData(in ConvDesc d, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer dx)
    {
        var a = Conv(d);
        a.X = Own(dy).View; a.Wt = Own(w).View; a.Y = Own(dx).View;
        LaunchTiles(K<ConvArgs>(Mode("conv_bwd_data")),
                    new Index3D(Ceil((long)d.N * d.H * d.W, Tile.Cols), Ceil(d.Cin, Tile.Rows), 1), a);
    }

    public override void Conv2dBackwardWeight(in ConvDesc d, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer dw,
                                              DeviceBuffer? dbias)
    {
        var a = Conv(d);
        int cols = d.Cin * d.K * d.K;
        long kTot = (long)d.N * d.Ho * d.Wo;
        if (cols > 0 && d.Cout > 0 && kTot > 0)
        {
            // Split the long N·Ho·Wo reduction so that ~2 groups per multiprocessor are busy, but keep ≥ 256
            // terms per split; the partials are summed in split order (deterministic).
            long tilesMN = (long)Ceil(d.Cout, Tile.Rows) * Ceil(cols, Tile.Cols);
            long splits = Math.Clamp((2L * Multiprocessors + tilesMN - 1) / tilesMN, 1, 64);
            splits = Math.Min(splits, Math.Max(1, kTot / 256));
            long chunk = ((kTot + splits - 1) / splits + 15) / 16 * 16;
            splits = (kTot + chunk - 1) / chunk;
            var partial = Allocate(splits * d.Cout * cols);   // (splits, Cout, Cin·K·K)
            try
            {
                a.X = Own(x).View; a.Wt = Own(dy).View; a.Y = Own(partial).View; a.KChunk = (int)chunk;
                LaunchTiles(K<ConvArgs>(Mode("conv_bwd_weight")),
                            new Index3D(Ceil(cols, Tile.Cols), Ceil(d.Cout, Tile.Rows), (int)splits), a);
                var r = new ConvReduceArgs
                {
                    Src = Own(partial).View, Dst = Own(dw).View, Splits = (int)splits, Cout = d.Cout, Cols = cols,
                    WStride = a.G.WStride,
                };
                Launch(K<ConvReduceArgs>("conv_wgrad_reduce"),
                       new Index3D(GridFor((long)d.Cout * cols, FlexThreads), 1, 1), FlexThreads, r);
            }
            finally { Free(partial); }   // stream order: reused only by later work
        }
        if (dbias is not null && d.Cout > 0)
        {
            var r = new ConvReduceArgs
            {
                Src = Own(dy).View, Dst = Own(dbias).View, Cout = d.Cout, N = d.N, S = d.Ho * d.Wo,
            };
            Launch(K<ConvReduceArgs>("conv_bias_grad"), new Index3D(d.Cout, 1, 1), FlexThreads, r);
        }
    }
}
