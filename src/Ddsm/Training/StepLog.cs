using Ddsm.Kernels;

namespace Ddsm.Training;

/// <summary>
/// The per-step values a run logs, kept on the device until the host asks: one row per step of the pass losses
/// and the gradient norm (the guard's float pair), read in ONE transfer for all steps since the last read. The
/// row a step writes is read on the device from a counter that each write moves on and each read sets back to 0
/// (so a captured step writes the next row when replayed). The host side of each row (step, widths, rate) waits
/// here with it.
/// </summary>
public sealed class StepLog(Backend backend, int passes) : IDisposable
{
    private readonly int _row = passes + 2;
    private readonly List<(long Step, double[] Widths, float Lr)> _pending = [];
    private Tensor? _buffer;   // (capacity, passes + 2)
    private StepTable? _slot;  // rows 0, 1, … capacity − 1: the row the next write goes to

    /// <summary>Steps written since the last <see cref="Read"/>.</summary>
    public int Pending => _pending.Count;
    /// <summary>Steps the buffer holds before a read is due.</summary>
    public int Capacity => _buffer is null ? 0 : (int)(_buffer.Length / _row);

    /// <summary>
    /// Makes room for <paramref name="steps"/> unread steps (call between reads): true when the buffers were
    /// replaced (graphs that write them must go).
    /// </summary>
    public bool Reserve(int steps)
    {
        if (steps < 1) throw new ArgumentException($"the log must hold at least 1 step, got {steps}");
        if (_pending.Count > 0) throw new InvalidOperationException("step log: reserve with steps unread");
        if (steps <= Capacity) return false;
        _buffer?.Dispose();
        _slot?.Dispose();
        using (TensorScope.Suspend()) _buffer = Tensor.Empty(backend, steps, _row);
        _slot = new StepTable(backend, Enumerable.Range(0, steps).Select(r => (float)r).ToArray(), 1);
        return true;
    }

    /// <summary>The host side of the next step's row; throws when the log is full (before the step runs).</summary>
    public void Add(long step, double[] widths, float lr)
    {
        if (_pending.Count >= Capacity)
            throw new InvalidOperationException($"step log full ({Capacity} steps): read it before the next step");
        _pending.Add((step, widths, lr));
    }

    /// <summary>
    /// Device copies of the step's losses (passes) and of the norm in the guard into the counter's row, which moves
    /// on; no transfer, no host value.
    /// </summary>
    public void Write(Tensor losses, Tensor guard)
    {
        var slot = _slot![0];
        backend.CopyStep(losses.Buffer, 0, _buffer!.Buffer, 0, passes, slot, _row);
        backend.CopyStep(guard.Buffer, ClipGuard.NormHi, _buffer.Buffer, passes, 2, slot, _row);
        _slot.Advance();
    }

    /// <summary>
    /// Reads the unread steps (one copy out; none when nothing is pending): their results in order up to the first
    /// one whose loss or gradient norm is not finite, and that step's error (null when all are finite).
    /// </summary>
    public (StepResult[] Good, TrainingDivergedException? Diverged) Read()
    {
        if (_pending.Count == 0) return ([], null);
        var host = new float[_pending.Count * _row];
        backend.CopyOut(_buffer!.Buffer, 0, host);
        var good = new List<StepResult>();
        TrainingDivergedException? diverged = null;
        for (int s = 0; s < _pending.Count && diverged is null; s++)
        {
            var (step, widths, lr) = _pending[s];
            var row = host.AsSpan(s * _row, _row).ToArray();
            double norm = ClipGuard.Norm(row[passes], row[passes + 1]);
            for (int p = 0; p < passes && diverged is null; p++)
                if (!float.IsFinite(row[p]))
                    diverged = new TrainingDivergedException(step, $"loss is {row[p]} at width {widths[p]}");
            if (diverged is null && !double.IsFinite(norm))
                diverged = new TrainingDivergedException(step, $"gradient norm is {norm}");
            if (diverged is null)
                good.Add(new StepResult(step, widths.Select((w, p) => (w, (double)row[p])).ToArray(), norm, lr));
        }
        _pending.Clear();
        backend.Fill(_slot!.Buffer, 0, 1, 0f);   // the next write goes to row 0 (a device fill, no transfer)
        return (good.ToArray(), diverged);
    }

    public void Dispose()
    {
        _buffer?.Dispose();
        _slot?.Dispose();
    }
}
