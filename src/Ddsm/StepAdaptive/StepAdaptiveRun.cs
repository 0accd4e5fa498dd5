using System.Diagnostics;

namespace Ddsm.StepAdaptive;

/// <summary>How a group's model is cut from the base model before fine-tuning.</summary>
public enum PruneMode
{
    /// <summary>
    /// Channels reordered by the group's Taylor importance (full-width function kept), then the prefix.
    /// </summary>
    Importance,
    /// <summary>The base model's own prefix (what sandwich training already made a good narrow model).</summary>
    Prefix,
    /// <summary>
    /// Importance where it has the lower ε-MSE at the group's width on the group's timesteps, else the prefix
    /// (always at the full width, where the permutation cannot lower that loss but does scramble the narrower
    /// prefixes).
    /// </summary>
    Auto,
}

/// <summary>Settings of <see cref="StepAdaptiveRun"/>.</summary>
public sealed record StepAdaptiveOptions
{
    public int Groups { get; init; } = 4;
    public GroupingMode Grouping { get; init; } = GroupingMode.EqualLogSnr;
    /// <summary>Smallest group's FLOPs fraction of the base model (Xu et al.'s k).</summary>
    public double K { get; init; } = 0.5;
    public BudgetOrder Order { get; init; } = BudgetOrder.Auto;
    /// <summary>
    /// The base model's DDSM searched strategy, if any: what <see cref="BudgetOrder.Auto"/> orders by first.
    /// </summary>
    public StepStrategy? Searched { get; init; }
    /// <summary>
    /// Auto by default: on a sandwich-trained base the prefix already is a trained narrow model, and importance
    /// order measured far worse before fine-tuning (bench/RESULTS.md); on a base trained at full width only it helps.
    /// </summary>
    public PruneMode Prune { get; init; } = PruneMode.Auto;
    /// <summary>Fine-tuning settings (batch, lr, warm-up, EMA, sandwich n); the t range comes from the group.</summary>
    public TrainOptions FineTune { get; init; } = new() { Lr = 1e-4f, WarmupSteps = 50, EmaDecay = 0.999f };
    public long StepsPerGroup { get; init; } = 500;
    public int CheckpointEvery { get; init; } = 100;
    public int KeepCheckpoints { get; init; } = 2;
    public ImportanceOptions Importance { get; init; } = new();
    public GroupLossOptions Loss { get; init; } = new();
    public bool Resume { get; init; }
    public ulong Seed { get; init; }

    public void Validate()
    {
        if (StepsPerGroup < 0) throw new ArgumentException($"steps per group must be ≥ 0, got {StepsPerGroup}");
        if (CheckpointEvery < 0) throw new ArgumentException($"checkpoint interval must be ≥ 0, got {CheckpointEvery}");
        FineTune.Validate();
    }
}

/// <summary>What happened to one group: how it was pruned, its losses before and after, its cost.</summary>
/// <param name="PrefixLoss">ε-MSE at the group's width on its timesteps, base weights as they are.</param>
/// <param name="ImportanceLoss">The same after importance reordering (null when not computed).</param>
/// <param name="FinalLoss">The same for the fine-tuned (EMA) weights.</param>
public sealed record GroupReport(int Group, double Width, string Pruning, double PrefixLoss, double? ImportanceLoss,
    double FinalLoss, long Steps, double TrainSeconds);

public sealed record StepAdaptiveResult(StepAdaptivePlan Plan, TimestepGroups Groups,
    IReadOnlyList<GroupReport> Reports, string CheckpointPath, double FineTuneSeconds, bool Completed);

/// <summary>
/// Step-adaptive training (Xu et al., "Not All Steps are Equal"): from a base slimmable model trained on
/// every timestep, cut t into SNR groups, size each group's model from the FLOPs budget, cut it from the
/// base by importance, and fine-tune it (sandwich rule over the widths up to its own, EMA, the group's
/// timesteps only). Each group is a resumable <see cref="TrainRun"/> in OUT/group{g}; the finished groups'
/// EMA weights go into one <see cref="GroupedCheckpoint"/>, OUT/stepadapt.safetensors. OUT/plan.json
/// records the plan, and a resumed run must arrive at the same one.
/// </summary>
public sealed class StepAdaptiveRun
{
    private readonly string _basePath, _outDir;
    private readonly ImageDataset _data;
    private readonly Backend _be;
    private readonly StepAdaptiveOptions _o;

