// One fused Adam(W) step over a parameter: reads p, g, m, v once and writes p, m, v once (the chain
// of element-wise ops it replaces would move ~3× the bytes). EMA of weights is axpby.
//   g = grad·gs; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr·(m·ibc1 / (√(v·ibc2) + eps) + wd·p)
// in the CPU oracle's float operation order (ibc = 1/bias correction, computed on the host).
// The training loop's variant takes the clip scale from a device guard (clip_guard: the global norm, the
// scale, a sticky non-finite flag) and does nothing once the flag is set, so clipping and the NaN stop
// need no read of the norm before the update. Its table form reads the rate and bias corrections too.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>P, G, M, V: (N). Hyper-parameters as in AdamHyper, bias corrections inverted.</summary>
public struct AdamArgs
{
    public ArrayView<float> P, G, M, V;
    public long N;
    public float Lr, Beta1, Beta2, Eps, WeightDecay, InvBc1, InvBc2, GradScale;
}

public static class AdamKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<AdamArgs>(AdamStep, "adam_step", "adam", hot: false, "fused Adam(W) update of p, m, v"),
        KernelEntry.Of<AdamGuardedArgs>(AdamStepGuarded, "adam_step_guarded", "adam", hot: false,
            "the Adam(W) update, clip scale read from the guard; nothing once the guard says diverged"),
        KernelEntry.Of<AdamTableArgs>(AdamStepTable, "adam_step_table", "adam", hot: false,
            "adam_step_guarded with the rate and bias corrections read from the step table"),
        KernelEntry.Of<ClipGuardArgs>(ClipGuardKernel, "clip_guard", "adam", hot: false,
            "global gradient norm, clip scale and sticky non-finite flag into the guard (one thread)"),
    ];

    /// <summary>Grid-stride over n.</summary>
    public static void AdamStep(AdamArgs a)
    {
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride) Update(a, i, a.GradScale);
    }

    /// <summary>
    /// Grid-stride over n with the gradient scale GradScale·Guard[Scale], or nothing while Guard[Diverged] is
    /// set: a non-finite step moves no parameter, and the host need not read the norm first.
    /// </summary>
    public static void AdamStepGuarded(AdamGuardedArgs a)
    {
        if (a.Guard[ClipGuard.Diverged] != 0f) return;
        float scale = a.Adam.GradScale * a.Guard[ClipGuard.Scale];
        for (long i = Dev.GlobalId; i < a.Adam.N; i += Dev.GridStride) Update(a.Adam, i, scale);
    }

    /// <summary>
    /// <see cref="AdamStepGuarded"/> with Lr, 1/bias correction 1 and 2 from columns ColLr, ColLr + 1, ColLr + 2 of
    /// the table's current row (the training step's, so a captured step replays the next update's).
    /// </summary>
    public static void AdamStepTable(AdamTableArgs a)
    {
        var row = DeviceCells.Current(a.Table, a.Stride);
        var g = a.Guarded;
        g.Adam.Lr = row[a.ColLr];
        g.Adam.InvBc1 = 1f / row[a.ColLr + 1];
        g.Adam.InvBc2 = 1f / row[a.ColLr + 2];
        AdamStepGuarded(g);
    }

    /// <summary>One thread: the oracle's sequential double sum, so every backend writes the same bits.</summary>
    public static void ClipGuardKernel(ClipGuardArgs a)
    {
        if (Dev.GlobalId != 0) return;
        double s = 0.0;
        for (int i = 0; i < a.SumCount; i++) s += a.Values[i];
        bool finite = s <= double.MaxValue;   // false for NaN and +∞ (the terms are ≥ 0)
        for (int i = a.SumCount; i < a.Count; i++) finite &= ClipGuard.IsFinite(a.Values[i]);
        double norm = Math.Sqrt(s);
        a.Guard[ClipGuard.NormHi] = ClipGuard.Hi(norm);
        a.Guard[ClipGuard.NormLo] = ClipGuard.Lo(norm);
        a.Guard[ClipGuard.Scale] = ClipGuard.ScaleFor(norm, a.ClipNorm);
        if (!finite) a.Guard[ClipGuard.Diverged] = 1f;
    }

    private static void Update(in AdamArgs a, long i, float gradScale)
    {
        float g = a.G[i] * gradScale;
        float m = a.Beta1 * a.M[i] + (1f - a.Beta1) * g;
        float v = a.Beta2 * a.V[i] + (1f - a.Beta2) * g * g;
        a.M[i] = m;
        a.V[i] = v;
        float p = a.P[i];
        a.P[i] = p - a.Lr * (m * a.InvBc1 / (MathF.Sqrt(v * a.InvBc2) + a.Eps) + a.WeightDecay * p);
    }
}

/// <summary>The Adam arguments plus the guard (<see cref="ClipGuard.Length"/> floats) written by clip_guard.</summary>
public struct AdamGuardedArgs
{
    public AdamArgs Adam;
    public ArrayView<float> Guard;
}

/// <summary>The guarded step's arguments and where its per-step hyper-parameters are read.</summary>
public struct AdamTableArgs
{
    public AdamGuardedArgs Guarded;
    public ArrayView<float> Table;
    public int Stride, ColLr;
}

/// <summary>
/// Values (Count): SumCount squared-gradient sums (the global norm is √Σ), then values that must only be finite
/// (the step's losses). ClipNorm ≤ 0 = no clipping.
/// </summary>
public struct ClipGuardArgs
{
    public ArrayView<float> Values, Guard;
    public int SumCount, Count;
    public float ClipNorm;
}

/// <summary>
/// The guard: the global gradient norm (a double as a float pair, hi + lo), the clip scale the update uses, and
/// a sticky flag set by the first step whose norm or checked values are not finite. It lives on the device so a
/// training step clips and stops on NaN without a read; the host reads it (with the losses) when it logs.
/// </summary>
public static class ClipGuard
{
    public const int NormHi = 0, NormLo = 1, Scale = 2, Diverged = 3, Length = 4;

    public static float Hi(double norm) => (float)norm;
    public static float Lo(double norm) => (float)(norm - (float)norm);

    /// <summary>The norm back from its pair (for finite pairs; a non-finite hi stays non-finite).</summary>
    public static double Norm(float hi, float lo) => IsFinite(hi) ? (double)hi + lo : hi;

    /// <summary>min(1, clip / (norm + 1e-6)) in double, as the host computed it; 1 without clipping.</summary>
    public static float ScaleFor(double norm, float clip) =>
        clip > 0f ? (float)Math.Min(1.0, clip / (norm + 1e-6)) : 1f;

    /// <summary>By comparisons only (NaN and ±∞ fail them), identical on every backend.</summary>
    public static bool IsFinite(float v) => v <= float.MaxValue && v >= -float.MaxValue;
}
