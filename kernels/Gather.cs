// The training step's inputs drawn on the device from a resident data set: integers uniform in [lo, hi]
// from the counter hash (batch indices, timesteps), and a row gather that can mirror each row's segments
// (the left-right flip of an image) and replace a row by a fallback one (label dropout to the null class),
// each decision a counter-hash draw of the row. Stateless like the noise kernel, and the CPU oracle calls
// the same CounterHash/GatherMath code, so every backend draws the same batch bit for bit.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>Y (N) = lo + ⌊hash(Seed, Offset + i)·Range / 2³²⌋, as floats (exact below 2²⁴).</summary>
public struct UniformIntsArgs
{
    public ArrayView<float> Y;
    public long N;
    public ulong Seed, Offset;
    public int Lo;
    public uint Range;
}

/// <summary>
/// Dst (Rows, RowLength) = Src rows Index[r] (floats holding row numbers); see <see cref="GatherMath"/> for the
/// flip and drop draws. Seed keys them; FlipSegment 0 = no flip, DropThreshold 0 = no drop.
/// </summary>
public struct GatherRowsArgs
{
    public ArrayView<float> Src, Index, Dst;
    public int Rows, RowLength, FlipSegment, DropRow;
    public ulong Seed;
    public uint DropThreshold;
}

/// <summary>The per-row draws and index arithmetic of the gather, shared by the kernel and the CPU oracle.</summary>
public static class GatherMath
{
    /// <summary>lo + the hash scaled to [0, range): a multiply-shift, no modulo bias beyond 2⁻³²·range.</summary>
    public static int UniformInt(ulong seed, ulong k, int lo, uint range) =>
        lo + (int)(((ulong)CounterHash.Of(seed, k) * range) >> 32);

    /// <summary>Row r is mirrored with probability ½: the top bit of hash(seed, 2r).</summary>
    public static bool Flips(ulong seed, int r) => (CounterHash.Of(seed, 2UL * (ulong)r) >> 31) != 0;

    /// <summary>Row r is replaced by the fallback row iff hash(seed, 2r + 1) &lt; threshold (p·2³²).</summary>
    public static bool Drops(ulong seed, int r, uint threshold) =>
        CounterHash.Of(seed, 2UL * (ulong)r + 1) < threshold;

    /// <summary>Column j of a row read mirrored within segments of <paramref name="segment"/> columns.</summary>
    public static int Mirrored(int j, int segment) => j - j % segment + segment - 1 - j % segment;
}

public static class GatherKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<UniformIntsArgs>(UniformInts, "uniform_ints", "gather", hot: false,
            "y = integers uniform in [lo, hi] from (seed, offset + i): the counter hash"),
        KernelEntry.Of<GatherRowsArgs>(GatherRows, "gather_rows", "gather", hot: false,
            "rows of a resident table by index, each optionally mirrored or replaced by a fallback row"),
    ];

    /// <summary>Grid-stride over n.</summary>
    public static void UniformInts(UniformIntsArgs a)
    {
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride)
            a.Y[i] = GatherMath.UniformInt(a.Seed, a.Offset + (ulong)i, a.Lo, a.Range);
    }

    /// <summary>Grid-stride over Rows·RowLength; each element redraws its row's two hashes (cheap, no state).</summary>
    public static void GatherRows(GatherRowsArgs a)
    {
        long n = (long)a.Rows * a.RowLength;
        for (long i = Dev.GlobalId; i < n; i += Dev.GridStride)
        {
            int r = (int)(i / a.RowLength), j = (int)(i % a.RowLength);
            int row = a.DropThreshold != 0 && GatherMath.Drops(a.Seed, r, a.DropThreshold)
                ? a.DropRow : (int)a.Index[r];
            if (a.FlipSegment > 0 && GatherMath.Flips(a.Seed, r)) j = GatherMath.Mirrored(j, a.FlipSegment);
            a.Dst[i] = a.Src[(long)row * a.RowLength + j];
        }
    }
}
