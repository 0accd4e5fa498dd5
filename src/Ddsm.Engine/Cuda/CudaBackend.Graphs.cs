namespace Ddsm.Engine.Cuda;

// CUDA graphs (capture a step once, replay it with one call), event timing and memory info.
public sealed partial class CudaBackend
{
    // ---- graphs and timing -----------------------------------------------------------------------
    /// <summary>Starts recording this thread's launches on the stream into a graph (nothing runs until
    /// the graph is launched). CopyIn/CopyOut are not allowed until <see cref="EndCapture"/>.</summary>
    public void BeginCapture()
    {
        MakeCurrent();
        lock (_gate)
        {
            if (_captureHeld is not null) throw new InvalidOperationException($"{Name}: already capturing");
            _captureHeld = new List<CudaBuffer>();
        }
        int r = Driver.cuStreamBeginCapture(_stream, Driver.StreamCaptureModeRelaxed);
        if (r != Driver.Success) { lock (_gate) _captureHeld = null; throw Driver.Error(r, "cuStreamBeginCapture_v2"); }
    }

    public CudaGraph EndCapture()
    {
        MakeCurrent();
        List<CudaBuffer> held;
        lock (_gate)
        {
            held = _captureHeld ?? throw new InvalidOperationException($"{Name}: EndCapture without BeginCapture");
            _captureHeld = null;
        }
        Driver.Check(Driver.cuStreamEndCapture(_stream, out var graph), "cuStreamEndCapture");
        int r = Driver.cuGraphInstantiateWithFlags(out var exec, graph, 0);
        if (r != Driver.Success) { Driver.cuGraphDestroy(graph); throw Driver.Error(r, "cuGraphInstantiateWithFlags"); }
        return new CudaGraph(this, graph, exec, held);
    }

    internal void LaunchGraph(IntPtr exec)
    {
        MakeCurrent();
        Driver.Check(Driver.cuGraphLaunch(exec, _stream), "cuGraphLaunch");
    }

    /// <summary>Device time of the work <paramref name="body"/> queues, in ms (CUDA events around it).</summary>
    public float TimeMs(Action body)
    {
        MakeCurrent();
        Driver.Check(Driver.cuEventCreate(out var a, 0), "cuEventCreate");
        Driver.Check(Driver.cuEventCreate(out var b, 0), "cuEventCreate");
        try
        {
            Driver.Check(Driver.cuEventRecord(a, _stream), "cuEventRecord");
            body();
            MakeCurrent();
            Driver.Check(Driver.cuEventRecord(b, _stream), "cuEventRecord");
            Driver.Check(Driver.cuEventSynchronize(b), "cuEventSynchronize");
            Driver.Check(Driver.cuEventElapsedTime(out float ms, a, b), "cuEventElapsedTime");
            return ms;
        }
        finally
        {
            Driver.cuEventDestroy(a);
            Driver.cuEventDestroy(b);
        }
    }

    /// <summary>(free, total) device memory in bytes.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        Driver.Check(Driver.cuMemGetInfo(out nuint free, out nuint total), "cuMemGetInfo_v2");
        return ((long)free, (long)total);
    }
}
