// Inverted dropout with the engine's counter hash: element i is kept iff CounterHash.Of(seed, i) ≥ threshold,
// so every backend draws the same mask bit for bit, with no RNG state to carry between launches. The
// backend computes threshold (CounterHash.DropThreshold) and keepScale = 1/(1−p) as the CPU oracle does; the
// mask (0 or keepScale) is written for the backward pass, which multiplies by it.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>X, Y, Mask: (N).</summary>
public struct DropoutArgs
{
    public ArrayView<float> X, Y, Mask;
    public long N;
    public ulong Seed;
    public uint Threshold;
    public float KeepScale;
}

public static class DropoutKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<DropoutArgs>(Dropout, "dropout", "dropout", hot: false,
            "mask = hash(seed, i) ≥ p·2³² ? 1/(1−p) : 0; y = x·mask"),
    ];

    /// <summary>Grid-stride over n.</summary>
    public static void Dropout(DropoutArgs a)
    {
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride)
        {
            float m = CounterHash.Mask(a.Seed, (ulong)i, a.Threshold, a.KeepScale);
            a.Mask[i] = m;
            a.Y[i] = a.X[i] * m;
        }
    }
}
