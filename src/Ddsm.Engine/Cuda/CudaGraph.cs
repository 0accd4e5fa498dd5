namespace Ddsm.Engine.Cuda;

/// <summary>
/// A captured, instantiated CUDA graph: the kernels queued between <see cref="CudaBackend.BeginCapture"/>
/// and <see cref="CudaBackend.EndCapture"/>, replayed by <see cref="Launch"/> with one driver call
/// instead of one per kernel (a sampling step at one width is a few hundred small launches).
/// The graph holds raw device addresses: the buffers it used must stay alive and keep their contents'
/// meaning while it may be launched. Buffers freed during capture are held by the graph (not reused
/// by the allocator) until it is disposed, so its own temporaries stay valid across replays.
/// </summary>
public sealed class CudaGraph : IDisposable
{
    private readonly CudaBackend _backend;
    private IntPtr _graph, _exec;
    private readonly List<CudaBuffer> _held;

    internal CudaGraph(CudaBackend backend, IntPtr graph, IntPtr exec, List<CudaBuffer> held)
    {
        _backend = backend; _graph = graph; _exec = exec; _held = held;
    }

    /// <summary>Queues one replay on the backend's stream (asynchronous, like any kernel).</summary>
    public void Launch()
    {
        ObjectDisposedException.ThrowIf(_exec == IntPtr.Zero, this);
        _backend.LaunchGraph(_exec);
    }

    public int HeldBuffers => _held.Count;

    public void Dispose()
    {
        if (_exec == IntPtr.Zero) return;
        _backend.Synchronize();
        _backend.MakeCurrent();
        Driver.Check(Driver.cuGraphExecDestroy(_exec), "cuGraphExecDestroy");
        Driver.Check(Driver.cuGraphDestroy(_graph), "cuGraphDestroy");
        _exec = _graph = IntPtr.Zero;
        foreach (var b in _held) _backend.ReleaseHeld(b);
        _held.Clear();
    }
}
