using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

/// <summary>
/// The GPU backend: the kernels of kernels/ (C#, compiled by ILGPU) on an ILGPU accelerator. On an
/// NVIDIA GPU (<see cref="TryCuda"/>, <c>--device cuda</c>) ILGPU compiles them to PTX and the driver
/// JITs them for the card; on ILGPU's CPU accelerator (<see cref="CpuAccelerator"/>, <c>--device
/// ilgpu-cpu</c>) the same kernels run as .NET code with one OS thread per lane, which is how the
/// conformance suite checks them on machines without a GPU. One launch path for both.
/// <para>One stream (all work ordered, so the caching <see cref="BufferPool"/> needs no events),
/// asynchronous: kernels and copies in are queued; <see cref="CopyOut"/> and <see cref="Synchronize"/>
/// wait. Kernels load (compile) once per process at their first launch. The class is split by
/// kernel family over IlgpuBackend.*.cs.</para>
/// </summary>
public sealed partial class IlgpuBackend : Backend
{
    private readonly Context _context;
    private readonly Accelerator _acc;
    private readonly AcceleratorStream _stream;
    private readonly BufferPool _pool;
    private readonly object _gate = new();
    private readonly List<(string Kernel, ProfilingMarker Start, ProfilingMarker End)> _pendingTimes = new();
    private List<IlgpuBuffer>? _captureHeld;   // non-null while a step graph is being captured
    private List<Action>? _recording;           // non-null while the CPU accelerator records a step's stream work
    private bool _disposed;

    public override string Name { get; }
    /// <summary>The accelerator's own name ("NVIDIA H100 80GB HBM3", "CPUAccelerator").</summary>
    public string DeviceName => _acc.Name;
    public bool IsCuda => _acc is CudaAccelerator;
    internal Accelerator Accelerator => _acc;
    internal AcceleratorStream Stream => _stream;
    public int Multiprocessors => _acc.NumMultiprocessors;
    /// <summary>Dynamic shared memory a group may use (the opt-in maximum on CUDA).</summary>
    public int MaxSharedBytesPerGroup { get; }

    /// <summary>
    /// True (default): GEMM and convolutions use the exact FP32 SIMT kernels, which agree with the CPU
    /// oracle to float rounding. False: TF32 tensor cores with FP32 accumulation (≈1e-3 relative error,
    /// several times faster; for training and sampling on a GPU).
    /// </summary>
    public bool ExactFp32 { get; set; } = true;

    /// <summary>Threads per group of the kernels whose group size is free (grid-stride and row reductions): 256 on a
    /// GPU, two warps on the CPU accelerator.</summary>
    internal int FlexThreads { get; }

    private IlgpuBackend(Context context, Accelerator accelerator, string name)
    {
        _context = context;
        _acc = accelerator;
        Name = name;
        _acc.Bind();
        _stream = _acc.CreateStream();   // CUDA: a non-blocking stream (the legacy default stream cannot be captured)
        _pool = new BufferPool(_acc, () => _stream.Synchronize());
        // On the CPU accelerator every lane is an OS thread and each barrier or shuffle wakes all of a
        // group's: two warps (the fewest that still run the cross-warp step of Dev.BlockSum) make its
        // launches 4–10× cheaper than 256 threads (measured: ~30 vs ~300 ms for a two-pass Sum).
        FlexThreads = _acc is CPUAccelerator ? 2 * _acc.WarpSize : Math.Min(256, _acc.MaxNumThreadsPerGroup);
        _partials = _acc.Allocate1D<double>(ReducePartialsMax);
        MaxSharedBytesPerGroup = _acc is CudaAccelerator cuda ? SharedOptIn(cuda) : _acc.MaxSharedMemoryPerGroup;
    }

    private static int SharedOptIn(CudaAccelerator cuda)
    {
        CudaDriver.Check(
            CudaDriver.cuDeviceGetAttribute(out int v, CudaDriver.AttrMaxSharedMemoryPerBlockOptin, cuda.DeviceId),
            "cuDeviceGetAttribute(MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)");
        return v;
    }

