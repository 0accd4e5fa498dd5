using System.Text;

namespace Ddsm.Engine.Cuda;

/// <summary>
/// The CUDA backend: driver API + NVRTC through P/Invoke, kernels from kernels/*.cu compiled at first
/// use for this device's sm_XX and cached on disk. One device, its primary context (made current on
/// every calling thread), one stream (so all work is ordered and the caching allocator needs no
/// events), and a caching allocator. The class is split by kernel family over CudaBackend.*.cs.
/// Asynchronous: kernels are queued; CopyOut and <see cref="Synchronize"/> wait.
/// </summary>
public sealed partial class CudaBackend : Backend
{
    private readonly int _device;
    private readonly IntPtr _ctx;
    private IntPtr _stream;
    private readonly DeviceAllocator _alloc;
    private readonly Dictionary<string, IntPtr> _modules = new();
    private readonly Dictionary<string, IntPtr> _functions = new();
    private readonly HashSet<IntPtr> _smemRaised = new();
    private readonly object _gate = new();
    private List<CudaBuffer>? _captureHeld;   // non-null while a graph is being captured
    private bool _disposed;
    private readonly Action<LaunchRecord>? _dryRun;
    private long _fakePtr = 1L << 20, _dryLiveBytes;

    [ThreadStatic] private static IntPtr t_current;

    public override string Name => $"cuda:{_device}";
    public string DeviceName { get; }
    public int ComputeMajor { get; }
    public int ComputeMinor { get; }
    public int MultiprocessorCount { get; }
    public int MaxSharedBytesPerBlock { get; }
    /// <summary>"sm_90" for an H100.</summary>
    public string Arch => $"sm_{ComputeMajor}{ComputeMinor}";

    /// <summary>
    /// True (default): GEMM and convolutions use the exact FP32 SIMT kernels, which agree with the CPU
    /// oracle to float rounding (tests). False: TF32 tensor cores with FP32 accumulation (~1e-3
    /// relative error, several times faster; for training and sampling).
    /// </summary>
    public bool ExactFp32 { get; set; } = true;

    /// <summary>NVRTC options (part of the cache key). No --use_fast_math: its approximate expf and
    /// division would move results away from the CPU oracle by more than float rounding.</summary>
    public IReadOnlyList<string> CompileOptions => [$"--gpu-architecture={Arch}", "-std=c++17", "--fmad=true"];

    // ---- creation ------------------------------------------------------------------------------
    private static readonly object SharedGate = new();
    private static CudaBackend? _shared;
    private static string? _sharedFailure;

    /// <summary>
    /// The process-wide backend of device 0, created at the first call; null with the reason when
    /// there is no usable CUDA here (no driver, no device, no NVRTC). Test fixtures report the reason
    /// as "Ignored". Later calls return the same instance (or the same reason).
    /// </summary>
    public static CudaBackend? TryCreate(out string reason)
    {
        lock (SharedGate)
        {
            if (_shared is null && _sharedFailure is null)
            {
                try { _shared = new CudaBackend(0); }
                catch (Exception e) when (e is CudaException or DllNotFoundException or EntryPointNotFoundException)
                {
                    _sharedFailure = e.Message;
                }
            }
            reason = _sharedFailure ?? "";
            return _shared;
        }
    }

    /// <summary>Opens device <paramref name="device"/>; throws CudaException when CUDA is unusable.</summary>
    public unsafe CudaBackend(int device)
    {
        NativeLibs.EnsureResolver();
        NativeLibs.LoadDriver();          // clear "CUDA driver libcuda.so.1 not found: …" when absent
        Driver.Check(Driver.cuInit(0), "cuInit");
        Driver.Check(Driver.cuDeviceGetCount(out int count), "cuDeviceGetCount");
        if (count == 0) throw new CudaException("cuDeviceGetCount", "no CUDA-capable device is visible (count 0)");
        if (device < 0 || device >= count)
            throw new CudaException("cuDeviceGet", $"CUDA device {device} does not exist (this machine has {count})");
        NativeLibs.LoadNvrtc();           // fail now, clearly, rather than at the first kernel
        Driver.Check(Driver.cuDeviceGet(out _device, device), "cuDeviceGet");
        ComputeMajor = Attr(Driver.AttrComputeCapabilityMajor);
        ComputeMinor = Attr(Driver.AttrComputeCapabilityMinor);
        MultiprocessorCount = Attr(Driver.AttrMultiprocessorCount);
        MaxSharedBytesPerBlock = Attr(Driver.AttrMaxSharedMemoryPerBlockOptin);
        var name = new byte[256];
        fixed (byte* p = name) Driver.Check(Driver.cuDeviceGetName(p, name.Length, _device), "cuDeviceGetName");
        DeviceName = Encoding.ASCII.GetString(name).TrimEnd('\0');
        if (ComputeMajor < 8)
            throw new CudaException("cuDeviceGetAttribute",
                $"{DeviceName} is {Arch}; the kernels need sm_80 or newer (TF32 mma.sync, cvt.rna.tf32)");
        Driver.Check(Driver.cuDevicePrimaryCtxRetain(out _ctx, _device), "cuDevicePrimaryCtxRetain");
        MakeCurrent();
        Driver.Check(Driver.cuStreamCreate(out _stream, 0), "cuStreamCreate");
        _alloc = new DeviceAllocator(SyncStream);
        _partials = (CudaBuffer)Allocate(2 * ReducePartialsMax);   // doubles for the two-pass reductions
    }

