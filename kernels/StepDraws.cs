// The training step's counter-hash draws with their seeds read from the current row of a step table (a 64-bit
// seed in three exact columns: TrainMath.Get64), and the copy to a slot read there: the twins of uniform_ints,
// gather_rows and dropout (same arithmetic, the seed from memory instead of an argument) and of a device copy, so
// that a captured training step draws the next step's batch, timesteps, labels and masks when replayed.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>uniform_ints with Seed from columns ColSeed … + 2 and, when ColOffset ≥ 0, the column's value added to
/// the offset.</summary>
public struct UniformIntsStepArgs
{
    public UniformIntsArgs Ints;
    public ArrayView<float> Table;
    public int Stride, ColSeed, ColOffset;
}

/// <summary>gather_rows with Seed from columns ColSeed … + 2.</summary>
public struct GatherRowsStepArgs
{
    public GatherRowsArgs Rows;
    public ArrayView<float> Table;
    public int Stride, ColSeed;
}

/// <summary>dropout with Seed = (columns ColSeed … + 2) ⊕ Salt (the layer's constant).</summary>
public struct DropoutStepArgs
{
    public DropoutArgs Drop;
    public ArrayView<float> Table;
    public ulong Salt;
    public int Stride, ColSeed;
}

/// <summary>Dst[DstOffset + column Col·Scale + i] = Src[SrcOffset + i], i in [0, N).</summary>
public struct CopyStepArgs
{
    public ArrayView<float> Src, Dst, Table;
    public long N, SrcOffset, DstOffset, Scale;
    public int Stride, Col;
}

public static class StepDrawKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<UniformIntsStepArgs>(UniformIntsStep, "uniform_ints_step", "step", hot: false,
            "uniform_ints, the seed (and an offset) read from the step table"),
        KernelEntry.Of<GatherRowsStepArgs>(GatherRowsStep, "gather_rows_step", "step", hot: false,
            "gather_rows, the draws' seed read from the step table"),
        KernelEntry.Of<DropoutStepArgs>(DropoutStep, "dropout_step", "step", hot: false,
            "dropout, the seed read from the step table"),
        KernelEntry.Of<CopyStepArgs>(CopyStep, "copy_step", "step", hot: false,
            "a device copy to the slot the step table names"),
    ];

    private static ulong Seed(ArrayView<float> table, int stride, int col) =>
        TrainMath.Get64(DeviceCells.Current(table, stride), col);

    /// <summary>Grid-stride over n.</summary>
    public static void UniformIntsStep(UniformIntsStepArgs a)
    {
        var row = DeviceCells.Current(a.Table, a.Stride);
        ulong seed = TrainMath.Get64(row, a.ColSeed);
        ulong offset = a.Ints.Offset + (a.ColOffset >= 0 ? (ulong)row[a.ColOffset] : 0UL);
        for (long i = Dev.GlobalId; i < a.Ints.N; i += Dev.GridStride)
            a.Ints.Y[i] = GatherMath.UniformInt(seed, offset + (ulong)i, a.Ints.Lo, a.Ints.Range);
    }

    /// <summary>Grid-stride over Rows·RowLength (gather_rows' body with the table's seed).</summary>
    public static void GatherRowsStep(GatherRowsStepArgs a)
    {
        var g = a.Rows;
        g.Seed = Seed(a.Table, a.Stride, a.ColSeed);
        GatherKernels.GatherRows(g);
    }

    /// <summary>Grid-stride over n (dropout's body with the table's seed).</summary>
    public static void DropoutStep(DropoutStepArgs a)
    {
        var d = a.Drop;
        d.Seed = Seed(a.Table, a.Stride, a.ColSeed) ^ a.Salt;
        DropoutKernels.Dropout(d);
    }

    /// <summary>Grid-stride over n.</summary>
    public static void CopyStep(CopyStepArgs a)
    {
        long at = a.DstOffset + (long)DeviceCells.Current(a.Table, a.Stride)[a.Col] * a.Scale;
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride) a.Dst[at + i] = a.Src[a.SrcOffset + i];
    }
}
