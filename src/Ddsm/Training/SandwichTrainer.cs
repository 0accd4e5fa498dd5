using Ddsm.Engine.Optim;
using Ddsm.Kernels;

namespace Ddsm.Training;

/// <summary>Losses of one sandwich step, one per width pass, in pass order.</summary>
public sealed record StepResult(long Step, (double Width, double Loss)[] Losses, double GradNorm, float Lr);

/// <summary>Thrown when a loss or gradient stops being finite; names the step.</summary>
public sealed class TrainingDivergedException(long step,
                                              string what) : Exception($"training diverged at step {step}: {what}")
{
    public long Step { get; } = step;
}

/// <summary>
/// DDSM supernet training with the sandwich rule: each step runs the largest width, the smallest,
/// and n−2 random middle widths on the same batch, each pass with its own timesteps and noise,
/// accumulating gradients; then one clipped Adam step and an EMA update. The widths come from the host's
/// <see cref="Rng"/>; everything else that changes from step to step is read on the device from the trainer's step
/// table (<see cref="TrainStepState"/>), whose counters mirror the host's: the batch, flips, labels and timesteps
/// drawn from the data set uploaded once (<see cref="ResidentData"/>, <see cref="StepInputs"/>, keyed by the run
/// and the step), the noise ε at the <see cref="NoiseStream"/>'s offset, each pass's dropout seed (the device
/// draws it from its copy of the Rng), Adam's rate and bias corrections, the EMA decay, the log's row. The Rng and
/// the stream are checkpointed, so a resumed run repeats the same steps.
/// <para>So a step is a head (the draws), one pass per width and a tail (guard, Adam, EMA, log), none taking a
/// per-step argument: with <see cref="StepGraphs"/> each is captured once per key (the pass's key is its width)
/// and replayed (<see cref="StepGraphCache"/>): a CUDA graph each on a GPU.</para>
/// <para>Host transfers per step: none. Clipping and the non-finite stop happen on the device (Adam's guard);
/// the per-width losses and the gradient norm go to a device <see cref="StepLog"/> that the host reads once per
/// logged interval (<see cref="QueueStep"/> then <see cref="ReadSteps"/>; <see cref="TrainStep"/> reads every
/// step). A non-finite step moves no parameter, nor does any step after it: the trainer is spent once a read
/// reports divergence.</para>
/// </summary>
public sealed class SandwichTrainer : IDisposable
{
    public SlimUNet Model { get; }
    public Adam Optimizer { get; }
    public Ema Ema { get; }
    public NoiseSchedule Schedule { get; }
    public TrainOptions Options { get; }
    public Rng Rng { get; }
    /// <summary>Where the training noise ε comes from (checkpointed with <see cref="Rng"/>).</summary>
    public NoiseStream Noise { get; }
    public long Step { get; set; }

    private readonly ResidentData _resident;
    private readonly StepLog _log;
    private readonly (int First, int Last) _tRange;
    private readonly TrainStepState _state;
    private readonly StepInputs _inputs;
    private readonly Tensor _losses;         // (passes) ε-MSE per width of the current step
    private StepGraphCache _graphs;

    /// <summary>The data set on the device (tests poison it to check the non-finite stop).</summary>
    internal ResidentData Resident => _resident;

    /// <summary>Timesteps of the last width pass (one per image), for tests and diagnostics (a read).</summary>
    internal IReadOnlyList<float> LastTimesteps => _inputs.T.ToArray();

    /// <summary>
    /// Capture each part of a step once per key and replay it (<see cref="StepGraphCache"/>); on by default, as in
    /// sampling (<see cref="SamplerOptions.StepGraphs"/>): a CUDA graph per part on a GPU, the recorder on ILGPU's
    /// CPU accelerator, and on the CPU backend a replay runs the same code again (no cost, one code path for all).
    /// Off, every part runs as it is. Training is bit-identical either way.
    /// </summary>
    public bool StepGraphs
    {
        get => _graphs.Enabled;
        set
        {
            if (value == _graphs.Enabled) return;
            _graphs.Dispose();
            _graphs = new StepGraphCache(Model.Backend, value);
        }
    }

    /// <summary>
    /// For the graph-safety test only: passes give the model the host's dropout seed as a kernel argument (what
    /// the trainer once did) instead of the device's, which a replayed pass gets wrong.
    /// </summary>
    internal bool HostDropoutSeeds { get; set; }
    private ulong _hostDropoutSeed;