    /// <summary>One kernel launch as the host code issues it (dry-run mode).</summary>
    internal readonly record struct LaunchRecord(string File, string Kernel, (uint x, uint y, uint z) Grid, uint Block,
        uint SharedBytes, string ArgTags);

    /// <summary>
    /// A backend with no device: launches are handed to <paramref name="record"/> instead of the driver
    /// and allocations get fake addresses. Lets GPU-less CI check every host-side launch (argument
    /// count and types against the kernel's C signature, grid, block, shared memory).
    /// </summary>
    internal static CudaBackend DryRun(Action<LaunchRecord> record, int multiprocessors = 132, int maxSharedBytes = 227 * 1024)
        => new(record, multiprocessors, maxSharedBytes);

    private CudaBackend(Action<LaunchRecord> record, int multiprocessors, int maxSharedBytes)
    {
        _dryRun = record;
        DeviceName = "dry-run";
        ComputeMajor = 9; ComputeMinor = 0;
        MultiprocessorCount = multiprocessors; MaxSharedBytesPerBlock = maxSharedBytes;
        _alloc = new DeviceAllocator(() => { });
        _partials = (CudaBuffer)Allocate(2 * ReducePartialsMax);
    }

    private int Attr(int attr)
    {
        Driver.Check(Driver.cuDeviceGetAttribute(out int v, attr, _device), $"cuDeviceGetAttribute({attr})");
        return v;
    }

