using Ddsm.Kernels;

namespace Ddsm.Training;

/// <summary>
/// The per-step values a run logs, kept on the device until the host asks: one row per step of the pass losses
/// and the gradient norm (the guard's float pair), read in ONE transfer for all steps since the last read. The
/// host side of each row (step, widths, rate) waits here with it.
/// </summary>
public sealed class StepLog(Backend backend, int passes) : IDisposable
{
    private readonly int _row = passes + 2;
    private readonly List<(long Step, double[] Widths, float Lr)> _pending = [];
    private Tensor? _buffer;   // (capacity, passes + 2)

    /// <summary>Steps written since the last <see cref="Read"/>.</summary>
    public int Pending => _pending.Count;
    /// <summary>Steps the buffer holds before a read is due.</summary>
    public int Capacity => _buffer is null ? 0 : (int)(_buffer.Length / _row);

    /// <summary>Makes room for <paramref name="steps"/> unread steps (call between reads).</summary>
    public void Reserve(int steps)
    {
        if (steps < 1) throw new ArgumentException($"the log must hold at least 1 step, got {steps}");
        if (_pending.Count > 0) throw new InvalidOperationException("step log: reserve with steps unread");
        if (steps <= Capacity) return;
        _buffer?.Dispose();
        using (TensorScope.Suspend()) _buffer = Tensor.Empty(backend, steps, _row);
    }

    /// <summary>Device copies of the step's losses (passes) and of the norm in the guard; no transfer.</summary>
    public void Write(long step, double[] widths, float lr, Tensor losses, Tensor guard)
    {
        if (_pending.Count >= Capacity)
            throw new InvalidOperationException($"step log full ({Capacity} steps): read it before the next step");
        long at = (long)_pending.Count * _row;
        backend.Copy(losses.Buffer, 0, _buffer!.Buffer, at, passes);
        backend.Copy(guard.Buffer, ClipGuard.NormHi, _buffer.Buffer, at + passes, 2);
        _pending.Add((step, widths, lr));
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
        return (good.ToArray(), diverged);
    }

    public void Dispose() => _buffer?.Dispose();
}
