using Ddsm.Engine.Optim;

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
/// accumulating gradients; then one clipped Adam step and an EMA update. The widths and dropout seeds come from
/// the host's <see cref="Rng"/> (kernel arguments, not copies); the batch, flips, labels and timesteps are drawn
/// on the device from the data set uploaded once (<see cref="ResidentData"/>, <see cref="StepInputs"/>, keyed by
/// the run and the step), the noise ε from a device <see cref="NoiseStream"/>; the Rng and the stream are
/// checkpointed, so a resumed run repeats the same steps.
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
    private readonly Tensor _lastT;          // (B) timesteps of the last width pass
    private readonly Tensor? _lastOneHot;    // (B, K+1) labels of the last batch; null when unconditional

    /// <summary>The data set on the device (tests poison it to check the non-finite stop).</summary>
    internal ResidentData Resident => _resident;

    /// <summary>Timesteps of the last width pass (one per image), for tests and diagnostics (a read).</summary>
    internal IReadOnlyList<float> LastTimesteps => _lastT.ToArray();

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
        using (TensorScope.Suspend())
        {
            _lastT = Tensor.Zeros(be, options.BatchSize);
            if (c.NumClasses > 0) _lastOneHot = Tensor.Zeros(be, options.BatchSize, _resident.OneHotWidth);
        }
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

    /// <summary>One step, then a read of its losses (and of any queued before it): the last step's result.</summary>
    public StepResult TrainStep()
    {
        if (_log.Capacity == 0) _log.Reserve(1);
        QueueStep();
        var (good, diverged) = ReadSteps();
        if (diverged is not null) throw diverged;
        return good[^1];
    }

    /// <summary>Makes the step log hold <paramref name="steps"/> unread steps (between reads).</summary>
    public void ReserveLog(int steps) => _log.Reserve(steps);

    /// <summary>Steps queued since the last <see cref="ReadSteps"/>.</summary>
    public int UnreadSteps => _log.Pending;

    /// <summary>
    /// Reads the queued steps' losses and gradient norms in one transfer: the results up to the first non-finite
    /// step, and that step's error (null when all are finite).
    /// </summary>
    public (StepResult[] Good, TrainingDivergedException? Diverged) ReadSteps() => _log.Read();

    /// <summary>
    /// One sandwich step with no host transfer: its losses and gradient norm wait in the step log (room for one
    /// more step is needed: <see cref="ReserveLog"/>, <see cref="ReadSteps"/>).
    /// </summary>
    public void QueueStep()
    {
        var be = Model.Backend;
        var c = Model.Config;
        int b = Options.BatchSize;
        // The host draws of the step (kernel arguments): the widths, then each pass's dropout seed.
        var widths = PickWidths();
        var dropoutSeeds = new ulong[widths.Length];
        for (int p = 0; p < widths.Length; p++) dropoutSeeds[p] = Rng.NextULong();

        using var stepScope = new TensorScope();
        var dev = StepInputs.Draw(_resident, Step, DataKey, b, widths.Length, _tRange,
            [b, c.ImageChannels, c.ImageSize, c.ImageSize], Options.HorizontalFlip, Options.LabelDropout);
        var losses = Tensor.Empty(be, widths.Length);   // (passes) ε-MSE per width, logged on the device
        for (int p = 0; p < widths.Length; p++)
        {
            using var scope = new TensorScope();
            var eps = Noise.Next(be, dev.X0.Shape);
            var xt = dev.Noised(p, eps);
            var (loss, mse) = WidthPassLossOnDevice(Model, xt, eps, dev.Passes[p].T, widths[p], dev.OneHot,
                dropoutSeeds[p], Options.InplaceDistill);
            be.Copy(mse.Buffer, 0, losses.Buffer, p, 1);
            Tape.Backward(loss);
        }
        // Clipping and the non-finite stop (of the gradients and the losses) on the device: no read here.
        var (_, lr) = Optimizer.StepOnDevice(losses);
        Optimizer.ZeroGrad();
        Ema.Update(EmaDecayAt(Step));
        Step++;
        _log.Write(Step, widths, lr, losses, Optimizer.Guard);
        _lastT.CopyFrom(dev.Passes[^1].T);
        if (dev.OneHot is not null) _lastOneHot!.CopyFrom(dev.OneHot);
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
    public static (Tensor Loss, Tensor EpsMse) WidthPassLossOnDevice(SlimUNet model, Tensor xt, Tensor eps, Tensor t,
        double width, Tensor? oneHot, ulong dropoutSeed, bool inplaceDistill)
    {
        var pred = model.Forward(xt, t, width, oneHot, training: true, dropoutSeed: dropoutSeed);
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
            if (_lastOneHot is null) return null;
            var oh = _lastOneHot.ToArray();
            int k1 = _resident.OneHotWidth;
            return Enumerable.Range(0, Options.BatchSize).Select(i => Array.IndexOf(oh, 1f, i * k1, k1) - i * k1)
                .ToArray();
        }
    }

    /// <summary>
    /// EMA decay with warm-up, min(decay, (1+t)/(10+t)): without it a short run's EMA keeps a large
    /// share of the zero-initialised output convs, ε̂ comes out under-scaled and samples stay noisy
    /// (seen: 300 steps at 0.995 kept 22 % of the initial weights and sampled pure noise).
    /// </summary>
    public float EmaDecayAt(long step) => Math.Min(Options.EmaDecay, (1f + step) / (10f + step));

    public void Dispose()
    {
        Optimizer.Dispose();
        Ema.Dispose();
        _resident.Dispose();
        _log.Dispose();
        _lastT.Dispose();
        _lastOneHot?.Dispose();
    }
}
