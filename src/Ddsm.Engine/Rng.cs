namespace Ddsm.Engine;

/// <summary>
/// xoshiro256** with a 256-bit state that can be saved and restored exactly (checkpoints must
/// resume bit for bit). Normals by Box–Muller; both halves are used, the spare is part of the state.
/// </summary>
public sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;
    private bool _hasSpare;
    private double _spare;

    public Rng(ulong seed)
    {
        // splitmix64 expands the seed so that nearby seeds give unrelated streams.
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextULong()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        return (int)((NextULong() >> 33) * (ulong)n >> 31);
    }

    public double NextNormal()
    {
        if (_hasSpare) { _hasSpare = false; return _spare; }
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        _spare = r * Math.Sin(2 * Math.PI * u2);
        _hasSpare = true;
        return r * Math.Cos(2 * Math.PI * u2);
    }

    public void FillNormal(Span<float> dst, float std = 1f)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)(NextNormal() * std);
    }

    public void FillUniform(Span<float> dst, float lo, float hi)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)(lo + (hi - lo) * NextDouble());
    }

    /// <summary>The full state as 6 words (4 state words, spare flag, spare bits).</summary>
    public ulong[] GetState() =>
    [
        _s0,
        _s1,
        _s2,
        _s3,
        _hasSpare ? 1UL : 0UL,
        (ulong)BitConverter.DoubleToInt64Bits(_spare),
    ];

    public void SetState(ReadOnlySpan<ulong> s)
    {
        if (s.Length != 6) throw new ArgumentException($"Rng state needs 6 words, got {s.Length}");
        if ((s[0] | s[1] | s[2] | s[3]) == 0) throw new ArgumentException("Rng state of all zeros is invalid");
        (_s0, _s1, _s2, _s3) = (s[0], s[1], s[2], s[3]);
        _hasSpare = s[4] != 0;
        _spare = BitConverter.Int64BitsToDouble((long)s[5]);
    }

    /// <summary>
    /// Stateless counter-based hash of seed and index, the very code the GPU kernels run
    /// (<see cref="Ddsm.Kernels.CounterHash"/>): dropout masks must not depend on the device.
    /// </summary>
    public static uint Hash(ulong seed, ulong index) => Ddsm.Kernels.CounterHash.Of(seed, index);
}
