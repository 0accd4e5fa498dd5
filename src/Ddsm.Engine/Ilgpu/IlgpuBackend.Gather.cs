using ILGPU;
using ILGPU.Runtime;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

// Device-side training inputs (kernels/Gather.cs) and the optimiser's guard (clip_guard, adam_step_guarded in
// kernels/Adam.cs): argument packing as the CPU oracle computes it (range, drop threshold).
public sealed partial class IlgpuBackend
{
    public override void UniformInts(DeviceBuffer y, long n, ulong seed, ulong offset, int lo, int hi) =>
        LaunchFlat("uniform_ints", n, new UniformIntsArgs
        {
            Y = View(y, n, "uniform_ints"), N = n, Seed = seed, Offset = offset, Lo = lo,
            Range = checked((uint)(hi - lo + 1)),
        });

    public override void GatherRows(in GatherDesc d, DeviceBuffer src, DeviceBuffer index, DeviceBuffer dst)
    {
        long n = (long)d.Rows * d.RowLength;
        var args = new GatherRowsArgs
        {
            Src = View(src, (long)d.SrcRows * d.RowLength, "gather_rows"), Index = View(index, d.Rows, "gather_rows"),
            Dst = View(dst, n, "gather_rows"), Rows = d.Rows, RowLength = d.RowLength, FlipSegment = d.FlipSegment,
            DropRow = d.DropRow, Seed = d.Seed, DropThreshold = CounterHash.DropThreshold(d.DropP),
        };
        LaunchFlat("gather_rows", n, args);
    }

    public override void GradientGuard(DeviceBuffer values, int sumCount, int count, DeviceBuffer guard,
        float clipNorm)
    {
        var args = new ClipGuardArgs
        {
            Values = View(values, count, "clip_guard"), Guard = View(guard, ClipGuard.Length, "clip_guard"),
            SumCount = sumCount, Count = count, ClipNorm = clipNorm,
        };
        Launch(K<ClipGuardArgs>("clip_guard"), new Index3D(1, 1, 1), 1, args);
    }

    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h, DeviceBuffer guard)
    {
        var args = new AdamGuardedArgs
        {
            Adam = AdamArgsOf(param, grad, m, v, n, h), Guard = View(guard, ClipGuard.Length, "adam"),
        };
        LaunchFlat("adam_step_guarded", n, args);
    }
}