    public UNetConfig BaseConfig { get; }
    /// <summary>The data spec the base was trained on, as its checkpoint records it (null: not recorded).</summary>
    public string? BaseDataSpec { get; }
    public NoiseSchedule Schedule { get; }
    public TimestepGroups Groups { get; }
    public string PlanPath => Path.Combine(_outDir, "plan.json");
    public string CheckpointPath => Path.Combine(_outDir, "stepadapt.safetensors");
    public string GroupDir(int g) => Path.Combine(_outDir, $"group{g}");

    public StepAdaptiveRun(Backend backend, string baseCheckpoint, ImageDataset data, string outDir,
                           StepAdaptiveOptions options)
    {
        options.Validate();
        (_be, _basePath, _data, _outDir, _o) = (backend, baseCheckpoint, data, outDir, options);
        var (cfg, meta, _) = Checkpoint.Read(baseCheckpoint);
        if (cfg.NumClasses > 0)
            throw new NotSupportedException($"step-adaptive training of class-conditional models ('{cfg.Name}', " +
                                            $"{cfg.NumClasses} classes) is not supported yet");
        if (data.Channels != cfg.ImageChannels || data.Height != cfg.ImageSize || data.Width != cfg.ImageSize)
            throw new ArgumentException($"step-adaptive: data set '{data.Name}' has images " +
                                        $"{data.Channels}×{data.Height}×{data.Width}, base model '{cfg.Name}' wants " +
                                        $"{cfg.ImageChannels}×{cfg.ImageSize}×{cfg.ImageSize}");
        BaseConfig = cfg;
        BaseDataSpec = meta.GetValueOrDefault("data");
        Schedule = cfg.NoiseSchedule();
        Groups = TimestepGroups.Build(Schedule, options.Groups, options.Grouping);
        if (!options.Resume && (File.Exists(PlanPath) || Directory.Exists(GroupDir(0))))
            throw new IOException(
                $"{outDir} already holds a step-adaptive run; pass --resume to continue it, or choose another --out");
    }

    /// <summary>
    /// Measures the base model per group and width and makes the plan (or checks it against the saved one
    /// when resuming), then prunes and fine-tunes every group not yet done, then writes the grouped checkpoint.
    /// Returns early (Completed false, no grouped checkpoint written) when cancelled; each group's last
    /// checkpoint is then on disk for --resume.
    /// </summary>
    public StepAdaptiveResult Run(Action<int, StepResult>? onStep = null, Action<string>? onNote = null,
                                  CancellationToken cancel = default)
    {
        Directory.CreateDirectory(_outDir);
        using var baseModel = new SlimUNet(_be, BaseConfig, 0);
        Checkpoint.LoadWeights(_basePath, baseModel, ema: true);
        var baseState = baseModel.StateDict();
        var widths = BaseConfig.Widths.Order().ToArray();
        onNote?.Invoke($"measuring the base model's ε-MSE per group at widths {string.Join(", ", widths)} …");
        var plan = StepAdaptivePlan.Create(BaseConfig, Groups, _o.K, _o.Order,
            GroupLoss.PerGroupAndWidth(baseModel, _data, Schedule, Groups, widths, _o.Loss), _o.Searched);
        if (File.Exists(PlanPath))
        {
            var saved = StepAdaptivePlan.FromJson(File.ReadAllText(PlanPath));
            if (!saved.SameAs(plan))
                throw new ArgumentException(
                    $"{PlanPath}: the saved plan (widths {string.Join(", ", saved.GroupWidths)}, k {saved.K}) " +
                                                    $"differs from this one (widths " +
                                                    $"{string.Join(", ", plan.GroupWidths)}, k {plan.K}); same " +
                                                    $"settings are needed to resume");
        }
        else AtomicFile.WriteAllBytes(PlanPath, System.Text.Encoding.UTF8.GetBytes(plan.ToJson()));
        onNote?.Invoke(plan.Describe(Groups));

        var models = new List<SlimUNet>();
        var reports = new List<GroupReport>();
        try
        {
            for (int g = 0; g < Groups.Count; g++)
            {
                if (cancel.IsCancellationRequested) break;
                var (model, report) = TrainGroup(g, plan, baseModel, baseState, onStep, onNote, cancel);
                models.Add(model);
                reports.Add(report);
            }
            bool done = models.Count == Groups.Count && !cancel.IsCancellationRequested;
            if (done)
            {
                GroupedCheckpoint.Save(CheckpointPath, BaseConfig, Groups, models, plan, Path.GetFullPath(_basePath),
                                       BaseDataSpec);
                onNote?.Invoke($"grouped checkpoint {CheckpointPath}");
            }
            return new StepAdaptiveResult(plan, Groups, reports, CheckpointPath, reports.Sum(r => r.TrainSeconds),
                                          done);
        }
        finally { foreach (var m in models) m.Dispose(); }
    }

