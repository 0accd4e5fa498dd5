using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// SIMD SiLU and its derivative. TensorPrimitives.Exp/Sigmoid measured ~2 ns per float on this
/// machine (not vectorised for float here), which made SiLU cost more than the whole GroupNorm it is
/// fused into; this Cephes-style exp (range reduction by ln 2, degree-6 polynomial, 2ⁿ by exponent
/// bits; ≤ 2 ulp on [−87, 88]) runs at memory speed.
/// <para>The span loops take 16 lanes (Vector512) on the AVX-512 path (<see cref="Wide"/>), then 8 (Vector&lt;float&gt;
/// is 256 bits here), then scalars. A lane's result is the same on every path (same operations, fused the same
/// way); only the sums that <see cref="ExpShifted"/> returns add in another order. 16 lanes cut the instruction count
/// in half: the double-pumped Zen 4 cores ran GroupNorm + SiLU ~12 % faster with them.</para>
/// </summary>
internal static partial class VecMath
{
    /// <summary>Whether the span loops take 16 lanes: the AVX-512 path of <see cref="Sgemm.Path"/> (so a test's
    /// <see cref="Sgemm.Cap"/> switches them too).</summary>
    public static bool Wide => Sgemm.Path == SgemmPath.Avx512;

    private static readonly Vector<float> Hi = new(88.3762626647949f), Lo = new(-87.3365478515625f);
    private static readonly Vector<float> Log2E = new(1.44269504088896341f), Half = new(0.5f), One = Vector<float>.One;
    private static readonly Vector<float> C1 = new(0.693359375f), C2 = new(-2.12194440e-4f);
    private static readonly Vector<float> P0 = new(1.9875691500e-4f), P1 = new(1.3981999507e-3f),
        P2 = new(8.3334519073e-3f), P3 = new(4.1665795894e-2f), P4 = new(1.6666665459e-1f), P5 = new(5.0000001201e-1f);

    /// <summary>e^x per lane (inputs clamped to the finite float range of the result).</summary>
    /// <remarks>Inlined: a call passes and returns the vectors through memory, which cost the SiLU loops ~30 %.
    /// Fused multiply-adds and the native (non-saturating) float→int conversion: the input is clamped, and the
    /// saturating one cost four instructions a vector.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Exp(Vector<float> x)
    {
        x = Vector.Min(Vector.Max(x, Lo), Hi);
        var fx = Vector.Floor(MulAdd(x, Log2E, Half));
        var r = MulAdd(fx, -C2, MulAdd(fx, -C1, x));
        var r2 = r * r;
        var y = MulAdd(MulAdd(MulAdd(MulAdd(MulAdd(P0, r, P1), r, P2), r, P3), r, P4), r, P5);
        y = MulAdd(y, r2, r + One);
        var pow2 = Vector.ShiftLeft(Vector.ConvertToInt32Native(fx) + new Vector<int>(127), 23);
        return y * Vector.AsVectorSingle(pow2);
    }

    /// <summary>a·b + c, fused where the CPU has FMA (the JIT does not contract a * b + c by itself).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> MulAdd(Vector<float> a, Vector<float> b, Vector<float> c) =>
        Fma.IsSupported ? Vector.FusedMultiplyAdd(a, b, c) : a * b + c;

    public static float Exp(float x) => Exp(new Vector<float>(x))[0];

    /// <summary>x = e^(x − shift) in place; returns Σ of the results (the softmax denominator).</summary>
    public static float ExpShifted(Span<float> x, float shift)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length, w = Vector<float>.Count, i = 0;
        float sum = 0;
        if (Wide && n >= 16)
        {
            var sv16 = Vector512.Create(shift);
            var acc16 = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var e = Exp(Vector512.LoadUnsafe(ref xr, (nuint)i) - sv16);
                acc16 += e;
                e.StoreUnsafe(ref xr, (nuint)i);
            }
            sum = Vector512.Sum(acc16);
        }
        var sv = new Vector<float>(shift);
        var acc = Vector<float>.Zero;
        for (; i <= n - w; i += w)
        {
            var e = Exp(Vector.LoadUnsafe(ref xr, (nuint)i) - sv);
            acc += e;
            e.StoreUnsafe(ref xr, (nuint)i);
        }
        sum += Vector.Sum(acc);
        for (; i < n; i++) sum += x[i] = Exp(x[i] - shift);
        return sum;
    }

    /// <summary>y = y·σ(y) in place.</summary>
    public static void SiLUInPlace(Span<float> y)
    {
        ref float yr = ref MemoryMarshal.GetReference(y);
        int n = y.Length, w = Vector<float>.Count, i = 0;
        if (Wide)
            for (; i <= n - 16; i += 16) SiLU(Vector512.LoadUnsafe(ref yr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        for (; i <= n - w; i += w) SiLU(Vector.LoadUnsafe(ref yr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        for (; i < n; i++) y[i] = SiLU(new Vector<float>(y[i]))[0];
    }

    /// <summary>d = silu'(u) = σ(u)·(1 + u·(1 − σ(u))); d may be u (the forward map UnaryOp.SiLUGrad).</summary>
    public static void SiLUGrad(ReadOnlySpan<float> u, Span<float> d)
    {
        int n = u.Length, w = Vector<float>.Count, i = 0;
        if (d.Length < n) throw new ArgumentException("SiLUGrad: short output");
        ref float ur = ref MemoryMarshal.GetReference(u), dr = ref MemoryMarshal.GetReference(d);
        if (Wide)
            for (; i <= n - 16; i += 16)
                SiLUGrad(Vector512.LoadUnsafe(ref ur, (nuint)i)).StoreUnsafe(ref dr, (nuint)i);
        for (; i <= n - w; i += w) SiLUGrad(Vector.LoadUnsafe(ref ur, (nuint)i)).StoreUnsafe(ref dr, (nuint)i);
        for (; i < n; i++) d[i] = SiLUGrad(new Vector<float>(u[i]))[0];
    }

    /// <summary>u·σ(u) per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> SiLU(Vector<float> u) => u / (One + Exp(-u));

    /// <summary>silu'(u) = σ(u)·(1 + u·(1 − σ(u))) per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> SiLUGrad(Vector<float> u)
    {
        var s = One / (One + Exp(-u));
        return s * MulAdd(u, One - s, One);
    }
}