    public SandwichTrainer(SlimUNet model, ImageDataset data, TrainOptions options, ulong seed)
    {
        options.Validate();
        var c = model.Config;
        data.CheckFits(c.ImageChannels, c.ImageSize, $"model '{c.Name}'");
        if (c.NumClasses > 0)
        {
            if (data.ClassCount == 0)
                throw new ArgumentException($"model '{c.Name}' is class-conditional ({c.NumClasses} classes) but " +
                                            $"data set '{data.Name}' has no labels");
            if (data.ClassCount != c.NumClasses)
                throw new ArgumentException(
                    $"model '{c.Name}' has {c.NumClasses} classes but data set '{data.Name}' has {data.ClassCount}");
        }
        Model = model;
        Options = options;
        Rng = new Rng(seed);
        Noise = new NoiseStream(new Rng(seed ^ NoiseSalt).NextULong());
        Schedule = c.NoiseSchedule();
        _tRange = options.TimestepRange(Schedule.T);
        Optimizer = new Adam(model.Parameters(), new AdamOptions(options.Lr, WeightDecay: options.WeightDecay,
            ClipNorm: options.ClipNorm, WarmupSteps: options.WarmupSteps));
        Ema = new Ema(model.Parameters());
        var be = model.Backend;
        _resident = new ResidentData(be, data, Schedule, c.NumClasses);
        _log = new StepLog(be, options.SandwichN);
        _state = new TrainStepState(be, Optimizer.Options, HostState());
        _inputs = new StepInputs(_resident, _state, options.BatchSize,
            [options.BatchSize, c.ImageChannels, c.ImageSize, c.ImageSize]);
        using (TensorScope.Suspend()) _losses = Tensor.Zeros(be, options.SandwichN);
        _graphs = new StepGraphCache(be, enabled: true);
    }

    /// <summary>Separates the noise stream's seed from the host generator's (same user seed).</summary>
    private const ulong NoiseSalt = 0x6E6F_6973_655F_7374UL;
    /// <summary>Separates the data draws' key from the noise seed it is derived from (so it is checkpointed).</summary>
    private const ulong DataSalt = 0x6261_7463_685F_6B79UL;
    internal ulong DataKey => Noise.Seed ^ DataSalt;

    /// <summary>The widths of one step: max, min, then n−2 drawn from the middle ones.</summary>
    public double[] PickWidths()
    {
        var w = Model.Config.Widths;
        double max = w.Max(), min = w.Min();
        var middle = w.Where(v => v != max && v != min).ToArray();
        var pool = middle.Length > 0 ? middle : w;
        var list = new List<double> { max };
        if (Options.SandwichN >= 2 && min != max) list.Add(min);
        while (list.Count < Options.SandwichN) list.Add(pool[Rng.NextInt(pool.Length)]);
        return list.ToArray();
    }

    /// <summary>Rng draws <see cref="PickWidths"/> makes (one each, whatever the widths): the device skips them.
    /// </summary>
    private int WidthDraws
    {
        get
        {
            var w = Model.Config.Widths;
            return Options.SandwichN - (Options.SandwichN >= 2 && w.Min() != w.Max() ? 2 : 1);
        }
    }

    /// <summary>One step, then a read of its losses (and of any queued before it): the last step's result.</summary>
    public StepResult TrainStep()
    {
        if (_log.Capacity == 0) ReserveLog(1);
        QueueStep();
        var (good, diverged) = ReadSteps();
        if (diverged is not null) throw diverged;
        return good[^1];
    }

    /// <summary>Makes the step log hold <paramref name="steps"/> unread steps (between reads).</summary>
    public void ReserveLog(int steps)
    {
        if (_log.Reserve(steps)) _graphs.Clear();   // the tails wrote the old log
    }

    /// <summary>Steps queued since the last <see cref="ReadSteps"/>.</summary>
    public int UnreadSteps => _log.Pending;

    /// <summary>
    /// Reads the queued steps' losses and gradient norms in one transfer: the results up to the first non-finite
    /// step, and that step's error (null when all are finite).
    /// </summary>
    public (StepResult[] Good, TrainingDivergedException? Diverged) ReadSteps() => _log.Read();

    private ulong[] HostState() => TrainStepState.Host(Step, Optimizer.StepCount, Noise, Rng);

    /// <summary>
    /// One sandwich step with no host transfer: its losses and gradient norm wait in the step log (room for one
    /// more step is needed: <see cref="ReserveLog"/>, <see cref="ReadSteps"/>). The first step after the host's
    /// state was set from outside (a resume) uploads the device's counters first: one copy in.
    /// </summary>
    public void QueueStep()
    {
        if (_state.Sync(HostState())) _graphs.Clear();   // they baked the old run's noise seed and data key
        // The host's draws (its Rng, checkpointed): the widths, the passes' keys, then each pass's dropout seed,
        // which the device draws from its copy of the generator (train_pass_scalars) and the host only skips.
        var widths = PickWidths();
        var hostSeeds = widths.Select(_ => Rng.NextULong()).ToArray();
        long t = Optimizer.StepCount + 1;
        _log.Add(Step + 1, widths, LrSchedule.LinearWarmup(t, Options.WarmupSteps, Options.Lr));
        _graphs.Run("head", Head);
        long passFloats = _inputs.Eps.Length;
        for (int p = 0; p < widths.Length; p++)
        {
            Noise.Reserve(passFloats);
            _hostDropoutSeed = hostSeeds[p];
            double w = widths[p];
            _graphs.Run(FormattableString.Invariant($"pass@{w:R}"), () => Pass(w));
        }
        _graphs.Run("tail", Tail);
        Step++;
        Optimizer.StepCount = t;
        _state.Moved(HostState());
    }

