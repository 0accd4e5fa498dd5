using Ddsm.Kernels;

namespace Ddsm.Engine.Optim;

/// <summary>
/// Adam hyper-parameters. <paramref name="WeightDecay"/> &gt; 0 gives AdamW (decoupled: p −= lr·wd·p,
/// not added to the gradient). <paramref name="ClipNorm"/> clips the global gradient norm over all
/// parameters; <paramref name="WarmupSteps"/> ramps the rate linearly (see <see cref="LrSchedule.LinearWarmup"/>).
/// </summary>
public sealed record AdamOptions(
    float Lr = 1e-4f, float Beta1 = 0.9f, float Beta2 = 0.999f, float Eps = 1e-8f,
    float WeightDecay = 0f, float? ClipNorm = null, int WarmupSteps = 0)
{
    internal void Validate()
    {
        static void Need(bool ok, string what) { if (!ok) throw new ArgumentException($"adam: {what}"); }
        Need(float.IsFinite(Lr) && Lr >= 0f, $"Lr must be finite and ≥ 0, got {Lr}");
        Need(Beta1 >= 0f && Beta1 < 1f, $"Beta1 must be in [0, 1), got {Beta1}");
        Need(Beta2 >= 0f && Beta2 < 1f, $"Beta2 must be in [0, 1), got {Beta2}");
        Need(float.IsFinite(Eps) && Eps > 0f, $"Eps must be finite and > 0, got {Eps}");
        Need(float.IsFinite(WeightDecay) && WeightDecay >= 0f,
             $"WeightDecay must be finite and ≥ 0, got {WeightDecay}");
        Need(ClipNorm is null || (float.IsFinite(ClipNorm.Value) && ClipNorm.Value > 0f),
             $"ClipNorm must be null or finite and > 0, got {ClipNorm}");
        Need(WarmupSteps >= 0, $"WarmupSteps must be ≥ 0, got {WarmupSteps}");
    }
}

/// <summary>What one <see cref="Adam.Step"/> did: the update number (1-based), the global gradient
/// norm before clipping, the rate used, and the factor the gradients were scaled by (1 = no clipping).</summary>
public readonly record struct StepInfo(long Step, double GradNorm, float Lr, float GradScale);

/// <summary>
/// Adam / AdamW with global gradient-norm clipping and linear warm-up.
/// <para>Per step: one Σg² reduction per parameter, gathered on the device into one small buffer; the
/// device guard (<see cref="ClipGuard"/>) turns it into the global norm, the clip scale and a non-finite flag,
/// and the update kernel reads the scale from there (no extra pass over the gradients, no read needed).
/// <see cref="Step()"/> then reads the norms and the guard in one transfer; <see cref="StepOnDevice"/> (the
/// trainer's) reads nothing, the caller reads the guard when it logs. Moments and scratch are created once,
/// outside any scope, on first use: steady-state steps allocate no device memory.</para>
/// <para><b>Non-finite gradients:</b> the guarded update moves no parameter or moment. <see cref="Step()"/>
/// throws <see cref="InvalidOperationException"/> naming the parameters whose gradients hold NaN/Inf, without
/// advancing <see cref="StepCount"/>; after <see cref="StepOnDevice"/> the flag stays set, so no later step moves
/// anything either. Training stops there; the state is still that of the last good step, so a checkpoint
/// written afterwards is clean.</para>
/// </summary>
public sealed class Adam : IDisposable
{
    private readonly Tensor[] _params;
    private readonly Backend _backend;
    private AdamOptions _options;
    private Tensor[]? _m, _v;            // per parameter, same shape
    private Tensor? _sq;                 // (1) Σg² of one parameter
    private Tensor? _guard;              // (ClipGuard.Length) norm, clip scale, sticky diverged flag
    private Tensor? _sqAll;              // (P + extra) Σg² per parameter, then the caller's values: one read-back
    private float[]? _sqHost;            // (P + extra)
    private (Tensor Param, Tensor M, Tensor V)[]? _state;

