using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Ddsm.Engine.Ilgpu;

/// <summary>
/// Caching pool of accelerator buffers: freed buffers go to per-size free lists and are handed out
/// again, so a training step in steady state never allocates (cuMemAlloc/cuMemFree cost tens of
/// microseconds and cuMemFree synchronises the device). Requests are rounded up to a bucket (at most
/// 25% waste: four sizes per power of two, at least 128 floats, which keeps every buffer 16-byte
/// aligned for vector loads). Reuse needs no events because all work runs on one stream in order: a
/// buffer freed after queuing a kernel that reads it can only be rewritten by work queued later.
/// When an allocation fails for lack of memory, the cache is released (after a synchronise) and the
/// allocation retried once; a second failure throws <see cref="DeviceOutOfMemoryException"/>.
/// </summary>
internal sealed class BufferPool(Accelerator accelerator, Action synchronize)
{
    private readonly Dictionary<long, Stack<MemoryBuffer1D<float, Stride1D.Dense>>> _free = new();
    private readonly object _gate = new();
    public long CachedFloats { get; private set; }
    public long LiveFloats { get; private set; }
    /// <summary>Allocations that reached the accelerator (flat in steady state: the cache serves the rest).</summary>
    public long DeviceAllocations { get; private set; }

    /// <summary>The bucket (in floats) a request of <paramref name="count"/> floats is served from.</summary>
    public static long Bucket(long count)
    {
        long b = Math.Max(count, 128);
        long pow = 1L << (63 - (int)long.LeadingZeroCount(b));      // largest power of two ≤ b
        long step = Math.Max(128, pow / 4);
        return (b + step - 1) / step * step;
    }

    public MemoryBuffer1D<float, Stride1D.Dense> Rent(long count)
    {
        long bucket = Bucket(count);
        lock (_gate)
        {
            if (_free.TryGetValue(bucket, out var st) && st.Count > 0)
            {
                CachedFloats -= bucket; LiveFloats += bucket;
                return st.Pop();
            }
            MemoryBuffer1D<float, Stride1D.Dense> m;
            try { m = accelerator.Allocate1D<float>(bucket); }
            catch (Exception e) when (IsOutOfMemory(e))
            {
                long released = CachedFloats;
                ReleaseLocked();
                try { m = accelerator.Allocate1D<float>(bucket); }
                catch (Exception e2) when (IsOutOfMemory(e2))
                {
                    throw new DeviceOutOfMemoryException(accelerator, count * sizeof(float), released * sizeof(float),
                                                         e2);
                }
            }
            DeviceAllocations++; LiveFloats += bucket;
            return m;
        }
    }

    public void Return(MemoryBuffer1D<float, Stride1D.Dense> m)
    {
        lock (_gate)
        {
            long bucket = m.Length;
            if (!_free.TryGetValue(bucket, out var st)) _free[bucket] = st = new();
            st.Push(m);
            CachedFloats += bucket; LiveFloats -= bucket;
        }
    }

    /// <summary>Gives every cached buffer back to the accelerator.</summary>
    public void Release()
    {
        lock (_gate) ReleaseLocked();
    }

    private void ReleaseLocked()
    {
        synchronize();   // a cached buffer may still be read by queued work
        foreach (var st in _free.Values)
            while (st.Count > 0) st.Pop().Dispose();
        _free.Clear();
        CachedFloats = 0;
    }

    private static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException || (e is CudaException c && c.Error == nameof(CudaError.CUDA_ERROR_OUT_OF_MEMORY));
}

/// <summary>An allocation the accelerator could not serve even after the pool released its cache.</summary>
public sealed class DeviceOutOfMemoryException(Accelerator accelerator, long requestedBytes, long releasedBytes,
                                               Exception inner)
    : DeviceException(Describe(accelerator, requestedBytes, releasedBytes), inner)
{
    private static string Describe(Accelerator a, long requested, long released)
    {
        string free = a is CudaAccelerator c
            ? $"{c.GetFreeMemory() / (1 << 20):N0} MiB free of {a.MemorySize / (1 << 20):N0} MiB; " : "";
        return $"{a.Name}: out of memory allocating {requested / (1 << 20):N1} MiB ({free}the pool had released " +
               $"{released / (1 << 20):N0} MiB of cached buffers first). Try a smaller --batch.";
    }
}
