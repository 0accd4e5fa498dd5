namespace Ddsm.Engine;

/// <summary>
/// One step of a loop, captured once by <see cref="Backend.CaptureStep"/> and replayed for every step of the same
/// shape: on CUDA a graph (one driver call per step instead of one per kernel), on ILGPU's CPU accelerator the
/// recorded launches re-issued (the same baked arguments: how graph safety is tested without a GPU), elsewhere
/// the step simply run again. Whatever must differ between replays is read from device memory
/// (<see cref="StepTable"/>); the buffers the step reads and writes must outlive the graph.
/// </summary>
public sealed class StepGraph : IDisposable
{
    private readonly Backend _backend;
    private readonly Action _replay;
    private Action? _release;
    private bool _disposed;

    internal StepGraph(Backend backend, Action replay, Action? release)
    {
        (_backend, _replay, _release) = (backend, replay, release);
    }

    /// <summary>Queues the step once more (asynchronous on a device, like any kernel).</summary>
    public void Replay()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _backend.CountReplay();
        _replay();
    }

    /// <summary>Releases the graph and the temporaries it held.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _release?.Invoke();
        _release = null;
    }
}

/// <summary>Step graphs a backend captured and replayed so far (subtract two to get a run's).</summary>
public readonly record struct StepGraphCounts(long Captured, long Replayed)
{
    public static StepGraphCounts operator -(StepGraphCounts a, StepGraphCounts b) =>
        new(a.Captured - b.Captured, a.Replayed - b.Replayed);

    public static StepGraphCounts operator +(StepGraphCounts a, StepGraphCounts b) =>
        new(a.Captured + b.Captured, a.Replayed + b.Replayed);

    public override string ToString() => $"{Captured} captured, {Replayed} replayed";
}