    public Adam(IReadOnlyList<Tensor> parameters, AdamOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Count == 0) throw new ArgumentException("adam: no parameters");
        _params = parameters.ToArray();
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var p in _params)
        {
            if (p is null) throw new ArgumentException("adam: a parameter is null");
            if (!seen.Add(p)) throw new ArgumentException($"adam: parameter {p.Describe()} is listed twice");
            if (p.Backend != _params[0].Backend)
                throw new ArgumentException($"adam: parameters on different devices: {_params[0].Describe()} and " +
                                            $"{p.Describe()} (the global norm is taken on one device)");
        }
        _backend = _params[0].Backend;
        _options = options ?? new AdamOptions();
        _options.Validate();
    }

    /// <summary>Hyper-parameters; may be replaced between steps (e.g. to change the rate).</summary>
    public AdamOptions Options
    {
        get => _options;
        set { ArgumentNullException.ThrowIfNull(value); value.Validate(); _options = value; }
    }

    public IReadOnlyList<Tensor> Parameters => _params;

    /// <summary>Updates taken so far (drives bias correction and warm-up); set it when resuming.</summary>
    public long StepCount { get; set; }

    /// <summary>
    /// (parameter, first moment, second moment) per parameter, for checkpoints. Creates zero moments
    /// if no step has run yet, so a checkpoint loader can fill them in place before the first step.
    /// </summary>
    public IReadOnlyList<(Tensor Param, Tensor M, Tensor V)> State
    {
        get { EnsureState(); return _state!; }
    }

    /// <summary>Creates the moments (zeros) and scratch if they do not exist yet; idempotent.</summary>
    public void EnsureState()
    {
        if (_state is not null) return;
        using (TensorScope.Suspend())
        {
            _m = _params.Select(p => Named(Tensor.Zeros(_backend, p.Shape), p, "adam_m")).ToArray();
            _v = _params.Select(p => Named(Tensor.Zeros(_backend, p.Shape), p, "adam_v")).ToArray();
            _sq = Tensor.Zeros(_backend, 1);
            _guard = Tensor.Zeros(_backend, ClipGuard.Length);
        }
        ReadBuffer(0);
        _state = _params.Select((p, i) => (p, _m[i], _v[i])).ToArray();
    }

    /// <summary>
    /// Makes the read-back buffer hold the P norms, <paramref name="extra"/> checked values and a copy of the guard.
    /// </summary>
    private void ReadBuffer(int extra)
    {
        int want = _params.Length + extra + ClipGuard.Length;
        if (_sqAll is not null && _sqAll.Length == want) return;
        _sqAll?.Dispose();
        using (TensorScope.Suspend()) _sqAll = Tensor.Zeros(_backend, want);
        _sqHost = new float[want];
    }

    private static Tensor Named(Tensor t, Tensor p, string what)
    {
        t.Name = $"{p.Name ?? "param"}.{what}";
        return t;
    }

    /// <summary>Zeroes every parameter's gradient (keeps the buffers).</summary>
    public void ZeroGrad()
    {
        foreach (var p in _params) p.ZeroGrad();
    }

    /// <summary>
    /// One update of every parameter that has a gradient (those without are skipped), reading the gradient norms
    /// and the guard back (one transfer): a non-finite gradient throws, naming the parameters, with nothing moved.
    /// </summary>
    public StepInfo Step()
    {
        var (t, lr) = Launch(null);
        int p = _params.Length;
        _backend.Copy(_guard!.Buffer, 0, _sqAll!.Buffer, p, ClipGuard.Length);
        _backend.CopyOut(_sqAll.Buffer, 0, _sqHost);
        double s = 0;
        for (int i = 0; i < p; i++)
            if (_params[i].Grad is not null) s += _sqHost![i];
        double norm = Math.Sqrt(s);
        if (_sqHost![p + ClipGuard.Diverged] != 0f)
        {
            _backend.Fill(_guard.Buffer, ClipGuard.Diverged, 1, 0f);   // this caller stops on the throw, not the flag
            throw new InvalidOperationException(
                $"adam: gradient norm is {norm} at step {t}; non-finite gradients in: " +
                $"{string.Join(", ", NonFiniteNames())}. No parameter was updated (the state is that of the last " +
                $"good step).");
        }
        StepCount = t;
        return new StepInfo(t, norm, lr, _sqHost[p + ClipGuard.Scale]);
    }

    /// <summary>
    /// The device guard (<see cref="ClipGuard"/>'s layout): the last step's gradient norm and clip scale, and the
    /// sticky flag <see cref="StepOnDevice"/> sets at the first non-finite step; from then on no update moves
    /// anything.
    /// </summary>
    public Tensor Guard { get { EnsureState(); return _guard!; } }

    /// <summary>
    /// One update with no read: the norm, the clip scale and the non-finite check (of the gradients and of
    /// <paramref name="check"/>, e.g. the step's losses) happen on the device, into <see cref="Guard"/>; a step at
    /// or after a non-finite one moves nothing. <see cref="StepCount"/> advances (the caller reads the guard
    /// when it logs and stops the run at the first diverged step).
    /// </summary>
    public (long Step, float Lr) StepOnDevice(Tensor? check)
    {
        var r = Launch(check);
        StepCount = r.T;
        return r;
    }

    /// <summary>
    /// <see cref="StepOnDevice"/> with the rate and the bias corrections 1 − β1^t, 1 − β2^t read on the device, at
    /// <paramref name="lr"/> and the two columns after it (a step table's), so that a captured training step
    /// replays the next update. The launches do not depend on <see cref="StepCount"/>, which this leaves alone: the
    /// caller advances it with the step (a replay runs no host code).
    /// </summary>
    public void StepOnDevice(Tensor? check, StepScalar lr) => Launch(check, lr);

    /// <summary>Σg² per parameter, the guard, then the guarded update of every parameter with a gradient.</summary>
    private (long T, float Lr) Launch(Tensor? check, StepScalar? lrAt = null)
    {
        EnsureState();
        var o = _options;
        var be = _backend;
        int p = _params.Length, extra = check is null ? 0 : checked((int)check.Length);
        ReadBuffer(extra);
        long total = 0;
        foreach (var q in _params) if (q.Grad is not null) total += q.Length;
        using (Profiler.Op("adam.grad_norm", 2 * total, be))
        {
            for (int i = 0; i < p; i++)
            {
                var g = _params[i].Grad;
                if (g is null) be.Fill(_sqAll!.Buffer, i, 1, 0f);
                else
                {
                    be.SumSquares(g.Buffer, g.Length, _sq!.Buffer);
                    be.Copy(_sq.Buffer, 0, _sqAll!.Buffer, i, 1);
                }
            }
            if (check is not null) be.Copy(check.Buffer, 0, _sqAll!.Buffer, p, extra);
            be.GradientGuard(_sqAll!.Buffer, p, p + extra, _guard!.Buffer, o.ClipNorm ?? 0f);
        }
        long t = StepCount + 1;
        float lr = LrSchedule.LinearWarmup(t, o.WarmupSteps, o.Lr);
        var h = new AdamHyper(lr, o.Beta1, o.Beta2, o.Eps, o.WeightDecay,
            BiasCorrection1: (float)(1 - Math.Pow(o.Beta1, t)),
            BiasCorrection2: (float)(1 - Math.Pow(o.Beta2, t)),
            GradScale: 1f);
        // ≈ 14 FLOPs per element (two moment updates, bias corrections, sqrt, divide, decay).
        using (Profiler.Op("adam", 14 * total, be))
            for (int i = 0; i < p; i++)
            {
                var q = _params[i];
                if (q.Grad is null) continue;
                if (lrAt is { } at)
                    be.AdamStep(q.Buffer, q.Grad.Buffer, _m![i].Buffer, _v![i].Buffer, q.Length, h, _guard.Buffer, at);
                else be.AdamStep(q.Buffer, q.Grad.Buffer, _m![i].Buffer, _v![i].Buffer, q.Length, h, _guard.Buffer);
            }
        return (t, lr);
    }

    private IEnumerable<string> NonFiniteNames()
    {
        for (int i = 0; i < _params.Length; i++)
            if (_params[i].Grad is not null && !float.IsFinite(_sqHost![i]))
                yield return _params[i].Describe() + (float.IsNaN(_sqHost[i]) ? " (NaN)" : " (Inf or overflow)");
    }

    public void Dispose()
    {
        if (_m is not null) foreach (var t in _m) t.Dispose();
        if (_v is not null) foreach (var t in _v) t.Dispose();
        _sq?.Dispose();
        _sqAll?.Dispose();
        _guard?.Dispose();
        _m = _v = null;
        _sq = _sqAll = _guard = null;
        _state = null;
    }
}