    /// <summary>Makes the primary context current on this thread (a thread-static check: free when it already is).</summary>
    internal void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_dryRun is not null || t_current == _ctx) return;
        Driver.Check(Driver.cuCtxSetCurrent(_ctx), "cuCtxSetCurrent");
        t_current = _ctx;
    }

    private void SyncStream() => Driver.Check(Driver.cuStreamSynchronize(_stream), "cuStreamSynchronize");

    public override void Synchronize()
    {
        MakeCurrent();
        SyncStream();
    }

    // ---- memory ----------------------------------------------------------------------------------
    internal static CudaBuffer Cast(DeviceBuffer b) =>
        b as CudaBuffer ?? throw new ArgumentException($"cuda backend got a buffer of backend '{b.Backend.Name}'");

    private CudaBuffer Own(DeviceBuffer b)
    {
        var c = Cast(b);
        if (!ReferenceEquals(c.Backend, this)) throw new ArgumentException($"{Name} got a buffer of {c.Backend.Name}");
        if (c.Freed) throw new ObjectDisposedException(nameof(CudaBuffer), $"{Name}: buffer used after Free");
        return c;
    }

    /// <summary>An optional buffer (a gradient not needed, no bias): null goes to the kernel as 0.</summary>
    private DeviceBuffer? Opt(DeviceBuffer? b) => b is null ? null : Own(b);

    public override DeviceBuffer Allocate(long count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), $"{Name}: cannot allocate {count} floats");
        MakeCurrent();
        if (_dryRun is not null)
        {
            long bytes = DeviceAllocator.Bucket(count * sizeof(float));
            Interlocked.Add(ref _dryLiveBytes, bytes);
            return new CudaBuffer(this, (ulong)Interlocked.Add(ref _fakePtr, bytes), count, bytes);
        }
        ulong p = _alloc.Alloc(count * sizeof(float), out long bucket);
        return new CudaBuffer(this, p, count, bucket);
    }

    public override void Free(DeviceBuffer buffer)
    {
        var b = Own(buffer);
        b.Freed = true;
        lock (_gate)
        {
            if (_captureHeld is not null) { _captureHeld.Add(b); return; }   // a graph may use it
        }
        if (_dryRun is null) _alloc.Free(b.Ptr, b.CapacityBytes);
        else Interlocked.Add(ref _dryLiveBytes, -b.CapacityBytes);
    }

    internal void ReleaseHeld(CudaBuffer b) => _alloc.Free(b.Ptr, b.CapacityBytes);

    /// <summary>Returns all cached (free) device blocks to the driver.</summary>
    public void ReleaseCachedMemory()
    {
        MakeCurrent();
        _alloc.ReleaseCache();
    }

    public long CachedBytes => _alloc.CachedBytes;
    public long LiveBytes => _dryRun is null ? _alloc.LiveBytes : Interlocked.Read(ref _dryLiveBytes);
    /// <summary>cuMemAlloc calls so far (flat in steady state: the cache serves every request).</summary>
    public long DeviceAllocCount => _alloc.DeviceAllocs;

    private void NotCapturing(string what)
    {
        if (_captureHeld is not null)
            throw new InvalidOperationException($"{Name}: {what} is a synchronous host copy and cannot run during graph capture");
    }

    private static void CheckRange(CudaBuffer b, long offset, long count, string what)
    {
        if (offset < 0 || count < 0 || offset + count > b.Length)
            throw new ArgumentOutOfRangeException(what, $"{what}: [{offset}, {offset + count}) outside buffer of {b.Length} floats");
    }

    public override unsafe void CopyIn(DeviceBuffer dst, long dstOffset, ReadOnlySpan<float> src)
    {
        var d = Own(dst);
        CheckRange(d, dstOffset, src.Length, "CopyIn");
        NotCapturing("CopyIn");
        MakeCurrent();
        if (src.Length == 0) return;
        SyncStream();   // queued kernels may still read the destination
        fixed (float* p = src)
            Driver.Check(Driver.cuMemcpyHtoD(d.At(dstOffset), p, (nuint)(src.Length * sizeof(float))), "cuMemcpyHtoD_v2");
    }

    public override unsafe void CopyOut(DeviceBuffer src, long srcOffset, Span<float> dst)
    {
        var s = Own(src);
        CheckRange(s, srcOffset, dst.Length, "CopyOut");
        NotCapturing("CopyOut");
        MakeCurrent();
        SyncStream();   // wait for the kernels that produce it
        if (dst.Length == 0) return;
        fixed (float* p = dst)
            Driver.Check(Driver.cuMemcpyDtoH(p, s.At(srcOffset), (nuint)(dst.Length * sizeof(float))), "cuMemcpyDtoH_v2");
    }

    public override void Copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count)
    {
        var s = Own(src); var d = Own(dst);
        CheckRange(s, srcOffset, count, "Copy(src)");
        CheckRange(d, dstOffset, count, "Copy(dst)");
        if (count == 0) return;
        MakeCurrent();
        Driver.Check(Driver.cuMemcpyDtoDAsync(d.At(dstOffset), s.At(srcOffset), (nuint)(count * sizeof(float)), _stream),
            "cuMemcpyDtoDAsync_v2");
    }

    public override void Fill(DeviceBuffer x, long offset, long count, float value)
    {
        var b = Own(x);
        CheckRange(b, offset, count, "Fill");
        if (count == 0) return;
        MakeCurrent();
        Driver.Check(Driver.cuMemsetD32Async(b.At(offset), BitConverter.SingleToUInt32Bits(value), (nuint)count, _stream),
            "cuMemsetD32Async");
    }

    public override void Dispose()
    {
        if (_disposed) return;
        if (_dryRun is not null) { _disposed = true; base.Dispose(); return; }
        lock (SharedGate) { if (ReferenceEquals(_shared, this)) { _shared = null; } }
        try
        {
            Synchronize();
            foreach (var m in _modules.Values) Driver.cuModuleUnload(m);
            _modules.Clear(); _functions.Clear();
            _alloc.ReleaseCache();
            Driver.cuStreamDestroy(_stream);
            _stream = IntPtr.Zero;
            Driver.cuDevicePrimaryCtxRelease(_device);
        }
        finally
        {
            _disposed = true;
            t_current = IntPtr.Zero;
            base.Dispose();
        }
    }
}
