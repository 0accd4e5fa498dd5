namespace Ddsm.Engine;

/// <summary>
/// The step graphs of a loop, one per key (a step's shape, the width of a training pass): a key's first occurrence
/// runs as it is (it may load kernels or create lasting buffers, which a capture refuses or would hold), its second
/// is captured (<see cref="Backend.CaptureStep"/>) and replayed, every later one only replays. Disabled, every
/// occurrence runs as it is (the reference). The body must take nothing that changes between occurrences of its key
/// as a kernel argument: what does is read from device memory (<see cref="StepTable"/>).
/// </summary>
public sealed class StepGraphCache(Backend backend, bool enabled) : IDisposable
{
    private readonly Dictionary<string, StepGraph?> _byKey = new();

    public bool Enabled => enabled;

    /// <summary>Runs, captures or replays <paramref name="body"/> as the key's occurrence count says.</summary>
    public void Run(string key, Action body)
    {
        if (!enabled) { body(); return; }
        if (!_byKey.TryGetValue(key, out var graph))
        {
            _byKey[key] = null;
            body();
            return;
        }
        graph ??= _byKey[key] = backend.CaptureStep(body);
        graph.Replay();
    }

    /// <summary>Forgets every graph (they baked buffers or arguments that changed): keys start over.</summary>
    public void Clear()
    {
        foreach (var g in _byKey.Values) g?.Dispose();
        _byKey.Clear();
    }

    public void Dispose() => Clear();
}
