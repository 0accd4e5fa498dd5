namespace Ddsm.Diffusion;

public enum SamplerKind { Ddpm, Ddim, EdmHeun, DpmSolver2M }

/// <summary>Options shared by the samplers (each reads what applies to it).</summary>
/// <param name="StepGraphs">replay captured steps (<see cref="StepGraph"/>); false runs every step as it is, the
/// reference the replays are tested against. The images are the same either way.</param>
public sealed record SamplerOptions(int Steps = 50, double Eta = 0.0, bool ClipDenoised = true, double Rho = 7.0,
    bool StepGraphs = true);

/// <summary>
/// A sampler turns x_T ~ N(0, I) into a sample by calling the denoiser at the width the step
/// strategy gives for each call's own timestep. All randomness comes from the given device
/// <see cref="NoiseStream"/>, so a fixed seed gives identical images; widths change nothing but the
/// network call. A step runs entirely on the device: the noise is drawn there, x̂0 is clipped there, and the
/// per-step coefficients, timesteps and noise offsets are read from a table uploaded once before the first step
/// (<see cref="SamplerSteps"/>), so after the first step (which may load labels) a step makes no host transfer
/// and no sync (the sampler tests count them), and a step captured once replays for every step of its shape.
/// </summary>
public abstract class Sampler
{
    public abstract SamplerKind Kind { get; }

