namespace Ddsm.Engine.Cuda;

/// <summary>
/// Caching device allocator: freed blocks go to per-size free lists and are handed out again, so a
/// training step in steady state never calls cuMemAlloc / cuMemFree (both synchronise the device and
/// cost tens of microseconds). Requests are rounded up to a bucket (at most 25% waste: four sizes per
/// power of two, minimum 512 B, which also keeps every block 16-byte aligned for vector loads).
/// Reuse is safe without events because all work runs on one stream in order: a block freed after
/// queuing a kernel that reads it can only be rewritten by work queued later.
/// When cuMemAlloc reports out-of-memory, the cache is released (after a synchronise) and the
/// allocation retried once; a second failure throws <see cref="CudaOutOfMemoryException"/>.
/// </summary>
internal sealed class DeviceAllocator(Action synchronize)
{
    private readonly Dictionary<long, Stack<ulong>> _free = new();
    private readonly object _gate = new();
    public long CachedBytes { get; private set; }
    public long LiveBytes { get; private set; }
    public long DeviceAllocs { get; private set; }

    /// <summary>The bucket a request of <paramref name="bytes"/> is served from.</summary>
    public static long Bucket(long bytes)
    {
        long b = Math.Max(bytes, 512);
        long pow = 1L << (63 - (int)long.LeadingZeroCount(b));      // largest power of two ≤ b
        long step = Math.Max(512, pow / 4);
        return (b + step - 1) / step * step;
    }

    public ulong Alloc(long bytes, out long bucket)
    {
        bucket = Bucket(bytes);
        lock (_gate)
        {
            if (_free.TryGetValue(bucket, out var st) && st.Count > 0)
            {
                CachedBytes -= bucket; LiveBytes += bucket;
                return st.Pop();
            }
            int r = Driver.cuMemAlloc(out ulong p, (nuint)bucket);
            if (r == Driver.ErrorOutOfMemory)
            {
                long released = CachedBytes;
                ReleaseCacheLocked();
                r = Driver.cuMemAlloc(out p, (nuint)bucket);
                if (r == Driver.ErrorOutOfMemory)
                {
                    Driver.cuMemGetInfo(out nuint free, out nuint total);
                    throw new CudaOutOfMemoryException(bytes, (long)free, (long)total, released);
                }
            }
            Driver.Check(r, $"cuMemAlloc_v2({bucket} bytes)");
            DeviceAllocs++; LiveBytes += bucket;
            return p;
        }
    }

    public void Free(ulong ptr, long bucket)
    {
        lock (_gate)
        {
            if (!_free.TryGetValue(bucket, out var st)) _free[bucket] = st = new Stack<ulong>();
            st.Push(ptr);
            CachedBytes += bucket; LiveBytes -= bucket;
        }
    }

    /// <summary>Returns every cached block to the driver.</summary>
    public void ReleaseCache()
    {
        lock (_gate) ReleaseCacheLocked();
    }

    private void ReleaseCacheLocked()
    {
        synchronize();   // a cached block may still be read by queued work
        foreach (var st in _free.Values)
            while (st.Count > 0) Driver.Check(Driver.cuMemFree(st.Pop()), "cuMemFree_v2");
        _free.Clear();
        CachedBytes = 0;
    }
}
