using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// Reductions of float spans for normalisation statistics, accurate over many thousands of terms: float
/// lanes add <see cref="BlockVectors"/> vectors, then each block's lanes are widened and added in double, so
/// the error does not grow with the length as a float sum of 10⁴ terms (~1e-5 drift) does. Widening every
/// vector (double lanes throughout, as before) cost a third of GroupNorm's arithmetic; blocks of 8 cost an
/// eighth of that, and the GroupNorm tests at 30²–32² see the same worst errors as with double lanes (blocks
/// of 64 were 3× worse on dγ).
/// </summary>
internal static class DoubleSums
{
    /// <summary>Vectors a float lane adds before its block is widened and added in double.</summary>
    public const int BlockVectors = 8;

    /// <summary>Σ x.</summary>
    public static double Sum(ReadOnlySpan<float> x)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length, w = Vector<float>.Count, i = 0;
        double s = 0;
        if (VecMath.Wide)
            while (i <= n - 16)
            {
                int last = Math.Min(n - 16, i + (BlockVectors - 1) * 16);
                var a = Vector512<float>.Zero;
                for (; i <= last; i += 16) a += Vector512.LoadUnsafe(ref xr, (nuint)i);
                s += Sum(a);
            }
        while (i <= n - w)
        {
            int last = Math.Min(n - w, i + (BlockVectors - 1) * w);
            var a = Vector<float>.Zero;
            for (; i <= last; i += w) a += Vector.LoadUnsafe(ref xr, (nuint)i);
            s += Sum(a);
        }
        for (; i < n; i++) s += x[i];
        return s;
    }

    /// <summary>Σ (x − m)²: the second pass of a two-pass variance (no E[x²]−E[x]² cancellation).</summary>
    public static double SumSquaredDeviations(ReadOnlySpan<float> x, double m)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        // Rounding m to float shifts the sum by n·δ² only (the first-order term is Σ(x − m) = 0).
        var mv = new Vector<float>((float)m);
        int n = x.Length, w = Vector<float>.Count, i = 0;
        double s = 0;
        if (VecMath.Wide)
        {
            var mv16 = Vector512.Create((float)m);
            while (i <= n - 16)
            {
                int last = Math.Min(n - 16, i + (BlockVectors - 1) * 16);
                var a = Vector512<float>.Zero;
                for (; i <= last; i += 16)
                {
                    var d = Vector512.LoadUnsafe(ref xr, (nuint)i) - mv16;
                    a = Vector512.FusedMultiplyAdd(d, d, a);
                }
                s += Sum(a);
            }
        }
        while (i <= n - w)
        {
            int last = Math.Min(n - w, i + (BlockVectors - 1) * w);
            var a = Vector<float>.Zero;
            for (; i <= last; i += w)
            {
                var d = Vector.LoadUnsafe(ref xr, (nuint)i) - mv;
                a = VecMath.MulAdd(d, d, a);
            }
            s += Sum(a);
        }
        for (; i < n; i++) { double d = x[i] - m; s += d * d; }
        return s;
    }

    /// <summary>The lanes of one 16-lane block added in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum(Vector512<float> lanes)
    {
        var (lo, hi) = Vector512.Widen(lanes);
        return Vector512.Sum(lo + hi);
    }

    /// <summary>The lanes of one block added in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum(Vector<float> lanes)
    {
        Vector.Widen(lanes, out var lo, out var hi);
        return Vector.Sum(lo + hi);
    }
}
