using ILGPU;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

// The training step's table-read kernels (kernels/StepDraws.cs, TrainScalars.cs, adam_step_table in Adam.cs):
// the plain kernels' argument packing plus the table and the columns to read.
public sealed partial class IlgpuBackend
{
    public override void UniformIntsStep(DeviceBuffer y, long n, StepScalar seed, ulong offset, StepScalar? offsetAdd,
        int lo, int hi)
    {
        if (offsetAdd is { } add) OneTable(seed, add);
        LaunchFlat("uniform_ints_step", n, new UniformIntsStepArgs
        {
            Ints = new UniformIntsArgs
            {
                Y = View(y, n, "uniform_ints_step"), N = n, Offset = offset, Lo = lo,
                Range = checked((uint)(hi - lo + 1)),
            },
            Table = TableView(seed, "uniform_ints_step"), Stride = seed.Stride, ColSeed = seed.Column,
            ColOffset = offsetAdd?.Column ?? -1,
        });
    }

    public override void GatherRowsStep(in GatherDesc d, DeviceBuffer src, DeviceBuffer index, DeviceBuffer dst,
        StepScalar seed)
    {
        long n = (long)d.Rows * d.RowLength;
        var args = new GatherRowsStepArgs
        {
            Rows = new GatherRowsArgs
            {
                Src = View(src, (long)d.SrcRows * d.RowLength, "gather_rows_step"),
                Index = View(index, d.Rows, "gather_rows_step"), Dst = View(dst, n, "gather_rows_step"),
                Rows = d.Rows, RowLength = d.RowLength, FlipSegment = d.FlipSegment, DropRow = d.DropRow,
                DropThreshold = CounterHash.DropThreshold(d.DropP),
            },
            Table = TableView(seed, "gather_rows_step"), Stride = seed.Stride, ColSeed = seed.Column,
        };
        LaunchFlat("gather_rows_step", n, args);
    }

    public override void DropoutStep(DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, long n, float p,
        StepScalar seed, ulong salt)
    {
        var args = new DropoutStepArgs
        {
            Drop = new DropoutArgs
            {
                X = View(x, n, "dropout_step"), Y = View(y, n, "dropout_step"), Mask = View(mask, n, "dropout_step"),
                N = n, Threshold = CounterHash.DropThreshold(p), KeepScale = 1f / (1f - p),
            },
            Table = TableView(seed, "dropout_step"), Salt = salt, Stride = seed.Stride, ColSeed = seed.Column,
        };
        LaunchFlat("dropout_step", n, args);
    }

    public override void CopyStep(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count,
        StepScalar slot, long scale)
    {
        var args = new CopyStepArgs
        {
            Src = View(src, src.Length, "copy_step"), Dst = View(dst, dst.Length, "copy_step"),
            Table = TableView(slot, "copy_step"), N = count, SrcOffset = srcOffset, DstOffset = dstOffset,
            Scale = scale, Stride = slot.Stride, Col = slot.Column,
        };
        LaunchFlat("copy_step", count, args);
    }

    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h, DeviceBuffer guard, StepScalar lr)
    {
        var args = new AdamTableArgs
        {
            Guarded = new AdamGuardedArgs
            {
                Adam = AdamArgsOf(param, grad, m, v, n, h), Guard = View(guard, ClipGuard.Length, "adam"),
            },
            Table = TableView(lr, "adam_step_table"), Stride = lr.Stride, ColLr = lr.Column,
        };
        LaunchFlat("adam_step_table", n, args);
    }

    public override void TrainStepScalars(StepTable state, in TrainStepScalarsArgs a)
    {
        var args = a;
        args.State = View(state.Buffer, state.Buffer.Length, "train_step_scalars");
        Launch(K<TrainStepScalarsArgs>("train_step_scalars"), new Index3D(1, 1, 1), 1, args);
    }

    public override void TrainPassScalars(StepTable state, in TrainPassScalarsArgs a)
    {
        var args = a;
        args.State = View(state.Buffer, state.Buffer.Length, "train_pass_scalars");
        Launch(K<TrainPassScalarsArgs>("train_pass_scalars"), new Index3D(1, 1, 1), 1, args);
    }
}
