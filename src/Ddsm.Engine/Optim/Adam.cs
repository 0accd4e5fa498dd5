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
/// <para>Per step: one Σg² reduction per parameter, gathered on the device into one small buffer and
/// read back in one transfer (one sync per step, not one per parameter), together with any device values
/// the caller wants this step (the trainer's per-width losses: <see cref="Step(Tensor?, Action{float[]}?)"/>),
/// so a training step reads the device once; the clip factor goes to the
/// update kernel as <see cref="AdamHyper.GradScale"/>, so clipping costs no extra pass over the
/// gradients. Moments and scratch are created once, outside any scope, on first use: steady-state
/// steps allocate no device memory.</para>
/// <para><b>Non-finite gradients:</b> <see cref="Step"/> throws <see cref="InvalidOperationException"/>
/// naming the parameters whose gradients hold NaN/Inf, before touching any parameter or moment and
/// without advancing <see cref="StepCount"/>. Training stops there; the state is still that of the
/// last good step, so a checkpoint written afterwards is clean.</para>
/// </summary>
public sealed class Adam : IDisposable
{
    private readonly Tensor[] _params;
    private readonly Backend _backend;
    private AdamOptions _options;
    private Tensor[]? _m, _v;            // per parameter, same shape
    private Tensor? _sq;                 // (1) Σg² of one parameter
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
        }
        ReadBuffer(0);
        _state = _params.Select((p, i) => (p, _m[i], _v[i])).ToArray();
    }

    /// <summary>Makes the read-back buffer hold the P norms and <paramref name="extra"/> values.</summary>
    private void ReadBuffer(int extra)
    {
        int want = _params.Length + extra;
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

    /// <summary>One update of every parameter that has a gradient (those without are skipped).</summary>
    public StepInfo Step() => Step(null, null);

    /// <summary>
    /// The same, reading <paramref name="alongside"/> (device values the caller needs on the host this step)
    /// in the same transfer as the gradient norms; <paramref name="inspect"/> gets them before any parameter
    /// moves (it may throw to stop the step).
    /// </summary>
    public StepInfo Step(Tensor? alongside, Action<float[]>? inspect)
    {
        EnsureState();
        var o = _options;
        var be = _backend;

        double norm = GlobalGradNorm(alongside);
        if (alongside is not null && inspect is not null)
            inspect(_sqHost!.AsSpan(_params.Length, (int)alongside.Length).ToArray());
        long t = StepCount + 1;
        if (!double.IsFinite(norm))
            throw new InvalidOperationException(
                $"adam: gradient norm is {norm} at step {t}; non-finite gradients in: " +
                $"{string.Join(", ", NonFiniteNames())}. No parameter was updated (the state is that of the last " +
                $"good step).");

        float scale = o.ClipNorm is float clip ? (float)Math.Min(1.0, clip / (norm + 1e-6)) : 1f;
        float lr = LrSchedule.LinearWarmup(t, o.WarmupSteps, o.Lr);
        var h = new AdamHyper(lr, o.Beta1, o.Beta2, o.Eps, o.WeightDecay,
            BiasCorrection1: (float)(1 - Math.Pow(o.Beta1, t)),
            BiasCorrection2: (float)(1 - Math.Pow(o.Beta2, t)),
            GradScale: scale);

        long total = 0;
        foreach (var p in _params) if (p.Grad is not null) total += p.Length;
        // ≈ 14 FLOPs per element (two moment updates, bias corrections, sqrt, divide, decay).
        using (Profiler.Op("adam", 14 * total, be))
            for (int i = 0; i < _params.Length; i++)
            {
                var p = _params[i];
                if (p.Grad is null) continue;
                be.AdamStep(p.Buffer, p.Grad.Buffer, _m![i].Buffer, _v![i].Buffer, p.Length, h);
            }
        StepCount = t;
        return new StepInfo(t, norm, lr, scale);
    }

    /// <summary>√(Σ over parameters with gradients of Σg²), summed in double on the host.</summary>
    private double GlobalGradNorm(Tensor? alongside)
    {
        var be = _backend;
        long total = 0;
        foreach (var p in _params) if (p.Grad is not null) total += p.Length;
        int extra = alongside is null ? 0 : checked((int)alongside.Length);
        ReadBuffer(extra);
        if (alongside is not null) be.Copy(alongside.Buffer, 0, _sqAll!.Buffer, _params.Length, extra);
        if (total == 0)
        {
            if (extra > 0) be.CopyOut(_sqAll!.Buffer, _params.Length, _sqHost!.AsSpan(_params.Length, extra));
            return 0;
        }
        using (Profiler.Op("adam.grad_norm", 2 * total, be))
        {
            for (int i = 0; i < _params.Length; i++)
            {
                var g = _params[i].Grad;
                if (g is null) continue;
                be.SumSquares(g.Buffer, g.Length, _sq!.Buffer);
                be.Copy(_sq.Buffer, 0, _sqAll!.Buffer, i, 1);
            }
            be.CopyOut(_sqAll!.Buffer, 0, _sqHost);
        }
        double s = 0;
        for (int i = 0; i < _params.Length; i++)
            if (_params[i].Grad is not null) s += _sqHost![i];
        return Math.Sqrt(s);
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
        _m = _v = null;
        _sq = _sqAll = null;
        _state = null;
    }
}
