using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

// The 16-lane (Vector512) forms of VecMath's exp, SiLU and SiLU derivative: the same operations as the
// Vector<float> forms, in the same order, so a lane's result does not depend on the path.
internal static partial class VecMath
{
    private static readonly Vector512<float> Hi16 = Vector512.Create(88.3762626647949f),
        Lo16 = Vector512.Create(-87.3365478515625f), Log2E16 = Vector512.Create(1.44269504088896341f),
        Half16 = Vector512.Create(0.5f), C1n16 = Vector512.Create(-0.693359375f),
        C2n16 = Vector512.Create(2.12194440e-4f),
        P016 = Vector512.Create(1.9875691500e-4f), P116 = Vector512.Create(1.3981999507e-3f),
        P216 = Vector512.Create(8.3334519073e-3f), P316 = Vector512.Create(4.1665795894e-2f),
        P416 = Vector512.Create(1.6666665459e-1f), P516 = Vector512.Create(5.0000001201e-1f);

    /// <summary>e^x per lane, 16 lanes (see <see cref="Exp(System.Numerics.Vector{float})"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Lo16), Hi16);
        var fx = Vector512.Floor(Vector512.FusedMultiplyAdd(x, Log2E16, Half16));
        var r = Vector512.FusedMultiplyAdd(fx, C2n16, Vector512.FusedMultiplyAdd(fx, C1n16, x));
        var r2 = r * r;
        var y = Vector512.FusedMultiplyAdd(P016, r, P116);
        y = Vector512.FusedMultiplyAdd(y, r, P216);
        y = Vector512.FusedMultiplyAdd(y, r, P316);
        y = Vector512.FusedMultiplyAdd(y, r, P416);
        y = Vector512.FusedMultiplyAdd(y, r, P516);
        y = Vector512.FusedMultiplyAdd(y, r2, r + Vector512<float>.One);
        // y·2^fx in one vscalefps, where the 256-bit form builds 2^fx from exponent bits (convert, add, shift) and
        // multiplies: the same correctly rounded product (fx ≥ −126 after the clamp, so 2^fx is a normal float).
        return Avx512F.Scale(y, fx);
    }

    /// <summary>u·σ(u), 16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SiLU(Vector512<float> u) => u / (Vector512<float>.One + Exp(-u));

    /// <summary>silu'(u) = σ(u)·(1 + u·(1 − σ(u))), 16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SiLUGrad(Vector512<float> u)
    {
        var one = Vector512<float>.One;
        var s = one / (one + Exp(-u));
        return s * Vector512.FusedMultiplyAdd(u, one - s, one);
    }
}
