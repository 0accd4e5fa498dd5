// Per-step scalars read from device memory, so that one captured sampling step (a CUDA graph) can be replayed
// for every step at its width: a graph bakes its kernel arguments, so whatever changes from step to step (the
// update's coefficients, the timestep, the noise stream's offset) must be read by the kernel, not passed to it.
// The table is one buffer: element 0 holds the current row (the step index, an integer as a float: exact below
// 2^24), rows of Stride floats follow; a scalar is column c of the current row, Table[1 + row·Stride + c]. The
// ops are the element-wise ones a step needs (axpby, fill, normal) with their scalars read there, plus the tiny
// kernel that moves to the next row at the end of a step. Arithmetic is that of the plain kernels (Axpby,
// Fill, Normal), so a step reads its scalars from the table and computes the same bits as with arguments.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>Y (N) = α·X + β·Y, α and β columns ColAlpha, ColBeta of the table's current row; X may be Y.</summary>
public struct AxpbyStepArgs
{
    public ArrayView<float> X, Y, Table;
    public long N;
    public int Stride, ColAlpha, ColBeta;
    /// <summary>1 when X is Y: then Y = (α + β)·Y, the plain kernel's in-place arithmetic.</summary>
    public int InPlace;
}

/// <summary>Y (its whole length) = column Col of the table's current row.</summary>
public struct FillStepArgs
{
    public ArrayView<float> Y, Table;
    public int Stride, Col;
}

/// <summary>
/// Y (N) = normals Offset … Offset + N − 1 of stream Seed, Offset = hi·2^24 + lo from columns ColHigh, ColLow of
/// the table's current row (two exact 24-bit integers: a float holds no 64-bit counter).
/// </summary>
public struct NormalStepArgs
{
    public ArrayView<float> Y, Table;
    public long N;
    public ulong Seed;
    public int Stride, ColHigh, ColLow;
}

/// <summary>The table whose row index (element 0) moves on by one.</summary>
public struct AdvanceStepArgs
{
    public ArrayView<float> Table;
}

public static class StepScalarKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<AxpbyStepArgs>(AxpbyStep, "axpby_step", "step", hot: false,
            "y = alpha·x + beta·y, alpha and beta read from the step table"),
        KernelEntry.Of<FillStepArgs>(FillStep, "fill_step", "step", hot: false, "y = a value of the step table"),
        KernelEntry.Of<NormalStepArgs>(NormalStep, "normal_step", "step", hot: false,
            "y = N(0, 1) from (seed, offset + i), the offset read from the step table"),
        KernelEntry.Of<AdvanceStepArgs>(AdvanceStep, "advance_step", "step", hot: false,
            "the step table's row index += 1 (one thread)"),
    ];

    /// <summary>Column <paramref name="col"/> of the current row.</summary>
    private static float At(ArrayView<float> table, int stride, int col) =>
        table[1 + (long)(int)table[0] * stride + col];

    /// <summary>Grid-stride; the plain Axpby's arithmetic (β = 0 never reads y).</summary>
    public static void AxpbyStep(AxpbyStepArgs a)
    {
        float alpha = At(a.Table, a.Stride, a.ColAlpha), beta = At(a.Table, a.Stride, a.ColBeta);
        if (a.InPlace != 0)
        {
            alpha += beta;
            beta = 0f;
        }
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride)
            a.Y[i] = beta == 0f ? alpha * a.X[i] : alpha * a.X[i] + beta * a.Y[i];
    }

    /// <summary>Grid-stride.</summary>
    public static void FillStep(FillStepArgs a)
    {
        float v = At(a.Table, a.Stride, a.Col);
        for (long i = Dev.GlobalId; i < a.Y.Length; i += Dev.GridStride) a.Y[i] = v;
    }

    /// <summary>Grid-stride.</summary>
    public static void NormalStep(NormalStepArgs a)
    {
        ulong offset = ((ulong)At(a.Table, a.Stride, a.ColHigh) << 24) + (ulong)At(a.Table, a.Stride, a.ColLow);
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride)
            a.Y[i] = CounterHash.Normal(a.Seed, offset + (ulong)i);
    }

    /// <summary>One thread of one group.</summary>
    public static void AdvanceStep(AdvanceStepArgs a)
    {
        if (Dev.GlobalId == 0) a.Table[0] = a.Table[0] + 1f;
    }
}