    private void Head() => _inputs.DrawBatch(new TrainStepScalarsArgs
    {
        DataKey = DataKey, Lr = Options.Lr, EmaDecay = Options.EmaDecay, WarmupSteps = Options.WarmupSteps,
        Bias1 = _state.Bias1, Bias2 = _state.Bias2, WidthDraws = WidthDraws,
    }, Options.HorizontalFlip, Options.LabelDropout);

    /// <summary>One width pass: its draws, the loss into its slot of the step's losses, backward.</summary>
    private void Pass(double width)
    {
        var be = Model.Backend;
        using var scope = new TensorScope();
        _inputs.DrawPass(new TrainPassScalarsArgs { PassFloats = _inputs.Eps.Length, Batch = Options.BatchSize },
            _tRange, Noise.Seed);
        var xt = _inputs.Noised();
        var seedAt = HostDropoutSeeds ? (StepScalar?)null : _state[TrainState.DropoutSeed];
        var (loss, mse) = WidthPassLossOnDevice(Model, xt, _inputs.Eps, _inputs.T, width, _inputs.OneHot,
            _hostDropoutSeed, Options.InplaceDistill, seedAt);
        be.CopyStep(mse.Buffer, 0, _losses.Buffer, 0, 1, _state[TrainState.LossSlot], 1);
        Tape.Backward(loss);
    }

    /// <summary>Clipping and the non-finite stop (of the gradients and the losses) on the device, Adam, EMA, log.
    /// </summary>
    private void Tail()
    {
        Optimizer.StepOnDevice(_losses, _state[TrainState.Lr]);
        Optimizer.ZeroGrad();
        Ema.Update(_state[TrainState.EmaAlpha], _state[TrainState.EmaBeta]);
        _log.Write(_losses, Optimizer.Guard);
    }

    /// <summary>
    /// One width pass of the sandwich step, before backward: the loss to differentiate (the ε MSE, plus with
    /// in-place distillation the MSE to the full width's detached prediction) and the ε MSE's value (read
    /// back here: for callers outside the step loop; the trainer keeps it on the device).
    /// </summary>
    public static (Tensor Loss, double EpsMse) WidthPassLoss(SlimUNet model, Tensor xt, Tensor eps, Tensor t,
        double width, int[]? labels, ulong dropoutSeed, bool inplaceDistill)
    {
        var (loss, mse) = WidthPassLossOnDevice(model, xt, eps, t, width, model.LabelsOneHot(labels, xt.Shape[0]),
            dropoutSeed, inplaceDistill);
        return (loss, mse.Item());
    }

    /// <summary><see cref="WidthPassLoss"/> with the labels' one-hot on the device and the ε MSE left there.</summary>
    /// <param name="dropoutSeedAt">Where the device reads the dropout seed instead of <paramref name="dropoutSeed"/>
    /// (the trainer's step table), or null.</param>
    public static (Tensor Loss, Tensor EpsMse) WidthPassLossOnDevice(SlimUNet model, Tensor xt, Tensor eps, Tensor t,
        double width, Tensor? oneHot, ulong dropoutSeed, bool inplaceDistill, StepScalar? dropoutSeedAt = null)
    {
        var pred = model.Forward(xt, t, width, oneHot, training: true, dropoutSeed: dropoutSeed,
            dropoutSeedAt: dropoutSeedAt);
        var mse = F.MseLoss(pred, eps);
        var loss = mse;
        double maxW = model.Config.MaxWidth;
        if (inplaceDistill && width != maxW)
        {
            Tensor teacher;
            using (Tape.NoGrad()) teacher = model.Forward(xt, t, maxW, oneHot);
            loss = F.Add(loss, F.MseLoss(pred, teacher));
        }
        return (loss, mse);
    }

    /// <summary>
    /// The labels of the last drawn batch (after label dropout: the null class K); null for an unconditional
    /// model. For tests and diagnostics (a read).
    /// </summary>
    internal IReadOnlyList<int>? LastLabels
    {
        get
        {
            if (_inputs.OneHot is null) return null;
            var oh = _inputs.OneHot.ToArray();
            int k1 = _resident.OneHotWidth;
            return Enumerable.Range(0, Options.BatchSize).Select(i => Array.IndexOf(oh, 1f, i * k1, k1) - i * k1)
                .ToArray();
        }
    }

    /// <summary>
    /// EMA decay with warm-up, min(decay, (1+t)/(10+t)): without it a short run's EMA keeps a large
    /// share of the zero-initialised output convs, ε̂ comes out under-scaled and samples stay noisy
    /// (seen: 300 steps at 0.995 kept 22 % of the initial weights and sampled pure noise).
    /// (The device computes it: <see cref="TrainMath.EmaDecay"/>.)
    /// </summary>
    public float EmaDecayAt(long step) => TrainMath.EmaDecay(step, Options.EmaDecay);

    public void Dispose()
    {
        _graphs.Dispose();
        Optimizer.Dispose();
        Ema.Dispose();
        _resident.Dispose();
        _log.Dispose();
        _inputs.Dispose();
        _losses.Dispose();
        _state.Dispose();
    }
}
