// The UNet's 2× resampling: nearest-neighbour upsampling and 2×2 average pooling of NCHW images
// (their backward passes are each other, composed by the op layer). Memory-bound, no reuse worth
// staging: one output element per thread-iteration of a grid-stride loop, so writes are coalesced and
// each input is read by the few threads that need it.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>X (Nc, H, W) at the input resolution; Y at the output's (2H×2W up, H/2×W/2 down).</summary>
public struct ResampleArgs
{
    public ArrayView<float> X, Y;
    public int Nc, H, W;
}

public static class ResampleKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<ResampleArgs>(Upsample2x, "upsample2x", "resample", hot: false, "y = nearest ×2 of x"),
        KernelEntry.Of<ResampleArgs>(AvgPool2x, "avgpool2x", "resample", hot: false, "y = 2×2 mean of x"),
    ];

    /// <summary>y (nc, 2h, 2w) = x[p, yo/2, xo/2]. Grid-stride over the output.</summary>
    public static void Upsample2x(ResampleArgs a)
    {
        int w2 = 2 * a.W, h2 = 2 * a.H;
        long n = (long)a.Nc * h2 * w2;
        for (long i = Dev.GlobalId; i < n; i += Dev.GridStride)
        {
            long t = i / w2, p = t / h2;
            int xo = (int)(i - t * w2), yo = (int)(t - p * h2);
            a.Y[i] = a.X[(p * a.H + (yo >> 1)) * a.W + (xo >> 1)];
        }
    }

    /// <summary>y (nc, h/2, w/2) = ¼·(sum of the 2×2 block), summed in the CPU oracle's order. Grid-stride.</summary>
    public static void AvgPool2x(ResampleArgs a)
    {
        int ho = a.H / 2, wo = a.W / 2;
        long n = (long)a.Nc * ho * wo;
        for (long i = Dev.GlobalId; i < n; i += Dev.GridStride)
        {
            long t = i / wo, p = t / ho;
            int xo = (int)(i - t * wo), yo = (int)(t - p * ho);
            long r0 = (p * a.H + 2 * yo) * a.W + 2 * xo, r1 = r0 + a.W;
            a.Y[i] = 0.25f * (a.X[r0] + a.X[r0 + 1] + a.X[r1] + a.X[r1 + 1]);
        }
    }
}