    private (SlimUNet Model, GroupReport Report) TrainGroup(int g, StepAdaptivePlan plan, SlimUNet baseModel,
        Dictionary<string, float[]> baseState, Action<int, StepResult>? onStep, Action<string>? onNote,
        CancellationToken cancel)
    {
        var grp = Groups.Groups[g];
        double w = plan.GroupWidths[g];
        var cfg = StepAdaptivePlan.GroupConfig(BaseConfig, g, w);
        var model = new SlimUNet(_be, cfg, _o.Seed + (ulong)g);
        try
        {
            var opts = _o.FineTune with
            {
                TMin = grp.TFirst, TMax = grp.TLast, SandwichN = Math.Min(_o.FineTune.SandwichN, cfg.Widths.Length),
            };
            var run =
                new RunOptions(GroupDir(g), _o.StepsPerGroup, _o.CheckpointEvery, _o.KeepCheckpoints, Resume: true);
            double Loss(SlimUNet m) => GroupLoss.Mean(m, _data, Schedule, grp.TFirst, grp.TLast, w, _o.Loss);

            // The pruning measurement is repeated on resume (cheap, deterministic) so the report is complete.
            // The untouched prefix's loss is the plan's own measurement (same weights, width and batches).
            baseModel.LoadState(baseState);
            model.LoadState(baseState);
            double prefixLoss = plan.BaseLoss[g][Array.IndexOf(plan.LossWidths, w)];
            double? importanceLoss = null;
            string pruning = "prefix";
            // Auto at the full width: a full-width-preserving permutation cannot lower the loss there, but it
            // does reshuffle the narrower prefixes the group still runs under a capped strategy; keep the prefix.
            bool tryImportance = _o.Prune == PruneMode.Importance ||
                (_o.Prune == PruneMode.Auto && w < BaseConfig.MaxWidth);
            if (tryImportance)
            {
                onNote?.Invoke($"group {g + 1}: Taylor importance on t {grp.TFirst}–{grp.TLast} …");
                var scores =
                    ChannelImportance.Compute(baseModel, _data, Schedule, grp, _o.Importance with { Width = null });
                ChannelPermutation.Apply(baseModel, ChannelPermutation.Compute(baseModel, scores));
                model.LoadState(baseModel.StateDict());
                importanceLoss = Loss(model);
                if (_o.Prune == PruneMode.Auto && !(importanceLoss < prefixLoss)) model.LoadState(baseState);
                else pruning = "importance";
            }
            onNote?.Invoke($"group {g + 1}: width {w}, pruned by {pruning}: ε-MSE at width {w} on its steps " +
                           $"{prefixLoss:F4} as trained" +
                           (importanceLoss is { } il ? $", {il:F4} importance-ordered" : ""));

            using (var trainer = new SandwichTrainer(model, _data, opts, _o.Seed + 1000 + (ulong)g))
            {
                var loop = new TrainRun(trainer, run);
                if (loop.TryResume() is { } resumed)
                    onNote?.Invoke($"group {g + 1}: resumed from {resumed} at step {trainer.Step}");
                if (trainer.Step < run.Steps) loop.Run(r => onStep?.Invoke(g, r), onNote, cancel);
                trainer.Ema.CopyTo(model.Parameters());
                var report = new GroupReport(g, w, pruning, prefixLoss, importanceLoss, Loss(model), trainer.Step,
                    TrainRun.TrainingSeconds(loop.MetricsPath));
                onNote?.Invoke(
                    $"group {g + 1}: ε-MSE at width {w} after {trainer.Step} fine-tuning steps: {report.FinalLoss:F4}");
                return (model, report);
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
