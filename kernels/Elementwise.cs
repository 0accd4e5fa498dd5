// The memory-bound maps of the contract's element-wise family: fill, axpby, binary and unary maps,
// the per-channel broadcast and strided block copies. No backward kernels: the op layer composes
// them from these (Backend.cs).
// Shape: grid-stride loops, one element per thread-iteration (the backend caps the grid), because
// each op reads and writes every element once and has no reuse to tile for. Axpby, binary, unary and
// broadcast may run in place (output = an input): a thread reads its element before writing it and
// no other thread touches it, so aliasing is safe.
// Op codes are the contract's enums as ints: BinaryOp {Add 0, Sub 1, Mul 2}, UnaryOp {SiLU 0,
// Square 1, Exp 2, SiLUGrad 3, ClampUnit 4}. The code is uniform over a launch, so its branch never diverges.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>Fill: Y (its whole length) = Value.</summary>
public struct FillArgs
{
    public ArrayView<float> Y;
    public float Value;
}

/// <summary>Axpby: Y (N) = Alpha·X + Beta·Y; X may be Y.</summary>
public struct AxpbyArgs
{
    public ArrayView<float> X, Y;
    public long N;
    public float Alpha, Beta;
}

/// <summary>Binary (Z = A op B) and unary (Z = f(A)) maps over N elements; Z may be A or B.</summary>
public struct MapArgs
{
    public ArrayView<float> A, B, Z;
    public long N;
    public int Op;
}

/// <summary>Broadcast: Z (Outer, Mid, Inner) = A op B[bo, m], bo = o when PerOuter ≠ 0 else 0; Z may be A.</summary>
public struct BroadcastArgs
{
    public ArrayView<float> A, B, Z;
    public int Outer, Mid, Inner, Op, PerOuter;
}

/// <summary>
/// Block copy: Dst[DstOffset + r·DstStride + j] (+)= Src[SrcOffset + r·SrcStride + j], r &lt; Rows, j &lt; Len.
/// </summary>
public struct CopyBlocksArgs
{
    public ArrayView<float> Src, Dst;
    public long SrcOffset, SrcStride, DstOffset, DstStride, Len;
    public int Rows, Accumulate;
}

public static class ElementwiseKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<FillArgs>(Fill, "fill", "elementwise", hot: false, "y = value"),
        KernelEntry.Of<AxpbyArgs>(Axpby, "axpby", "elementwise", hot: false, "y = alpha·x + beta·y (beta 0: y unread)"),
        KernelEntry.Of<MapArgs>(Binary, "binary", "elementwise", hot: false, "z = a op b (add, sub, mul)"),
        KernelEntry.Of<MapArgs>(Unary, "unary", "elementwise", hot: false,
            "z = f(a) (silu, square, exp, silu', clamp to [−1, 1])"),
        KernelEntry.Of<BroadcastArgs>(Broadcast, "broadcast", "elementwise", hot: false,
            "z[o,m,i] = a[o,m,i] op b[o|0, m]"),
        KernelEntry.Of<CopyBlocksArgs>(CopyBlocks, "copy_blocks", "elementwise", hot: false,
            "strided row copy or accumulate (concat, slice)"),
    ];

    private static float Apply(int op, float a, float b) => op == 0 ? a + b : op == 1 ? a - b : a * b;

    private static float Map(int op, float x)
    {
        if (op == 0) return x / (1f + MathF.Exp(-x));
        if (op == 1) return x * x;
        if (op == 2) return MathF.Exp(x);
        if (op == 4) return MathF.Min(1f, MathF.Max(-1f, x));   // (no Math.Clamp in kernels)
        float s = 1f / (1f + MathF.Exp(-x));   // SiLU's derivative σ(x)·(1 + x·(1 − σ(x)))
        return s * (1f + x * (1f - s));
    }

    /// <summary>y = value over the view. Grid-stride.</summary>
    public static void Fill(FillArgs a)
    {
        for (long i = Dev.GlobalId; i < a.Y.Length; i += Dev.GridStride) a.Y[i] = a.Value;
    }

    /// <summary>y (n) = alpha·x + beta·y; beta == 0 never reads y (it may hold NaN garbage). Grid-stride.</summary>
    public static void Axpby(AxpbyArgs a)
    {
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride)
            a.Y[i] = a.Beta == 0f ? a.Alpha * a.X[i] : a.Alpha * a.X[i] + a.Beta * a.Y[i];
    }

    /// <summary>z (n) = a op b. Grid-stride.</summary>
    public static void Binary(MapArgs a)
    {
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride) a.Z[i] = Apply(a.Op, a.A[i], a.B[i]);
    }

    /// <summary>z (n) = f(a). Grid-stride.</summary>
    public static void Unary(MapArgs a)
    {
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride) a.Z[i] = Map(a.Op, a.A[i]);
    }

    /// <summary>z (outer, mid, inner) = a op b[bo, m]; b is (outer or 1, mid). Grid-stride.</summary>
    public static void Broadcast(BroadcastArgs a)
    {
        long n = (long)a.Outer * a.Mid * a.Inner;
        for (long i = Dev.GlobalId; i < n; i += Dev.GridStride)
        {
            long row = i / a.Inner;                // o·mid + m
            long bi = a.PerOuter != 0 ? row : row % a.Mid;
            a.Z[i] = Apply(a.Op, a.A[i], a.B[bi]);
        }
    }

    /// <summary>Rows stride over Grid.IdxY, the x-threads over j: each row is one coalesced run.</summary>
    public static void CopyBlocks(CopyBlocksArgs a)
    {
        for (int r = Grid.IdxY; r < a.Rows; r += Grid.DimY)
        {
            long s = a.SrcOffset + r * a.SrcStride, d = a.DstOffset + r * a.DstStride;
            for (long j = Dev.GlobalId; j < a.Len; j += Dev.GridStride)
                a.Dst[d + j] = a.Accumulate != 0 ? a.Dst[d + j] + a.Src[s + j] : a.Src[s + j];
        }
    }
}
