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
/// accumulating gradients; then one clipped Adam step and an EMA update. The host draws (images, flips,
/// labels, widths, timesteps, dropout seeds) come from one <see cref="Rng"/>, the noise ε from a device
/// <see cref="NoiseStream"/>; both are checkpointed, so a resumed run repeats the same steps.
/// <para>Host round trips per step: one copy in (<see cref="StepInputs"/>: the batch, the timesteps and
/// their coefficients, the labels) and one copy out (the per-width losses, read with Adam's gradient norms);
/// everything else stays on the device.</para>
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

    private readonly ImageDataset _data;
    private readonly StepInputs _inputs;
    private readonly float[] _t;
    private readonly (int First, int Last) _tRange;

    /// <summary>Timesteps of the last width pass (one per image), for tests and diagnostics.</summary>
    internal IReadOnlyList<float> LastTimesteps => _t;
    private readonly int[]? _labels; // (B) class labels of the batch, null class after dropout; null when unconditional

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
        _data = data;
        Options = options;
        Rng = new Rng(seed);
        Noise = new NoiseStream(new Rng(seed ^ NoiseSalt).NextULong());
        Schedule = c.NoiseSchedule();
        _tRange = options.TimestepRange(Schedule.T);
        Optimizer = new Adam(model.Parameters(), new AdamOptions(options.Lr, WeightDecay: options.WeightDecay,
            ClipNorm: options.ClipNorm, WarmupSteps: options.WarmupSteps));
        Ema = new Ema(model.Parameters());
        _inputs = new StepInputs(options.BatchSize, data.ImageSize, options.SandwichN, c.NumClasses);
        _t = new float[options.BatchSize];
        if (c.NumClasses > 0) _labels = new int[options.BatchSize];
    }

    /// <summary>Separates the noise stream's seed from the host generator's (same user seed).</summary>
    private const ulong NoiseSalt = 0x6E6F_6973_655F_7374UL;

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

    public StepResult TrainStep()
    {
        var be = Model.Backend;
        var c = Model.Config;
        int b = Options.BatchSize;
        // Every host draw of the step first (the stream's order: images, flips, labels, widths, then per
        // pass its timesteps and dropout seed), staged for one copy in.
        var idx = new int[b];
        for (int i = 0; i < b; i++) idx[i] = Rng.NextInt(_data.Count);
        _data.Batch(idx, _inputs.X0, Options.HorizontalFlip ? Rng : null);
        if (_labels is not null)
        {
            DrawLabels(idx);
            _inputs.SetLabels(_labels);
        }
        var widths = PickWidths();
        var dropoutSeeds = new ulong[widths.Length];
        for (int p = 0; p < widths.Length; p++)
        {
            _inputs.DrawPass(p, Schedule, Rng, _tRange.First, _tRange.Last);
            dropoutSeeds[p] = Rng.NextULong();
        }
        _inputs.Timesteps(widths.Length - 1).CopyTo(_t);

        using var stepScope = new TensorScope();
        var dev = _inputs.Upload(be, [b, c.ImageChannels, c.ImageSize, c.ImageSize]);
        var losses = Tensor.Empty(be, widths.Length);   // (passes) ε-MSE per width, read once below
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
        var lossValues = new float[widths.Length];
        StepInfo info;
        try
        {
            // The losses travel with Adam's gradient norms (one read); a non-finite loss stops the step
            // before any parameter moves.
            info = Optimizer.Step(losses, host =>
            {
                host.CopyTo(lossValues, 0);
                for (int p = 0; p < host.Length; p++)
                    if (!float.IsFinite(host[p]))
                        throw new TrainingDivergedException(Step + 1, $"loss is {host[p]} at width {widths[p]}");
            });
        }
        catch (InvalidOperationException e) { throw new TrainingDivergedException(Step + 1, e.Message); }
        finally { Optimizer.ZeroGrad(); }
        Ema.Update(EmaDecayAt(Step));
        Step++;
        var perWidth = widths.Select((w, p) => (w, (double)lossValues[p])).ToArray();
        return new StepResult(Step, perWidth, info.GradNorm, info.Lr);
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
    /// The batch's labels with classifier-free-guidance label dropout: each is replaced by the null
    /// class with probability LabelDropout, so one model learns ε(x, y) and ε(x, ∅). One draw per
    /// label from the trainer's Rng (even at p = 0) keeps the stream, and so resume, deterministic;
    /// unconditional runs draw nothing and stay bit-identical to before.
    /// </summary>
    private void DrawLabels(int[] idx)
    {
        _data.BatchLabels(idx, _labels);
        DropLabels(_labels, Model.NullClass, Options.LabelDropout, Rng);
    }

    /// <summary>Replaces each label by <paramref name="nullClass"/> with probability p (one draw per label).</summary>
    public static void DropLabels(Span<int> labels, int nullClass, double p, Rng rng)
    {
        for (int i = 0; i < labels.Length; i++)
            if (rng.NextDouble() < p) labels[i] = nullClass;
    }

    /// <summary>The labels of the last drawn batch (after dropout); null for an unconditional model.</summary>
    internal IReadOnlyList<int>? LastLabels => _labels;

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
    }
}
