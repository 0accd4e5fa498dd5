namespace Ddsm.Engine.Optim;

/// <summary>
/// Exponential moving average of parameters (the weights diffusion models are sampled with):
/// shadow = decay·shadow + (1−decay)·p after each optimiser step. The shadows start as copies of the
/// parameters and live outside any scope until <see cref="Dispose"/>.
/// </summary>
public sealed class Ema : IDisposable
{
    private readonly Tensor[] _params;
    private readonly Tensor[] _shadow;
    private Tensor[]? _backup; // live weights while the shadows are swapped in; made on first swap
    private bool _swapped;

    public Ema(IReadOnlyList<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        _params = parameters.ToArray();
        using (TensorScope.Suspend())
            _shadow = _params.Select(p =>
            {
                var s = p.Clone();
                s.Name = p.Name; // checkpoints store shadows under the parameter's own name
                return s;
            }).ToArray();
    }

    /// <summary>Shadow tensors, index-aligned with the parameters (for checkpoints: load into them in place).</summary>
    public IReadOnlyList<Tensor> Shadow => _shadow;
    public IReadOnlyList<Tensor> Parameters => _params;

    /// <summary>shadow = decay·shadow + (1−decay)·p for every parameter.</summary>
    public void Update(float decay)
    {
        if (!(decay >= 0f && decay <= 1f)) throw new ArgumentException($"ema: decay must be in [0, 1], got {decay}");
        Update((be, p, s, n) => be.Axpby(p, s, n, 1f - decay, decay));
    }

    /// <summary>
    /// shadow = β·shadow + α·p with α = 1 − decay and β = decay read on the device (a step table's columns), so a
    /// captured training step applies the next step's decay when replayed.
    /// </summary>
    public void Update(StepScalar alpha, StepScalar beta) =>
        Update((be, p, s, n) => be.AxpbyStep(p, s, n, alpha, beta));

    private void Update(Action<Backend, DeviceBuffer, DeviceBuffer, long> axpby)
    {
        // Averaging the shadows into themselves would silently stall the average.
        if (_swapped) throw new InvalidOperationException("ema: Update while the averaged weights are swapped in");
        if (_params.Length == 0) return;
        long total = 0;
        foreach (var p in _params) total += p.Length;
        var be = _params[0].Backend;
        using (Profiler.Op("ema", 3 * total, be))
            for (int i = 0; i < _params.Length; i++)
                axpby(_params[i].Backend, _params[i].Buffer, _shadow[i].Buffer, _params[i].Length);
    }

    /// <summary>Overwrites <paramref name="targets"/> (same count, shapes and device) with the shadows.</summary>
    public void CopyTo(IReadOnlyList<Tensor> targets)
    {
        CheckTargets("ema.copy_to", targets);
        for (int i = 0; i < _shadow.Length; i++) targets[i].CopyFrom(_shadow[i]);
    }

    /// <summary>
    /// Puts the averaged weights into the live parameters until the returned handle is disposed, which
    /// restores the live weights: <c>using (ema.SwapIn()) Sample(model);</c>. Done by copying rather
    /// than by exchanging storages so that anything holding the parameters' device addresses (CUDA
    /// graphs) stays valid; the backup is allocated once and reused.
    /// </summary>
    public SwapHandle SwapIn()
    {
        if (_swapped)
            throw new InvalidOperationException("ema: already swapped in (nested SwapIn would lose the live weights)");
        if (_backup is null)
            using (TensorScope.Suspend())
                _backup = _params.Select(p => Tensor.Empty(p.Backend, p.Shape)).ToArray();
        for (int i = 0; i < _params.Length; i++)
        {
            _backup[i].CopyFrom(_params[i]);
            _params[i].CopyFrom(_shadow[i]);
        }
        _swapped = true;
        return new SwapHandle(this);
    }

    public readonly struct SwapHandle(Ema owner) : IDisposable
    {
        public void Dispose()
        {
            if (owner is null || !owner._swapped) return; // default handle, or disposed twice
            owner._swapped = false;
            var b = owner._backup!;
            for (int i = 0; i < owner._params.Length; i++) owner._params[i].CopyFrom(b[i]);
        }
    }

    private void CheckTargets(string op, IReadOnlyList<Tensor> targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.Count != _shadow.Length)
            throw new ArgumentException($"{op}: {targets.Count} tensors for {_shadow.Length} shadows");
        for (int i = 0; i < _shadow.Length; i++)
        {
            var t = targets[i];
            if (t.Backend != _shadow[i].Backend)
                throw new ArgumentException(
                    $"{op}: tensors on different devices: {_shadow[i].Describe()} and {t.Describe()}");
            if (!t.Shape.AsSpan().SequenceEqual(_shadow[i].Shape))
                throw new ArgumentException(
                    $"{op}: shape mismatch {ShapeUtil.Str(_shadow[i].Shape)} vs {ShapeUtil.Str(t.Shape)} at index {i}");
        }
    }

    public void Dispose()
    {
        foreach (var s in _shadow) s.Dispose();
        if (_backup is not null) foreach (var b in _backup) b.Dispose();
        _backup = null;
    }
}
