using System.Diagnostics;

namespace Ddsm.Runs;

/// <summary>What <c>ddsm stepadapt</c> runs: the training, and (given a feature net) the comparison.</summary>
/// <param name="Data">training data; null: the data set the base was trained on (else fmnist-embedded).</param>
/// <param name="Features">feature net: compare the result with the base model in the report (null: no
/// comparison).</param>
/// <param name="Strategy">the base model's searched strategy (search's best.json): orders the budget under
/// --order auto and adds the searched and combined rows.</param>
/// <param name="Resample">a strategy of another length than the schedule is resampled to it (else refused).</param>
public sealed record StepAdaptSettings(string Base, string? Data, string Cache, string OutDir,
    StepAdaptiveOptions Options, string? Features, string? Strategy, SamplerKind Sampler, int SamplerSteps, int Count,
    int Batch, ulong Seed, bool Resample = false);

/// <summary>A finished step-adaptive run: the comparison rows (empty without a feature net) and the report.</summary>
public sealed record StepAdaptOutcome(IReadOnlyList<ComparisonRow> Rows, string? ComparisonTable, string ReportPath);

/// <summary>
/// The comparison's rows, the real-vs-real baseline, the FD spread, and whether the base's training time is known.
/// </summary>
public sealed record StepAdaptComparison(IReadOnlyList<ComparisonRow> Rows, Eval.EvalResult Baseline, double FdSpread,
    bool BaseHoursKnown);

/// <summary>
/// A step-adaptive run made ready from a base checkpoint (<see cref="Open"/>), run by the caller through
/// <see cref="Run"/> (it reports progress and can be stopped), then <see cref="Finish"/>ed: the comparison with
/// the base model on common random numbers, and OUT/report.md.
/// </summary>
public sealed class StepAdaptSession
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public required StepAdaptSettings Settings { get; init; }
    public required Backend Backend { get; init; }
    public required string BasePath { get; init; }
    public required UNetConfig BaseConfig { get; init; }
    public required ImageDataset Data { get; init; }
    public required StepAdaptiveRun Run { get; init; }

    public static StepAdaptSession Open(StepAdaptSettings s, Backend be)
    {
        if (s.Count <= 0 || s.Batch <= 0) throw new ArgumentException("-n and --eval-batch must be positive");
        if (s.Options.StepsPerGroup <= 0)
            throw new ArgumentException($"--steps must be positive, got {s.Options.StepsPerGroup}");
        OutputFiles.CheckDirectory(s.OutDir);
        if (s.Features is not null && !File.Exists(s.Features))
            throw new FileNotFoundException(
                $"--features: '{s.Features}' not found (ddsm eval train-features makes one)", s.Features);
        var basePath = LoadedModel.Resolve(s.Base);
        var (cfg, meta, _) = Checkpoint.Read(basePath);
        var searched = s.Strategy is null ? null : StepStrategy.Parse(s.Strategy, cfg.DiffusionSteps, s.Resample);
        if (searched is not null) foreach (var w in searched.DistinctWidths()) cfg.CheckWidth(w);
        var data = s.Data ?? meta.GetValueOrDefault("data") ?? "fmnist-embedded";
        s = s with { Data = data, Options = s.Options with { Searched = searched } };
        var ds = Datasets.OpenAt(data, s.Cache, cfg.ImageSize, cfg.ImageChannels);
        var run = new StepAdaptiveRun(be, basePath, ds, s.OutDir, s.Options);
        return new StepAdaptSession
        {
            Settings = s, Backend = be, BasePath = basePath, BaseConfig = cfg, Data = ds, Run = run,
        };
    }

    /// <summary>After a completed run: the comparison (given a feature net) and the report.</summary>
    public StepAdaptOutcome Finish(StepAdaptiveResult result, Action<string>? log = null)
    {
        if (!result.Completed) throw new ArgumentException("step-adaptive run not completed: --resume continues it");
        var comparison = Settings.Features is null ? null : Compare(result, log);
        var table = comparison is null ? null
            : StrategyComparison.Markdown(comparison.Rows, comparison.Baseline, comparison.FdSpread);
        var reportPath = Path.Combine(Settings.OutDir, "report.md");
        AtomicFile.WriteAllText(reportPath,
                                StepAdaptReport.Markdown(this, result, comparison, table, _clock.Elapsed.TotalSeconds));
        return new StepAdaptOutcome(comparison?.Rows ?? [], table, reportPath);
    }

    /// <summary>
    /// The comparison on common random numbers: the base model at full width, with the searched strategy, and
    /// with the step-adaptive widths but no fine-tuning (what pruning + fine-tuning add); the step-adaptive model,
    /// and with the searched strategy capped at each group's width; the FD spread from a second seed.
    /// </summary>
    private StepAdaptComparison Compare(StepAdaptiveResult result, Action<string>? log)
    {
        var s = Settings;
        var (cfg, sched, searched) = (BaseConfig, Run.Schedule, s.Options.Searched);
        using var scoring = Scoring.Open(Backend, s.Features!, s.Data!, s.Cache, s.Count);
        using var baseModel = LoadedModel.Load(BasePath, Backend);
        using var grouped = LoadedModel.Load(result.CheckpointPath, Backend);
        var so = new SamplerOptions(s.SamplerSteps);

        double? baseH = BaseTrainingSeconds() is > 0 and var sec ? sec / 3600 : null;
        double? adaptH = baseH + result.FineTuneSeconds / 3600;
        var full = StepStrategy.Uniform(cfg.MaxWidth, sched.T);
        var fixedDen = (GroupedDenoiser)grouped.Denoiser;
        ComparisonRow Row(string name, IDenoiser den, StepStrategy strategy, double? hours, ulong seed)
        {
            var ev = scoring.Sampling(den, sched, new SampleSpec(s.Sampler, so, s.Count, s.Batch, seed));
            return StrategyComparison.Score(name, ev, strategy, scoring.Scorer, hours, m => log?.Invoke("  " + m));
        }
        var rows = new List<ComparisonRow> { Row("base, full width", baseModel.Denoiser, full, baseH, s.Seed) };
        if (searched is not null)
            rows.Add(Row("base, DDSM searched strategy", baseModel.Denoiser, searched, baseH, s.Seed));
        rows.Add(Row("base, step-adaptive widths, not fine-tuned", baseModel.Denoiser, fixedDen.EffectiveStrategy(full),
            baseH, s.Seed));
        rows.Add(Row("step-adaptive", fixedDen, full, adaptH, s.Seed));
        if (searched is not null)
            rows.Add(Row("step-adaptive + searched (capped per group)",
                grouped.Grouped!.Denoiser(GroupWidthMode.CappedByGroup), searched, adaptH, s.Seed));
        var second = Row("base, full width (seed 2)", baseModel.Denoiser, full, null, s.Seed + 1000);
        var baseline = scoring.Scorer.Baseline(scoring.HeldOut, Math.Min(s.Count, scoring.HeldOut.Count));
        return new StepAdaptComparison(rows, baseline, Math.Abs(second.Scores.Fd - rows[0].Scores.Fd),
                                       baseH is not null);
    }

    /// <summary>The base run's training time: its metrics.jsonl sits beside its checkpoints/ folder.</summary>
    private double BaseTrainingSeconds() =>
        TrainRun.TrainingSeconds(Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(BasePath)))!,
            "metrics.jsonl"));
}
