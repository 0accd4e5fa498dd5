// Full reductions to one float: Σx, Σx², Σ(a−b)² (losses, logged norms, gradient clipping).
// Deterministic two-pass scheme: the partials pass runs a grid whose size depends only on n (the
// backend picks it), each group strides over fixed elements, sums in double and writes one partial;
// the final pass is a single group adding the partials in a fixed tree. Same n, same bits, whatever
// the scheduling — no atomics.
// Why double: over ~10⁶ terms float partials lose digits the CPU oracle (double chunks) keeps, and
// these kernels are memory-bound, so the wider adds cost nothing visible.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>
/// Kind: 0 Σa, 1 Σa², 2 Σ(a−b)² over A, B (N). Partials: one double per group of the partials pass;
/// the final pass reads Count of them and writes Result[0].
/// </summary>
public struct ReduceArgs
{
    public ArrayView<float> A, B, Result;
    public ArrayView<double> Partials;
    public long N;
    public int Kind, Count;
}

public static class ReduceKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<ReduceArgs>(Partials, "reduce_partials", "reduce", hot: false,
            "one double partial of Σa, Σa² or Σ(a−b)² per group"),
        KernelEntry.Of<ReduceArgs>(Final, "reduce_final", "reduce", hot: false, "result = Σ partials in a fixed tree"),
    ];

    /// <summary>Partials[group] = this group's grid-stride share, in double. Any grid, any group size.</summary>
    public static void Partials(ReduceArgs a)
    {
        var scratch = SharedMemory.Allocate<double>(32);
        double s = 0.0;
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride)
        {
            float v = a.A[i];
            if (a.Kind == 2) v -= a.B[i];
            s += a.Kind == 0 ? v : (double)v * v;
        }
        s = Dev.BlockSum(s, scratch);
        if (Group.IdxX == 0) a.Partials[Grid.IdxX] = s;
    }

    /// <summary>Result[0] = (float)Σ Partials[0..Count). One group.</summary>
    public static void Final(ReduceArgs a)
    {
        var scratch = SharedMemory.Allocate<double>(32);
        double s = 0.0;
        for (int i = Group.IdxX; i < a.Count; i += Group.DimX) s += a.Partials[i];
        s = Dev.BlockSum(s, scratch);
        if (Group.IdxX == 0) a.Result[0] = (float)s;
    }
}
