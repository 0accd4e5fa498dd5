using ILGPU;
using ILGPU.Runtime;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

// Reductions → kernels/Reduce.cs. Two passes with a grid that depends only on n, so the same input
// gives the same bits on every run (see the kernel file's header).
public sealed partial class IlgpuBackend
{
    private const int ReducePartialsMax = 1024;
    /// <summary>The partials pass's output, ReducePartialsMax doubles: allocated with the backend (so never during
    /// a graph capture) and reused by every reduction, stream order keeping one's partials from the next.</summary>
    private readonly MemoryBuffer1D<double, Stride1D.Dense> _partials;

    private void Reduce(int kind, DeviceBuffer a, DeviceBuffer? b, long n, DeviceBuffer result)
    {
        // ~4096 elements per group, at most 1024 groups: the grid is a function of n only, so on a given
        // device the same input always gives the same bits.
        int groups = (int)Math.Clamp((n + 4095) / 4096, 1, ReducePartialsMax);
        var args = new ReduceArgs
        {
            A = View(a, n, "reduce"), B = b is null ? default : View(b, n, "reduce"),
            Result = View(result, 1, "reduce"), Partials = _partials.View, N = n, Kind = kind, Count = groups,
        };
        Launch(K<ReduceArgs>("reduce_partials"), new Index3D(groups, 1, 1), FlexThreads, args);
        Launch(K<ReduceArgs>("reduce_final"), new Index3D(1, 1, 1), FlexThreads, args);
    }

    public override void Sum(DeviceBuffer x, long n, DeviceBuffer result) => Reduce(0, x, null, n, result);
    public override void SumSquares(DeviceBuffer x, long n, DeviceBuffer result) => Reduce(1, x, null, n, result);
    public override void SquaredError(DeviceBuffer a, DeviceBuffer b, long n, DeviceBuffer result)
        => Reduce(2, a, b, n, result);
}
