using System.Collections.Concurrent;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// Reusable float scratch for kernels that run one task per (sample, group) or (sample, head):
/// rented in Parallel.For's localInit and returned in localFinally, so at most one array per worker
/// is live and steady-state calls allocate nothing. Contents on rent are arbitrary (but finite:
/// only kernel intermediates are ever stored), so kernels must overwrite before reading.
/// </summary>
internal sealed class ScratchPool
{
    private readonly ConcurrentBag<float[]> _bag = new();

    public float[] Rent(long minLength)
    {
        // An array that is too small is dropped: the pool converges to the largest size in use.
        if (_bag.TryTake(out var a) && a.Length >= minLength) return a;
        return new float[minLength];
    }

    public void Return(float[] a) => _bag.Add(a);

    public void Clear() => _bag.Clear();
}
