// Gaussian noise drawn on the device: y[i] = CounterHash.Normal(seed, offset + i). Stateless (a counter,
// not a generator state), so a launch needs no state from the previous one and the host keeps only
// (seed, position); the same code runs in the CPU oracle, so every backend draws the same normals.
// Grid-stride, one output per thread-iteration; each element recomputes its Box–Muller pair's radius
// (two hashes, a log, a sqrt, a cos or sin in double): memory-light, and once per sampling step.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>Y (N) = normals number Offset … Offset + N − 1 of stream Seed.</summary>
public struct NormalArgs
{
    public ArrayView<float> Y;
    public long N;
    public ulong Seed, Offset;
}

public static class NoiseKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<NormalArgs>(Normal, "normal", "noise", hot: false,
            "y = N(0, 1) from (seed, offset + i): Box–Muller on the counter hash"),
    ];

    /// <summary>Grid-stride over n.</summary>
    public static void Normal(NormalArgs a)
    {
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride)
            a.Y[i] = CounterHash.Normal(a.Seed, a.Offset + (ulong)i);
    }
}
