namespace Ddsm.Engine;

/// <summary>
/// A position in a stream of Gaussian noise drawn on the device: the next draw is normal number
/// <see cref="Position"/> of stream <see cref="Seed"/> (<see cref="Backend.Normal"/>, the counter hash of
/// dropout under Box–Muller). The host keeps only these two numbers, so drawing costs no transfer, every
/// backend draws the same values for a seed, and saving (seed, position) is all a resume needs.
/// </summary>
public sealed class NoiseStream(ulong seed, ulong position = 0)
{
    public ulong Seed { get; private set; } = seed;
    /// <summary>Normals drawn so far (the offset of the next one).</summary>
    public ulong Position { get; private set; } = position;

    /// <summary>Overwrites <paramref name="t"/> with the next t.Length normals of the stream.</summary>
    public void Fill(Tensor t)
    {
        var be = t.Backend;
        // No FLOPs counted: a sampler's cost is its model calls (Sampler.Cost), as when noise came from the host.
        using (Profiler.Op("normal", 0, be)) be.Normal(t.Buffer, t.Length, Seed, Position);
        Position += (ulong)t.Length;
    }

    /// <summary>
    /// Skips the next <paramref name="count"/> normals and returns the offset of the first: a loop that draws them
    /// later from device memory (<see cref="Backend.NormalStep"/>) reserves its draws up front, in order.
    /// </summary>
    public ulong Reserve(long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var first = Position;
        Position += (ulong)count;
        return first;
    }

    /// <summary>A new tensor of the next normals.</summary>
    public Tensor Next(Backend backend, params int[] shape)
    {
        var t = Tensor.Empty(backend, shape);
        Fill(t);
        return t;
    }

    /// <summary>(seed, position), for checkpoints.</summary>
    public ulong[] GetState() => [Seed, Position];

    public void SetState(ReadOnlySpan<ulong> s)
    {
        if (s.Length != 2)
            throw new ArgumentException($"noise stream state needs 2 words (seed, position), got {s.Length}");
        (Seed, Position) = (s[0], s[1]);
    }
}
