using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// GroupNorm's passes over one channel row, each one SIMD loop: the forward's affine + SiLU, and the
/// backward's two (du with its two sums, then dx). x̂ = x·r + b0 is recomputed from x in each pass instead
/// of stored: x is in cache by then, and a store and reload cost more than the multiply-add. The sums run
/// in float lanes over blocks of <see cref="DoubleSums.BlockVectors"/> vectors, each block added in double
/// (see <see cref="DoubleSums"/>). Loads are unchecked after one length check per row: the row loops are
/// bound by their arithmetic, and four bounds-checked slices a vector cost ~20 % of it. On the AVX-512 path
/// (<see cref="VecMath.Wide"/>) the loops take 16 lanes first.
/// </summary>
internal static class GroupNormRows
{
    /// <summary>
    /// du = dy·silu'(x̂·zs + zb) into <paramref name="du"/> (silu) or du = dy (no activation, du unused);
    /// returns (Σ du, Σ du·x̂). <paramref name="next"/> (the dx row, or empty) is prefetched meanwhile: this
    /// pass is bound by its arithmetic and <see cref="AddDx"/> by memory, so its lines are requested while
    /// the exp runs (N64 C64 32², where x, dy and dx no longer fit in L3: the backward took 0.75× the time).
    /// </summary>
    public static unsafe (double SumDu, double SumDuXh) Reduce(ReadOnlySpan<float> x, float r, float b0,
        bool silu, float zs, float zb, ReadOnlySpan<float> dy, Span<float> du, ReadOnlySpan<float> next)
    {
        int n = x.Length, w = Vector<float>.Count, i = 0;
        if (dy.Length < n || (silu && du.Length < n)) throw new ArgumentException("GroupNormRows: short row");
        bool prefetch = Sse.IsSupported && next.Length >= n;
        // A prefetch is a hint that never faults, so the pin only keeps the address meaningful.
        fixed (float* np = next)
        {
            ref float xr = ref MemoryMarshal.GetReference(x), dyr = ref MemoryMarshal.GetReference(dy);
            ref float dur = ref MemoryMarshal.GetReference(du);
            double sum = 0, dot = 0;
            if (VecMath.Wide)
            {
                var rv16 = Vector512.Create(r); var bv16 = Vector512.Create(b0);
                var zsv16 = Vector512.Create(zs); var zbv16 = Vector512.Create(zb);
                while (i <= n - 16)
                {
                    int last = Math.Min(n - 16, i + (DoubleSums.BlockVectors - 1) * 16);
                    var s = Vector512<float>.Zero; var d = Vector512<float>.Zero;
                    for (; i <= last; i += 16)
                    {
                        var xh = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref xr, (nuint)i), rv16, bv16);
                        var g = Vector512.LoadUnsafe(ref dyr, (nuint)i);
                        if (silu)
                        {
                            g *= VecMath.SiLUGrad(Vector512.FusedMultiplyAdd(xh, zsv16, zbv16));
                            g.StoreUnsafe(ref dur, (nuint)i);
                        }
                        s += g;
                        d = Vector512.FusedMultiplyAdd(g, xh, d);
                        if (prefetch) Sse.Prefetch0(np + i);
                    }
                    sum += DoubleSums.Sum(s); dot += DoubleSums.Sum(d);
                }
            }
            if (i <= n - w)
                fixed (float* xp = x, dyp = dy, dup = du)
                {
                    i = Reduce8(xp, dyp, dup, prefetch ? np : null, i, n, r, b0, silu, zs, zb, out double s8,
                        out double d8);
                    sum += s8; dot += d8;
                }
            for (; i < n; i++)
            {
                float xh = x[i] * r + b0, g = dy[i];
                if (silu) du[i] = g *= VecMath.SiLUGrad(new Vector<float>(xh * zs + zb))[0];
                sum += g; dot += (double)g * xh;
            }
            return (sum, dot);
        }
    }

    /// <summary>
    /// <see cref="Reduce"/>'s 8-lane loop from element i while whole vectors remain (all of the AVX2 path, the
    /// remainder after the 16-lane loop on AVX-512); returns where it stopped. Out of line: inlined into the GroupNorm
    /// backward's task, the loop reloaded its four constant vectors and the row pointers from the stack every vector
    /// (one routine too many for the registers), and this form measured 0.95–0.99× the time (AVX2, N64, C64–128,
    /// 8²–32²). Prefetches the dx row at <paramref name="np"/> when it is not null.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe int Reduce8(float* x, float* dy, float* du, float* np, int i, int n, float r, float b0,
        bool silu, float zs, float zb, out double sum, out double dot)
    {
        int w = Vector<float>.Count;
        var rv = new Vector<float>(r); var bv = new Vector<float>(b0);
        var zsv = new Vector<float>(zs); var zbv = new Vector<float>(zb);
        double sm = 0, dt = 0;
        while (i <= n - w)
        {
            int last = Math.Min(n - w, i + (DoubleSums.BlockVectors - 1) * w);
            var s = Vector<float>.Zero; var d = Vector<float>.Zero;
            for (; i <= last; i += w)
            {
                var xh = VecMath.MulAdd(Vector.Load(x + i), rv, bv);
                var g = Vector.Load(dy + i);
                if (silu)
                {
                    g *= VecMath.SiLUGrad(VecMath.MulAdd(xh, zsv, zbv));
                    g.Store(du + i);
                }
                s += g;
                d = VecMath.MulAdd(g, xh, d);
                if (np != null) Sse.Prefetch0(np + i);
            }
            sm += DoubleSums.Sum(s); dt += DoubleSums.Sum(d);
        }
        (sum, dot) = (sm, dt);
        return i;
    }

    /// <summary>y = act(x·a + b), act SiLU or identity: the forward's output row in one pass.</summary>
    public static void AffineAct(ReadOnlySpan<float> x, float a, float b, bool silu, Span<float> y)
    {
        int n = x.Length, w = Vector<float>.Count, i = 0;
        if (y.Length < n) throw new ArgumentException("GroupNormRows: short row");
        ref float xr = ref MemoryMarshal.GetReference(x), yr = ref MemoryMarshal.GetReference(y);
        if (VecMath.Wide)
        {
            var av16 = Vector512.Create(a); var bv16 = Vector512.Create(b);
            for (; i <= n - 16; i += 16)
            {
                var u = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref xr, (nuint)i), av16, bv16);
                (silu ? VecMath.SiLU(u) : u).StoreUnsafe(ref yr, (nuint)i);
            }
        }
        var av = new Vector<float>(a); var bv = new Vector<float>(b);
        for (; i <= n - w; i += w)
        {
            var u = VecMath.MulAdd(Vector.LoadUnsafe(ref xr, (nuint)i), av, bv);
            (silu ? VecMath.SiLU(u) : u).StoreUnsafe(ref yr, (nuint)i);
        }
        for (; i < n; i++)
        {
            float u = x[i] * a + b;
            y[i] = silu ? VecMath.SiLU(new Vector<float>(u))[0] : u;
        }
    }

    /// <summary>
    /// dx += du·a + c + x̂·e (x̂ = x·r + b0): the data gradient of one row. 8 lanes on both paths: a 16-lane loop
    /// measured 1.01–1.07× the backward's time (AVX-512, N64, C64–128, 8²–32²); the pass is bound by memory.
    /// </summary>
    public static void AddDx(ReadOnlySpan<float> x, float r, float b0, ReadOnlySpan<float> du, float a, float c,
        float e, Span<float> dx)
    {
        int n = x.Length, w = Vector<float>.Count, i = 0;
        if (du.Length < n || dx.Length < n) throw new ArgumentException("GroupNormRows: short row");
        ref float xr = ref MemoryMarshal.GetReference(x), dur = ref MemoryMarshal.GetReference(du);
        ref float dxr = ref MemoryMarshal.GetReference(dx);
        var rv = new Vector<float>(r); var bv = new Vector<float>(b0);
        var av = new Vector<float>(a); var cv = new Vector<float>(c); var ev = new Vector<float>(e);
        for (; i <= n - w; i += w)
        {
            var xh = VecMath.MulAdd(Vector.LoadUnsafe(ref xr, (nuint)i), rv, bv);
            var t = VecMath.MulAdd(Vector.LoadUnsafe(ref dur, (nuint)i), av, VecMath.MulAdd(xh, ev, cv));
            (Vector.LoadUnsafe(ref dxr, (nuint)i) + t).StoreUnsafe(ref dxr, (nuint)i);
        }
        for (; i < n; i++) dx[i] += du[i] * a + c + (x[i] * r + b0) * e;
    }
}
