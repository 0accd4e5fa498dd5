
namespace Ddsm.Engine;

/// <summary>
/// Disposes every tensor created on this thread while it is the innermost scope, except those
/// moved out with <see cref="Escape"/>. Autograd nodes recorded inside the scope are dropped with it,
/// so a forgotten backward cannot leak the tape. Typical use: one scope per training or sampling step.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? _current;
    [ThreadStatic] private static int _suspended;

    private readonly List<Tensor> _owned = new();
    private readonly TensorScope? _parent;
    private readonly int _tapeMark;
    private bool _disposed;

    public TensorScope()
    {
        _parent = _current;
        _current = this;
        _tapeMark = Tape.Count;
    }

    internal static void Register(Tensor t)
    {
        if (_suspended == 0) _current?._owned.Add(t);
    }

    /// <summary>Moves <paramref name="t"/> to the enclosing scope (or to nobody) and returns it.</summary>
    public static Tensor Escape(Tensor t)
    {
        var cur = _current;
        if (cur is null) return t;
        int i = cur._owned.LastIndexOf(t);
        if (i >= 0) cur._owned.RemoveAt(i);
        cur._parent?._owned.Add(t);
        return t;
    }

    /// <summary>Within the returned handle, new tensors belong to no scope (parameters, state, grads).</summary>
    public static SuspendHandle Suspend()
    {
        _suspended++;
        return new SuspendHandle();
    }

    public readonly struct SuspendHandle : IDisposable
    {
        public void Dispose() => _suspended--;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_current != this) throw new InvalidOperationException("TensorScope disposed out of order");
        _current = _parent;
        Tape.Truncate(_tapeMark);
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
    }
}