    public static Sampler Create(SamplerKind kind) => kind switch
    {
        SamplerKind.Ddpm => new DdpmSampler(),
        SamplerKind.Ddim => new DdimSampler(),
        SamplerKind.EdmHeun => new EdmHeunSampler(),
        SamplerKind.DpmSolver2M => new DpmSolver2MSampler(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static SamplerKind Parse(string name) => name.ToLowerInvariant() switch
    {
        "ddpm" => SamplerKind.Ddpm,
        "ddim" => SamplerKind.Ddim,
        "edm" or "heun" or "edm-heun" => SamplerKind.EdmHeun,
        "dpm++" or "dpmpp" or "dpm-solver++" or "dpmsolver++" or "dpm++2m" => SamplerKind.DpmSolver2M,
        _ => throw new ArgumentException($"unknown sampler '{name}' (ddpm, ddim, edm, dpm++)"),
    };

    /// <summary>
    /// Runs the sampler in place on <paramref name="x"/> (x_T on entry, the sample on return).
    /// Must be called under <see cref="Tape.NoGrad"/> or makes its own.
    /// </summary>
    public void Sample(IDenoiser model, NoiseSchedule schedule, StepStrategy strategy, Tensor x, NoiseStream noise,
        SamplerOptions options, Action<int, int>? progress = null)
    {
        if (strategy.T != schedule.T)
            throw new ArgumentException($"sampler: strategy has {strategy.T} timesteps, schedule {schedule.T}");
        using (Tape.NoGrad()) Run(model, schedule, strategy, x, noise, options, progress);
    }

    /// <summary>The same with a host generator: one draw from it seeds the device noise stream.</summary>
    public void Sample(IDenoiser model, NoiseSchedule schedule, StepStrategy strategy, Tensor x, Rng rng,
        SamplerOptions options, Action<int, int>? progress = null) =>
        Sample(model, schedule, strategy, x, new NoiseStream(rng.NextULong()), options, progress);

    protected abstract void Run(IDenoiser model, NoiseSchedule schedule, StepStrategy strategy, Tensor x,
        NoiseStream noise, SamplerOptions options, Action<int, int>? progress);

    /// <summary>
    /// The timesteps at which <see cref="Sample"/> calls the model, in order (fractional for EDM): computed from
    /// the same helpers its Run steps through, without sampling. Their count is the sampler's NFE.
    /// </summary>
    public abstract IReadOnlyList<double> EvaluationTimes(NoiseSchedule schedule, SamplerOptions options);

    /// <summary>
    /// GFLOPs per image of sampling with a strategy: the denoiser's own cost of every call the sampler will
    /// make (so a grouped model's per-group widths, or guidance's doubled batch, are counted as they run), and
    /// the number of calls.
    /// </summary>
    public (double Gflops, int Evaluations) Cost(IDenoiser model, NoiseSchedule schedule, StepStrategy strategy,
        SamplerOptions options)
    {
        if (strategy.T != schedule.T)
            throw new ArgumentException($"sampler: strategy has {strategy.T} timesteps, schedule {schedule.T}");
        var times = EvaluationTimes(schedule, options);
        return (times.Sum(t => (double)model.FlopsPerImage(t, strategy.At(t))) / 1e9, times.Count);
    }

    /// <summary>Evenly spaced integer timesteps from T−1 down to 0 (S of them, distinct).</summary>
    public static int[] SpacedTimesteps(int T, int steps)
    {
        if (steps < 1 || steps > T) throw new ArgumentException($"sampler: steps {steps} must be in [1, {T}]");
        if (steps == 1) return [T - 1];
        var s = new int[steps];
        for (int i = 0; i < steps; i++) s[i] = (int)Math.Round((T - 1) * (1.0 - (double)i / (steps - 1)));
        return s;
    }

    // ---- small in-place helpers on tensors (no autograd) ----------------------------------------
    // Inside a step every per-step scalar is a StepScalar (read from the step table on the device); constants
    // may stay host values (the same in every replay).
    /// <summary>y = a·y + b·x, with constants.</summary>
    protected static void Lin(Tensor y, double a, Tensor x, double b)
        => y.Backend.Axpby(x.Buffer, y.Buffer, y.Length, (float)b, (float)a);

    /// <summary>y = a·y + b·x, with the current step's a and b.</summary>
    protected static void Lin(Tensor y, StepScalar a, Tensor x, StepScalar b)
        => y.Backend.AxpbyStep(x.Buffer, y.Buffer, y.Length, b, a);

    /// <summary>
    /// y += std·z with z ~ N(0, I): the step's normals of stream <paramref name="seed"/>, at the offset the step
    /// reserved (<see cref="StepRows.Noise"/>: columns offset, offset + 1); <paramref name="one"/> holds 1.
    /// </summary>
    protected static void AddNoise(Tensor y, StepScalar std, StepScalar one, ulong seed, StepScalar offset)
    {
        var be = y.Backend;
        using var z = Tensor.Empty(be, y.Shape);
        // No FLOPs counted: a sampler's cost is its model calls (Sampler.Cost), as in NoiseStream.Fill.
        using (Profiler.Op("normal", 0, be))
            be.NormalStep(z.Buffer, z.Length, seed, offset, offset.Table[offset.Column + 1]);
        Lin(y, one, z, std);
    }

    /// <summary>Columns col, col + 1 of x̂_0's coefficients at ᾱ (for <see cref="PredictX0"/>).</summary>
    private protected static void X0Columns(StepRows rows, int step, int col, double alphaBar)
    {
        rows[step, col] = 1 / Math.Sqrt(alphaBar);
        rows[step, col + 1] = -Math.Sqrt((1 - alphaBar) / alphaBar);
    }

    /// <summary>
    /// x̂_0 = (x_t − √(1−ᾱ)·ε)/√ᾱ with the coefficients of columns col, col + 1 (<see cref="X0Columns"/>),
    /// optionally clipped to [−1, 1]; a new tensor.
    /// </summary>
    protected static Tensor PredictX0(Tensor xt, Tensor eps, StepScalar coefficients, bool clip)
    {
        var x0 = xt.Clone();
        Lin(x0, coefficients, eps, coefficients.Table[coefficients.Column + 1]);
        if (clip) Clamp(x0);
        return x0;
    }

    /// <summary>Clips to the data range [−1, 1] in place, on the device.</summary>
    protected static void Clamp(Tensor t) => t.Backend.Unary(UnaryOp.ClampUnit, t.Buffer, t.Buffer, t.Length);
}