    // ---- creation ------------------------------------------------------------------------------
    private static readonly object SharedGate = new();
    private static IlgpuBackend? _cuda, _cpu;
    private static string? _cudaFailure;

    /// <summary>
    /// The process-wide backend on CUDA device 0, created at the first call; null with the reason when
    /// there is no usable GPU here (no driver, no device, a device older than sm_80). Later calls
    /// return the same instance (or the same reason).
    /// </summary>
    public static IlgpuBackend? TryCuda(out string reason)
    {
        lock (SharedGate)
        {
            if (_cuda is null && _cudaFailure is null)
            {
                try { _cuda = CreateCuda(); }
                catch (DeviceException e) { _cudaFailure = e.Message; }
            }
            reason = _cudaFailure ?? "";
            return _cuda;
        }
    }

    private static IlgpuBackend CreateCuda()
    {
        if (CudaDriver.MissingReason() is { } missing) throw new DeviceException(missing);
        var context = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2).Profiling());
        try
        {
            var devices = context.GetCudaDevices();
            if (devices.Count == 0) throw new DeviceException("the CUDA driver is installed but reports no device");
            var dev = devices[0];
            if (dev.Architecture is not { } arch || arch.Major < 8)
                throw new DeviceException(
                    $"{dev.Name} is {dev.Architecture}; the kernels need sm_80 or newer (TF32 mma.sync)");
            return new IlgpuBackend(context, dev.CreateCudaAccelerator(context), $"cuda:{dev.DeviceId}");
        }
        catch (DeviceException) { context.Dispose(); throw; }
        catch (Exception e) when (e is CudaException or InvalidOperationException or NotSupportedException)
        {
            context.Dispose();
            throw new DeviceException($"CUDA device could not be opened: {e.Message}", e);
        }
    }

    /// <summary>
    /// The process-wide backend on ILGPU's CPU accelerator: warps of 32 lanes (the kernels' warp
    /// shuffles assume 32) and up to 256 threads per group, one OS thread per lane, kernel asserts and
    /// view bounds checks on. Slow by nature (a launch costs milliseconds to seconds); it exists to run
    /// the GPU kernels where there is no GPU.
    /// </summary>
    public static IlgpuBackend CpuAccelerator
    {
        get
        {
            lock (SharedGate)
            {
                if (_cpu is not null) return _cpu;
                var context = Context.Create(b =>
                    b.CPU().EnableAlgorithms().Optimize(OptimizationLevel.O2).Assertions().Profiling());
                var device = new CPUDevice(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8, numMultiprocessors: 1);
                return _cpu = new IlgpuBackend(context, device.CreateCPUAccelerator(context), "ilgpu-cpu");
            }
        }
    }

    // ---- memory --------------------------------------------------------------------------------
    internal IlgpuBuffer Own(DeviceBuffer b)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var c = b as IlgpuBuffer ?? throw new ArgumentException($"{Name} got a buffer of backend '{b.Backend.Name}'");
        if (!ReferenceEquals(c.Backend, this)) throw new ArgumentException($"{Name} got a buffer of {c.Backend.Name}");
        if (c.Freed) throw new ObjectDisposedException(nameof(IlgpuBuffer), $"{Name}: buffer used after Free");
        return c;
    }

    /// <summary>An optional buffer as a kernel argument: an empty view stands for "none".</summary>
    internal ArrayView<float> Opt(DeviceBuffer? b) => b is null ? default : Own(b).View;

    public override DeviceBuffer Allocate(long count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), $"{Name}: cannot allocate {count} floats");
        ObjectDisposedException.ThrowIf(_disposed, this);
        _acc.Bind();
        return new IlgpuBuffer(this, _pool.Rent(count), count);
    }

    public override void Free(DeviceBuffer buffer)
    {
        var b = Own(buffer);
        b.Freed = true;
        lock (_gate)
        {
            if (_captureHeld is not null) { _captureHeld.Add(b); return; }   // a graph may use it
        }
        _pool.Return(b.Memory);
    }

    internal void ReleaseHeld(IlgpuBuffer b) => _pool.Return(b.Memory);

    public long CachedBytes => _pool.CachedFloats * sizeof(float);
    public long LiveBytes => _pool.LiveFloats * sizeof(float);
    /// <summary>Allocations that reached the accelerator (flat in steady state: the pool serves the rest).</summary>
    internal long DeviceAllocCount => _pool.DeviceAllocations;

    private static void CheckRange(IlgpuBuffer b, long offset, long count, string what)
    {
        if (offset < 0 || count < 0 || offset + count > b.Length)
            throw new ArgumentOutOfRangeException(what,
                                                  $"{what}: [{offset}, {offset + count}) outside buffer of " +
                                                  $"{b.Length} floats");
    }

    private void NotCapturing(string what)
    {
        if (_captureHeld is not null)
            throw new InvalidOperationException($"{Name}: {what} is a host copy and cannot run during graph capture");
    }

    /// <summary>
    /// The buffer of a host copy of <paramref name="length"/> floats at <paramref name="offset"/>, its range
    /// checked, outside graph capture, the accelerator bound; null when there is nothing to copy.
    /// </summary>
    private IlgpuBuffer? HostCopy(DeviceBuffer buffer, long offset, int length, string what)
    {
        var b = Own(buffer);
        CheckRange(b, offset, length, what);
        NotCapturing(what);
        if (length == 0) return null;
        _acc.Bind();
        return b;
    }

    protected override void CopyInCore(DeviceBuffer dst, long dstOffset, ReadOnlySpan<float> src)
    {
        if (HostCopy(dst, dstOffset, src.Length, "CopyIn") is not { } d) return;
        // Stream-ordered after the kernels queued before it; pageable host memory is staged by the
        // driver before the call returns, so the caller may reuse src at once.
        d.Slice(dstOffset, src.Length).CopyFromCPU(_stream, src);
    }

    protected override void CopyOutCore(DeviceBuffer src, long srcOffset, Span<float> dst)
    {
        if (HostCopy(src, srcOffset, dst.Length, "CopyOut") is not { } s) return;
        s.Slice(srcOffset, dst.Length).CopyToCPU(_stream, dst);
        SynchronizeCore();   // part of the copy out (counted as one), not a sync of its own
    }

    public override void Copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count)
    {
        var s = Own(src); var d = Own(dst);
        CheckRange(s, srcOffset, count, "Copy(src)");
        CheckRange(d, dstOffset, count, "Copy(dst)");
        if (count == 0) return;
        _acc.Bind();
        RunOrRecord((From: s.Slice(srcOffset, count), To: d.Slice(dstOffset, count)),
                    static (v, stream) => v.From.CopyTo(stream, v.To));
    }

    protected override void SynchronizeCore()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _acc.Bind();
        _stream.Synchronize();
        DrainKernelTimes();
    }

    // ---- launches ------------------------------------------------------------------------------
    /// <summary>
    /// Groups for a grid-stride loop over <paramref name="n"/> items at <paramref name="threads"/> per group.
    /// </summary>
    internal int GridFor(long n, int threads)
    {
        long b = (n + threads - 1) / threads;
        return (int)Math.Clamp(b, 1, (long)_acc.NumMultiprocessors * 32);
    }

    internal static int Ceil(long n, int tile) => (int)((n + tile - 1) / tile);

    /// <summary>Queues one launch (and, while profiling, the markers that time it).</summary>
    internal void Launch<TArgs>(Launcher<TArgs> kernel, Index3D grid, int threads, in TArgs args, int sharedFloats = 0)
        where TArgs : struct
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0) return;   // empty problem
        int sharedBytes = sharedFloats * sizeof(float);
        if (sharedBytes > MaxSharedBytesPerGroup)
            throw new DeviceException($"{kernel.Entry.Name} needs {sharedBytes} B of shared memory; {DeviceName} " +
                                      $"allows {MaxSharedBytesPerGroup}");
        _acc.Bind();
        var fn = kernel.Loaded(this, sharedBytes);
        var cfg = sharedFloats > 0
            ? new KernelConfig(grid, new Index3D(threads, 1, 1), SharedMemoryConfig.RequestDynamic<float>(sharedFloats))
            : new KernelConfig(grid, new Index3D(threads, 1, 1));
        if (_recording is { } recording)   // a step being captured on the CPU accelerator: record, do not run
        {
            kernel.Count();
            var (stream, recorded) = (_stream, args);
            recording.Add(() => fn(stream, cfg, recorded));
            return;
        }
        bool timed = Profiler.Enabled && _captureHeld is null;
        var start = timed ? _stream.AddProfilingMarker() : null;
        kernel.Count();
        try { fn(_stream, cfg, args); }
        catch (Exception e) when (e is not DeviceException)
        {
            start?.Dispose();
            throw new DeviceException($"{Name}: launch of {kernel.Entry.Name} (grid {grid}, {threads} threads, " +
                                      $"{sharedBytes} B shared) failed: {e.Message}", e);
        }
        if (start is not null)
            lock (_gate) _pendingTimes.Add((kernel.Entry.Name, start, _stream.AddProfilingMarker()));
    }

    /// <summary>
    /// Hands the timed launches since the last call to the profiler's kernel table (after a synchronise).
    /// </summary>
    private void DrainKernelTimes()
    {
        List<(string, ProfilingMarker, ProfilingMarker)> done;
        lock (_gate)
        {
            if (_pendingTimes.Count == 0) return;
            done = [.. _pendingTimes];
            _pendingTimes.Clear();
        }
        foreach (var (name, a, b) in done)
        {
            Profiler.AddKernel(name, (b - a).TotalMilliseconds);
            a.Dispose();
            b.Dispose();
        }
    }

    /// <summary>Raises a CUDA function's dynamic shared-memory limit above the default 48 KB (once).</summary>
    internal void AllowLargeShared(Kernel kernel, string name)
    {
        if (kernel is not CudaKernel ck) return;
        CudaDriver.Check(CudaDriver.cuFuncSetAttribute(ck.FunctionPtr, CudaDriver.FuncAttrMaxDynamicSharedSizeBytes,
            MaxSharedBytesPerGroup), $"cuFuncSetAttribute({name}, MAX_DYNAMIC_SHARED_SIZE_BYTES)");
    }

    private readonly Dictionary<string, ILauncher> _launchers = new();

    /// <summary>
    /// The launcher of catalog kernel <paramref name="name"/> (one per backend: it holds the loaded kernel).
    /// </summary>
    internal Launcher<TArgs> K<TArgs>(string name) where TArgs : struct
    {
        lock (_launchers)
        {
            if (_launchers.TryGetValue(name, out var l)) return (Launcher<TArgs>)l;
            var made = new Launcher<TArgs>(KernelCatalog.Get(name));
            _launchers[name] = made;
            return made;
        }
    }

    /// <summary>Launches per catalog kernel so far (kernels never launched are absent).</summary>
    internal IReadOnlyDictionary<string, long> LaunchCounts
    {
        get
        {
            lock (_launchers)
                return _launchers.Values.Where(l => l.Launches > 0).ToDictionary(l => l.Entry.Name, l => l.Launches);
        }
    }

    public override void Dispose()
    {
        if (_disposed) return;
        lock (SharedGate)
        {
            if (ReferenceEquals(_cuda, this)) _cuda = null;
            if (ReferenceEquals(_cpu, this)) _cpu = null;
        }
        try
        {
            Synchronize();
            _pool.Release();
            _partials.Dispose();
            _stream.Dispose();
            _acc.Dispose();
            _context.Dispose();
        }
        finally
        {
            _disposed = true;
            base.Dispose();
        }
    }
}
