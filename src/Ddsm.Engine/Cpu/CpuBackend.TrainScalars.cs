using Ddsm.Kernels;

namespace Ddsm.Engine.Cpu;

// The oracles of the training step's table-read kernels (kernels/StepDraws.cs, TrainScalars.cs, adam_step_table):
// each reads its values from the table's current row and calls its plain twin with them, or runs the shared
// TrainMath on the host copy of the row: bit-identical to the plain ops by construction.
public sealed partial class CpuBackend
{
    /// <summary>The current row of the table a step scalar lives in.</summary>
    private static HostCells Row(StepScalar s) => HostCells.Current(A(s.Buffer), s.Stride);

    private static ulong Seed(StepScalar s) => TrainMath.Get64(Row(s), s.Column);

    public override void UniformIntsStep(DeviceBuffer y, long n, StepScalar seed, ulong offset, StepScalar? offsetAdd,
        int lo, int hi)
    {
        if (offsetAdd is { } add) OneTable(seed, add);
        UniformInts(y, n, Seed(seed), offset + (offsetAdd is { } o ? (ulong)At(o) : 0UL), lo, hi);
    }

    public override void GatherRowsStep(in GatherDesc d, DeviceBuffer src, DeviceBuffer index, DeviceBuffer dst,
        StepScalar seed) => GatherRows(d with { Seed = Seed(seed) }, src, index, dst);

    public override void DropoutStep(DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, long n, float p,
        StepScalar seed, ulong salt) => Dropout(x, y, mask, n, p, Seed(seed) ^ salt);

    public override void CopyStep(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count,
        StepScalar slot, long scale) => Copy(src, srcOffset, dst, dstOffset + (long)At(slot) * scale, count);

    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h, DeviceBuffer guard, StepScalar lr)
    {
        var row = Row(lr);
        AdamStep(param, grad, m, v, n, h with
        {
            Lr = row[lr.Column], BiasCorrection1 = row[lr.Column + 1], BiasCorrection2 = row[lr.Column + 2],
        }, guard);
    }

    public override void TrainStepScalars(StepTable state, in TrainStepScalarsArgs a)
    {
        using var timer = Profiler.Kernel("train_step_scalars");
        TrainMath.StepScalars(new HostCells(A(state.Buffer), 1), a);
    }

    public override void TrainPassScalars(StepTable state, in TrainPassScalarsArgs a)
    {
        using var timer = Profiler.Kernel("train_pass_scalars");
        TrainMath.PassScalars(new HostCells(A(state.Buffer), 1), a);
    }
}
