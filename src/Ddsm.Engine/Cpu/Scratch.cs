namespace Ddsm.Engine.Cpu;

/// <summary>
/// The CPU kernels' scratch memory, their one mechanism: per thread, one pinned float array per
/// <see cref="Use"/>, grown when too small and reused call after call, so steady-state kernels allocate
/// nothing. Per thread because the kernels run their per-image, per-group or per-head tasks on
/// Parallel.For's workers, and a task uses its thread's array for as long as it runs; per use because one
/// kernel nests another on the same thread (a conv's packed weight stays live while its GEMM packs B).
/// Contents on <see cref="Take"/> are arbitrary: kernels overwrite before they read. The arrays live as long
/// as their thread (a kernel may hold a raw pointer into one while it runs, so none is ever dropped early).
/// </summary>
internal static unsafe class Scratch
{
    internal enum Use
    {
        /// <summary>Sgemm's packed A and B blocks.</summary>
        GemmA, GemmB,
        /// <summary>A convolution's whole packed weight, shared by all its images.</summary>
        ConvWeight,
        /// <summary>The flipped, transposed weight of the stride-1 data gradient.</summary>
        ConvFlippedWeight,
        /// <summary>
        /// An im2col column matrix (backward passes); the direct weight gradient's zero-bordered images.
        /// </summary>
        ConvColumns,
        /// <summary>The weight gradient's per-chunk partial sums.</summary>
        WeightGradPartials,
        /// <summary>The direct convolution's per-K-row input offsets and taps (ints in a float array).</summary>
        ConvTaps,
        /// <summary>The direct convolution's zero-bordered copy of one image.</summary>
        ConvBordered,
        /// <summary>
        /// Winograd convolution: one band's transformed input tiles (V) and transformed outputs (M), and the
        /// weight gradient's transformed output gradients (dM).
        /// </summary>
        WinogradV, WinogradM, WinogradDm,
        /// <summary>GroupNorm backward's x̂, du and row temporaries; attention's P (and dS) of one head.</summary>
        Norm, Attention,
    }

    private const int Uses = (int)Use.Attention + 1;

    private sealed class Block(float[] array)
    {
        public readonly float[] Array = array;
        // 64-byte alignment for the GEMM's packed panels (whole cache lines).
        public readonly float* Aligned = AlignedStart(array);
    }

    [ThreadStatic] private static Block?[]? _blocks;

    /// <summary>
    /// This thread's array for <paramref name="use"/>, with at least <paramref name="count"/> floats from index 0.
    /// </summary>
    public static float[] Take(Use use, long count) => Get(use, count).Array;

    /// <summary>
    /// The same array's first 64-byte-aligned float, with at least <paramref name="count"/> floats from it.
    /// </summary>
    public static float* TakeAligned(Use use, long count) => Get(use, count).Aligned;

    private static Block Get(Use use, long count)
    {
        ref var b = ref (_blocks ??= new Block?[Uses])[(int)use];
        // 16 floats of slack keep `count` floats after the aligned start.
        if (b is null || b.Array.Length < count + 16)
            b = new Block(GC.AllocateUninitializedArray<float>(checked((int)Math.Max(count + 16, 1024)), pinned: true));
        return b;
    }

    private static float* AlignedStart(float[] pinned)
    {
        fixed (float* p = pinned) return (float*)(((nint)p + 63) & ~(nint)63);
    }
}
