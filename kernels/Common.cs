// Device helpers shared by the kernel families: compile-time math modes, deterministic warp and block
// reductions, TF32 rounding and the counter hash of dropout/noise. Everything here is inlined into the
// kernels that call it (ILGPU inlines aggressively), so none of it costs a call.
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Ddsm.Kernels;

/// <summary>
/// A compile-time choice folded by ILGPU when a generic kernel is specialised
/// (<c>Kernel&lt;TMode&gt;</c> with <c>TMode : struct, IMathMode</c>): the unused branch is never emitted.
/// </summary>
public interface IMathMode
{
    /// <summary>True: TF32 tensor cores (10-bit mantissa operands, FP32 accumulation). False: exact FP32.</summary>
    bool Tf32 { get; }
    /// <summary>Name suffix of the specialisation ("f32", "tf32").</summary>
    string Tag { get; }
}

/// <summary>Exact FP32 SIMT inner products: agree with the CPU oracle to float rounding.</summary>
public struct ExactFp32 : IMathMode
{
    public readonly bool Tf32 => false;
    public readonly string Tag => "f32";
}

/// <summary>TF32 tensor cores through inline mma.sync (≈1e-3 relative error; several times faster).</summary>
public struct TensorTf32 : IMathMode
{
    public readonly bool Tf32 => true;
    public readonly string Tag => "tf32";
}

internal static class Dev
{
    /// <summary>Stand-in for −∞ in running maxima: exp(x − max) underflows to 0 without ∞ − ∞ = NaN.</summary>
    public const float NegBig = -1.0e30f;

    /// <summary>Butterfly sum over the 32 lanes; every lane gets the same (fixed-order) total.</summary>
    public static float WarpSum(float v)
    {
        v += Warp.ShuffleXor(v, 16);
        v += Warp.ShuffleXor(v, 8);
        v += Warp.ShuffleXor(v, 4);
        v += Warp.ShuffleXor(v, 2);
        v += Warp.ShuffleXor(v, 1);
        return v;
    }

    public static double WarpSum(double v)
    {
        v += Warp.ShuffleXor(v, 16);
        v += Warp.ShuffleXor(v, 8);
        v += Warp.ShuffleXor(v, 4);
        v += Warp.ShuffleXor(v, 2);
        v += Warp.ShuffleXor(v, 1);
        return v;
    }

    public static float WarpMax(float v)
    {
        v = MathF.Max(v, Warp.ShuffleXor(v, 16));
        v = MathF.Max(v, Warp.ShuffleXor(v, 8));
        v = MathF.Max(v, Warp.ShuffleXor(v, 4));
        v = MathF.Max(v, Warp.ShuffleXor(v, 2));
        v = MathF.Max(v, Warp.ShuffleXor(v, 1));
        return v;
    }

    /// <summary>
    /// Block-wide sum, returned to every thread: butterfly in each warp, then every warp adds the warp
    /// partials in the same tree, so the result is deterministic. scratch: ≥ 32 floats of shared memory;
    /// every thread of the group must call it (it contains barriers).
    /// </summary>
    public static float BlockSum(float v, ArrayView<float> scratch)
    {
        v = WarpSum(v);
        Group.Barrier();                      // scratch may still be read by a previous call
        if (Warp.LaneIdx == 0) scratch[Warp.WarpIdx] = v;
        Group.Barrier();
        int warps = (Group.DimX + 31) >> 5;
        return WarpSum(Warp.LaneIdx < warps ? scratch[Warp.LaneIdx] : 0f);
    }

    /// <summary><see cref="BlockSum(float, ArrayView{float})"/> over doubles (final passes of reductions).</summary>
    public static double BlockSum(double v, ArrayView<double> scratch)
    {
        v = WarpSum(v);
        Group.Barrier();
        if (Warp.LaneIdx == 0) scratch[Warp.WarpIdx] = v;
        Group.Barrier();
        int warps = (Group.DimX + 31) >> 5;
        return WarpSum(Warp.LaneIdx < warps ? scratch[Warp.LaneIdx] : 0.0);
    }

    /// <summary>
    /// Round to TF32 (the tensor cores' 19-bit operand format) to nearest, ties away from zero, kept in a
    /// float: cvt.rna.tf32.f32 on the GPU, the same bit arithmetic elsewhere (finite inputs).
    /// </summary>
    public static float RoundTf32(float x)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("cvt.rna.tf32.f32 %0, %1;", out uint r, x);
            return Interop.IntAsFloat(r);
        }
        uint bits = Interop.FloatAsInt(x);
        return Interop.IntAsFloat((bits + 0x1000u) & 0xFFFFE000u);
    }

    /// <summary>Global thread index and stride of a grid-stride loop over a 1-D launch.</summary>
    public static long GlobalId => (long)Grid.IdxX * Group.DimX + Group.IdxX;
    public static long GridStride => (long)Grid.DimX * Group.DimX;
}

/// <summary>
/// The engine's one counter-based hash (a splitmix64 finaliser of seed ⊕ index·φ, top 32 bits) and the
/// dropout decision and normal draws built on it: the CPU backend (through Rng.Hash) and the GPU kernels call this same
/// code, so a seed draws the same mask (and noise) bit for bit on every backend, with no RNG state between launches.
/// </summary>
public static class CounterHash
{
    public static uint Of(ulong seed, ulong index)
    {
        ulong z = seed ^ (index * 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (uint)(z >> 32);
    }

    /// <summary>
    /// The normal draw number <paramref name="k"/> of stream <paramref name="seed"/>: Box–Muller on the pair
    /// p = k/2, u1 = (hash(seed, 2p) + 1)/2³² in (0, 1], u2 = hash(seed, 2p + 1)/2³²; even k takes
    /// r·cos(2πu2), odd k r·sin(2πu2), r = √(−2 ln u1). In double, rounded once to float: the CPU backend,
    /// ILGPU's CPU accelerator and (through ILGPU.Algorithms' double math, within ~1e-12 of System.Math)
    /// a GPU agree to the float. 32-bit u1 caps |z| at √(64 ln 2) ≈ 6.66: a 3e-11 tail, never reached
    /// by a sampling run's draws.
    /// </summary>
    public static float Normal(ulong seed, ulong k)
    {
        ulong p = k >> 1;
        double u1 = (Of(seed, 2 * p) + 1.0) * (1.0 / 4294967296.0);
        double u2 = Of(seed, 2 * p + 1) * (1.0 / 4294967296.0);
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        double a = 2.0 * Math.PI * u2;
        return (float)((k & 1) == 0 ? r * Math.Cos(a) : r * Math.Sin(a));
    }

    /// <summary>Element i survives dropout with probability p iff <see cref="Of"/>(seed, i) ≥ this.</summary>
    public static uint DropThreshold(float p) => (uint)Math.Min(uint.MaxValue, (double)p * 4294967296.0);

    /// <summary>The mask value of element i: 1/(1−p) when kept, 0 when dropped (inverted dropout).</summary>
    public static float Mask(ulong seed, ulong i, uint threshold, float keepScale) =>
        Of(seed, i) >= threshold ? keepScale : 0f;
}
