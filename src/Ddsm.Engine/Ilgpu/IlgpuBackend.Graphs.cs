using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Ddsm.Engine.Ilgpu;

// Step graphs (capture a step once, replay it): CUDA graphs on a GPU, a launch recorder on the CPU accelerator;
// device timing and memory info.
public sealed partial class IlgpuBackend
{
    public override string StepGraphKind =>
        IsCuda ? "CUDA graph" : _acc is CPUAccelerator ? "recorded launches" : base.StepGraphKind;

    /// <summary>
    /// On CUDA, the step captured into a graph; on the CPU accelerator, the step's stream work (each launch with
    /// its kernel, grid, group, argument struct and shared size; device copies and memsets) recorded without
    /// running, as CUDA capture does, and re-issued as recorded by each replay. Either way a replay sees only the
    /// arguments baked at capture, so a step that passes a per-step host value as an argument replays wrongly
    /// here too: graph safety, testable without a GPU. Host copies are refused and freed buffers held alike.
    /// </summary>
    protected override (Action Replay, Action? Release) CaptureCore(Action step)
    {
        if (IsCuda)
        {
            BeginCapture();
            try { step(); }
            catch
            {
                try { EndCapture().Dispose(); }
                catch (DeviceException) { /* the step's own error is the one to report */ }
                throw;
            }
            var graph = EndCapture();
            return (graph.Launch, graph.Dispose);
        }
        if (_acc is not CPUAccelerator) return base.CaptureCore(step);
        var recorded = new List<Action>();
        StartHolding();
        _recording = recorded;
        try { step(); }
        catch
        {
            _recording = null;
            ReleaseAll(StopHolding());
            throw;
        }
        _recording = null;
        var held = StopHolding();
        return (() =>
        {
            _acc.Bind();
            foreach (var op in recorded) op();
        }, () => ReleaseAll(held));
    }

    /// <summary>
    /// Runs stream work (a device copy, a memset) now, or records it while a step is being captured. The work is a
    /// static lambda over a state struct, so the common path (not recording) allocates nothing per call.
    /// </summary>
    private void RunOrRecord<TState>(TState state, Action<TState, AcceleratorStream> op)
    {
        if (_recording is { } recording)
        {
            var stream = _stream;
            recording.Add(() => op(state, stream));
        }
        else op(state, _stream);
    }

    private void StartHolding()
    {
        lock (_gate)
        {
            if (_captureHeld is not null) throw new InvalidOperationException($"{Name}: already capturing");
            _captureHeld = new List<IlgpuBuffer>();
        }
    }

    private List<IlgpuBuffer> StopHolding()
    {
        lock (_gate)
        {
            var held = _captureHeld ?? throw new InvalidOperationException($"{Name}: not capturing");
            _captureHeld = null;
            return held;
        }
    }

    /// <summary>
    /// Gives buffers a graph held back to the pool (no wait: the one stream orders their next use after the
    /// replays queued before).
    /// </summary>
    private void ReleaseAll(List<IlgpuBuffer> held)
    {
        foreach (var b in held) ReleaseHeld(b);
        held.Clear();
    }

    private CudaStream CudaStreamOrThrow(string what) =>
        _stream as CudaStream ?? throw new NotSupportedException($"{Name}: {what} needs a CUDA device");

    /// <summary>
    /// Starts recording this backend's launches into a CUDA graph (nothing runs until the graph is
    /// launched). Host copies are refused until <see cref="EndCapture"/>; buffers freed meanwhile are held
    /// by the graph, so its own temporaries stay valid across replays.
    /// </summary>
    public void BeginCapture()
    {
        var s = CudaStreamOrThrow("graph capture");
        _acc.Bind();
        StartHolding();
        DrainKernelTimes();
        int r = CudaDriver.cuStreamBeginCapture(s.StreamPtr, CudaDriver.StreamCaptureModeRelaxed);
        if (r != CudaDriver.Success)
        {
            StopHolding();
            CudaDriver.Check(r, "cuStreamBeginCapture_v2");
        }
    }

    public IlgpuGraph EndCapture()
    {
        var s = CudaStreamOrThrow("graph capture");
        _acc.Bind();
        var held = StopHolding();
        CudaDriver.Check(CudaDriver.cuStreamEndCapture(s.StreamPtr, out var graph), "cuStreamEndCapture");
        int r = CudaDriver.cuGraphInstantiateWithFlags(out var exec, graph, 0);
        if (r != CudaDriver.Success)
        {
            CudaDriver.cuGraphDestroy(graph);
            CudaDriver.Check(r, "cuGraphInstantiateWithFlags");
        }
        return new IlgpuGraph(this, graph, exec, held);
    }

    internal void LaunchGraph(IntPtr exec)
    {
        var s = CudaStreamOrThrow("graph launch");
        _acc.Bind();
        CudaDriver.Check(CudaDriver.cuGraphLaunch(exec, s.StreamPtr), "cuGraphLaunch");
    }

    internal void DestroyGraph(IntPtr graph, IntPtr exec)
    {
        Synchronize();
        CudaDriver.Check(CudaDriver.cuGraphExecDestroy(exec), "cuGraphExecDestroy");
        CudaDriver.Check(CudaDriver.cuGraphDestroy(graph), "cuGraphDestroy");
    }

    /// <summary>Device time of the work <paramref name="body"/> queues, in ms (stream markers around it).</summary>
    public double TimeMs(Action body)
    {
        _acc.Bind();
        using var a = _stream.AddProfilingMarker();
        body();
        using var b = _stream.AddProfilingMarker();
        b.Synchronize();
        return (b - a).TotalMilliseconds;
    }

    /// <summary>(free, total) accelerator memory in bytes (free is total minus the pool's use off CUDA).</summary>
    internal (long Free, long Total) MemoryInfo()
    {
        _acc.Bind();
        return _acc is CudaAccelerator c ? (c.GetFreeMemory(), _acc.MemorySize)
            : (_acc.MemorySize - LiveBytes - CachedBytes, _acc.MemorySize);
    }
}

/// <summary>
/// A captured, instantiated CUDA graph: the kernels queued between <see cref="IlgpuBackend.BeginCapture"/>
/// and <see cref="IlgpuBackend.EndCapture"/>, replayed by <see cref="Launch"/> with one driver call
/// instead of one per kernel. The graph holds raw device addresses: the buffers it used must stay alive
/// while it may be launched; buffers freed during capture are held (not reused by the pool) until it
/// is disposed.
/// </summary>
public sealed class IlgpuGraph : IDisposable
{
    private readonly IlgpuBackend _backend;
    private IntPtr _graph, _exec;
    private readonly List<IlgpuBuffer> _held;

    internal IlgpuGraph(IlgpuBackend backend, IntPtr graph, IntPtr exec, List<IlgpuBuffer> held)
    {
        _backend = backend; _graph = graph; _exec = exec; _held = held;
    }

    /// <summary>Queues one replay on the backend's stream (asynchronous, like any kernel).</summary>
    public void Launch()
    {
        ObjectDisposedException.ThrowIf(_exec == IntPtr.Zero, this);
        _backend.LaunchGraph(_exec);
    }

    internal int HeldBuffers => _held.Count;

    public void Dispose()
    {
        if (_exec == IntPtr.Zero) return;
        _backend.DestroyGraph(_graph, _exec);
        _exec = _graph = IntPtr.Zero;
        foreach (var b in _held) _backend.ReleaseHeld(b);
        _held.Clear();
    }
}
