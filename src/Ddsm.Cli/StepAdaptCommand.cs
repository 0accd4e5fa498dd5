using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Ddsm.Diffusion;
using Ddsm.Model;
using Ddsm.Search;
using Ddsm.StepAdaptive;
using Ddsm.Training;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary>
/// <c>ddsm stepadapt</c>: step-adaptive training from a base checkpoint (SNR groups, a FLOPs budget per
/// group, importance pruning, per-group fine-tuning, one grouped checkpoint), then, given a feature net, the
/// comparison with the base model and the DDSM searched strategy, in OUT/report.md.
/// </summary>
internal static class StepAdaptCommand
{
    public sealed record Settings(string Base, string Data, string Cache, string Device, string OutDir, StepAdaptiveOptions Options,
        string? Features, string? Strategy, SamplerKind Sampler, int SamplerSteps, int Count, int Batch, ulong Seed);

    public static Command Create()
    {
        var baseCk = new Option<string>("--base") { Description = "base checkpoint (ddsm train) or its run directory", Required = true };
        var data = new Option<string>("--data") { Description = "training data (as train --data)", DefaultValueFactory = _ => "fmnist-embedded" };
        var groups = new Option<int>("--groups") { Description = "timestep groups", DefaultValueFactory = _ => 4 };
        var grouping = new Option<string>("--grouping") { Description = "logsnr (equal log-SNR intervals) | count (equal step counts)", DefaultValueFactory = _ => "logsnr" };
        var k = new Option<double>("--k") { Description = "FLOPs fraction of the smallest group's model: group i of N gets (i/N + (N−i)/N·k)·F", DefaultValueFactory = _ => 0.5 };
        var order = new Option<string>("--order") { Description = "auto (the end the searched strategy narrows, else the end whose ε-MSE rises less when narrowed, is easy) | high-noise-more | low-noise-more", DefaultValueFactory = _ => "auto" };
        var prune = new Option<string>("--prune") { Description = "auto (importance where it lowers the group's loss at its width, else the base's prefix) | importance (Taylor-ordered channels) | prefix (the base's own)", DefaultValueFactory = _ => "auto" };
        var steps = new Option<long>("--steps") { Description = "fine-tuning steps per group", DefaultValueFactory = _ => 500 };
        var batch = new Option<int>("--batch") { Description = "images per fine-tuning step", DefaultValueFactory = _ => 32 };
        var lr = new Option<float>("--lr") { Description = "fine-tuning learning rate", DefaultValueFactory = _ => 1e-4f };
        var warmup = new Option<int>("--warmup") { Description = "lr warm-up steps", DefaultValueFactory = _ => 50 };
        var ema = new Option<float>("--ema") { Description = "EMA decay", DefaultValueFactory = _ => 0.999f };
        var n = new Option<int>("--sandwich-n") { Description = "widths per step (the group's width, the smallest, random ones between)", DefaultValueFactory = _ => 4 };
        var impBatches = new Option<int>("--importance-batches") { Description = "batches of 16 for the Taylor importance", DefaultValueFactory = _ => 8 };
        var outDir = new Option<string>("--out") { Description = "run directory", DefaultValueFactory = _ => "runs/stepadapt" };
        var ckEvery = new Option<int>("--checkpoint-every") { Description = "steps between checkpoints of a group", DefaultValueFactory = _ => 100 };
        var resume = new Option<bool>("--resume") { Description = "continue the run in --out" };
        var features = new Option<string?>("--features") { Description = "feature net (ddsm eval train-features): score the result against the base model" };
        var strategy = new Option<string?>("--strategy") { Description = "the DDSM searched strategy of the base model (search's best.json): orders the budget under --order auto, and adds the searched and combined rows" };
        var sampler = new Option<string>("--sampler") { Description = "sampler for the comparison", DefaultValueFactory = _ => "ddim" };
        var sampleSteps = new Option<int>("--sample-steps") { Description = "sampling steps for the comparison", DefaultValueFactory = _ => 10 };
        var count = new Option<int>("-n") { Description = "images per comparison row (same noise in every row)", DefaultValueFactory = _ => 256 };
        var evalBatch = new Option<int>("--eval-batch") { Description = "images per forward in the comparison", DefaultValueFactory = _ => 64 };
        var device = Common.Device(); var seed = Common.Seed(); var cache = Common.CacheDir();
        var cmd = new Command("stepadapt", "step-adaptive training: SNR timestep groups, one importance-pruned fine-tuned model per group")
        {
            baseCk, data, groups, grouping, k, order, prune, steps, batch, lr, warmup, ema, n, impBatches, outDir, ckEvery, resume,
            features, strategy, sampler, sampleSteps, count, evalBatch, device, seed, cache,
        };
        cmd.SetAction(p => Common.Guard(() =>
        {
            var o = new StepAdaptiveOptions
            {
                Groups = p.GetValue(groups),
                Grouping = p.GetValue(grouping)!.ToLowerInvariant() switch
                {
                    "logsnr" => GroupingMode.EqualLogSnr, "count" => GroupingMode.EqualCount,
                    var g => throw new ArgumentException($"--grouping: '{g}' is not logsnr or count"),
                },
                K = p.GetValue(k),
                Order = p.GetValue(order)!.ToLowerInvariant() switch
                {
                    "auto" => BudgetOrder.Auto, "high-noise-more" => BudgetOrder.HighNoiseGetsMore, "low-noise-more" => BudgetOrder.LowNoiseGetsMore,
                    var v => throw new ArgumentException($"--order: '{v}' is not auto, high-noise-more or low-noise-more"),
                },
                Prune = p.GetValue(prune)!.ToLowerInvariant() switch
                {
                    "importance" => PruneMode.Importance, "prefix" => PruneMode.Prefix, "auto" => PruneMode.Auto,
                    var v => throw new ArgumentException($"--prune: '{v}' is not importance, prefix or auto"),
                },
                FineTune = new TrainOptions { BatchSize = p.GetValue(batch), Lr = p.GetValue(lr), WarmupSteps = p.GetValue(warmup), EmaDecay = p.GetValue(ema), SandwichN = p.GetValue(n) },
                StepsPerGroup = p.GetValue(steps), CheckpointEvery = p.GetValue(ckEvery),
                Importance = new ImportanceOptions(Batches: p.GetValue(impBatches), BatchSize: 16, Seed: p.GetValue(seed) + 3),
                Resume = p.GetValue(resume), Seed = p.GetValue(seed),
            };
            return Run(new Settings(p.GetValue(baseCk)!, p.GetValue(data)!, p.GetValue(cache)!, p.GetValue(device)!, p.GetValue(outDir)!, o,
                p.GetValue(features), p.GetValue(strategy), Sampler.Parse(p.GetValue(sampler)!), p.GetValue(sampleSteps), p.GetValue(count),
                p.GetValue(evalBatch), p.GetValue(seed)));
        }));
        return cmd;
    }

    public static int Run(Settings s)
    {
        if (s.Count <= 0 || s.Batch <= 0) throw new ArgumentException("-n and --eval-batch must be positive");
        if (s.Features is not null && !File.Exists(s.Features)) throw new FileNotFoundException($"--features: '{s.Features}' not found (ddsm eval train-features makes one)", s.Features);
        var total = Stopwatch.StartNew();
        var be = Common.CreateBackend(s.Device);
        var basePath = SampleCommand.ResolveCheckpoint(s.Base);
        var (cfg, meta, _) = Checkpoint.Read(basePath);
        var searched = s.Strategy is null ? null : StepStrategy.Parse(s.Strategy, Checkpoint.TrainOptionsOf(meta).DiffusionSteps);
        if (searched is not null) foreach (var w in searched.DistinctWidths()) cfg.CheckWidth(w);
        s = s with { Options = s.Options with { Searched = searched } };
        var ds = Common.LoadData(s.Data, s.Cache, cfg.ImageSize, cfg.ImageChannels);
        var run = new StepAdaptiveRun(be, basePath, ds, s.OutDir, s.Options);
        AnsiConsole.MarkupLineInterpolated($"base [bold]{cfg.Name}[/] ({basePath}), widths {string.Join(", ", cfg.Widths)}; data {ds.Name}: {ds.Count:N0} images; device {be.Name}");
        AnsiConsole.WriteLine(run.Groups.Describe());

        StepAdaptiveResult result;
        using (var stop = new Common.StopSignal())
        {
            long perGroup = s.Options.StepsPerGroup, every = Math.Max(1, perGroup / 20);
            var sw = Stopwatch.StartNew();
            long done = 0;
            result = run.Run((g, r) =>
            {
                done++;
                if (r.Step % every != 0 && r.Step != perGroup) return;
                var losses = string.Join("  ", r.Losses.GroupBy(l => l.Width).OrderBy(x => x.Key).Select(x => $"w{x.Key:0.###}={x.Average(l => l.Loss):F4}"));
                double rate = done / sw.Elapsed.TotalSeconds;
                long left = (run.Groups.Count - g - 1) * perGroup + perGroup - r.Step;
                Console.WriteLine($"group {g + 1}/{run.Groups.Count} step {r.Step}/{perGroup}  {losses}  {rate:F2} steps/s  ETA {Common.Duration(left / rate)}");
            }, note => AnsiConsole.MarkupLineInterpolated($"[grey]{note}[/]"), stop.Token);
        }
        if (!result.Completed)
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]stopped[/]: {result.Reports.Count(r => r.Steps >= s.Options.StepsPerGroup)} of {run.Groups.Count} groups finished; --resume continues from each group's last checkpoint");
            return 130;
        }

        var report = new StringBuilder();
        report.AppendLine("# Step-adaptive training report").AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"Base `{basePath}` (model `{cfg.Name}`, widths {string.Join(", ", cfg.Widths)}); data {ds.Name}; device {be.Name}; seed {s.Seed}.");
        report.AppendLine(CultureInfo.InvariantCulture, $"Fine-tuning per group: {s.Options.StepsPerGroup} steps of batch {s.Options.FineTune.BatchSize}, lr {s.Options.FineTune.Lr}, EMA {s.Options.FineTune.EmaDecay}, sandwich over the widths up to the group's; pruning: {s.Options.Prune}.").AppendLine();
        report.AppendLine("## Plan").AppendLine().AppendLine("```").AppendLine(result.Plan.Describe(result.Groups)).AppendLine("```").AppendLine();
        report.AppendLine("Base model ε-MSE per group and width (fixed batches from the training data, same for every cell):").AppendLine();
        report.AppendLine("| group | t | " + string.Join(" | ", result.Plan.LossWidths.Select(w => $"w {w}")) + " | rise at the smallest width |");
        report.AppendLine("|---|---|" + string.Concat(result.Plan.LossWidths.Select(_ => "---:|")) + "---:|");
        var sens = StepAdaptivePlan.PruningSensitivity(result.Plan.BaseLoss);
        foreach (var g in result.Groups.Groups)
            report.AppendLine(CultureInfo.InvariantCulture, $"| {g.Index + 1} | {g.TFirst}–{g.TLast} | {string.Join(" | ", result.Plan.BaseLoss[g.Index].Select(v => v.ToString("F4", CultureInfo.InvariantCulture)))} | {sens[g.Index]:P1} |");
        report.AppendLine().AppendLine("## Groups").AppendLine();
        report.AppendLine("ε-MSE at the group's width on the group's timesteps (same fixed batches): the base model's own prefix, importance-ordered, and after fine-tuning (EMA).").AppendLine();
        report.AppendLine("| group | width | pruning | prefix | importance-ordered | fine-tuned | steps | fine-tuning min |").AppendLine("|---|---:|---|---:|---:|---:|---:|---:|");
        foreach (var r in result.Reports)
            report.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Group + 1} | {r.Width} | {r.Pruning} | {r.PrefixLoss:F4} | {(r.ImportanceLoss is { } il ? il.ToString("F4", CultureInfo.InvariantCulture) : "–")} | {r.FinalLoss:F4} | {r.Steps} | {r.TrainSeconds / 60:F1} |");
        report.AppendLine();

        if (s.Features is not null) report.Append(Compare(s, be, basePath, cfg, run, result));
        else report.AppendLine("No `--features` given: no sample-quality comparison (run `ddsm eval train-features`, then `--resume --features FILE`).");
        report.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"Grouped checkpoint: `{result.CheckpointPath}` (`ddsm sample --checkpoint` takes it). Total time of this invocation: {Common.Duration(total.Elapsed.TotalSeconds)}.");
        var reportPath = Path.Combine(s.OutDir, "report.md");
        Ddsm.IO.AtomicFile.WriteAllBytes(reportPath, Encoding.UTF8.GetBytes(report.ToString()));
        AnsiConsole.MarkupLineInterpolated($"[green]report:[/] {Path.GetFullPath(reportPath)}");
        return 0;
    }

    /// <summary>
    /// The comparison table on common random numbers: the base model at full width, with the searched
    /// strategy, and with the step-adaptive widths but no fine-tuning (what pruning + fine-tuning add);
    /// the step-adaptive model, and with the searched strategy capped at each group's width.
    /// </summary>
    private static string Compare(Settings s, Ddsm.Engine.Backend be, string basePath, UNetConfig cfg, StepAdaptiveRun run, StepAdaptiveResult result)
    {
        var sched = run.Schedule;
        var searched = s.Options.Searched;
        using var scoring = Scoring.Open(be, s.Features!, s.Data, s.Cache, s.Count);
        using var baseModel = new SlimUNet(be, cfg, 0);
        Checkpoint.LoadWeights(basePath, baseModel, ema: true);
        using var grouped = GroupedCheckpoint.Load(result.CheckpointPath, be);
        var so = new SamplerOptions(s.SamplerSteps);
        SamplingEvaluator Ev(Diffusion.IDenoiser den, ulong seed) =>
            scoring.Sampling(den, cfg, sched, s.Sampler, so, s.Count, s.Batch, seed, den is GroupedDenoiser g ? g.EffectiveStrategy : null);

        double baseSeconds = TrainRun.TrainingSeconds(Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(basePath)))!, "metrics.jsonl"));
        double? baseH = baseSeconds > 0 ? baseSeconds / 3600 : null, adaptH = baseH + result.FineTuneSeconds / 3600;
        var full = StepStrategy.Uniform(cfg.MaxWidth, sched.T);
        var fixedDen = grouped.Denoiser();
        var rows = new List<ComparisonRow>();
        void Log(string m) => Console.WriteLine("  " + m);
        rows.Add(StrategyComparison.Score("base, full width", Ev(baseModel, s.Seed), full, scoring.Scorer, baseH, Log));
        if (searched is not null)
            rows.Add(StrategyComparison.Score("base, DDSM searched strategy", Ev(baseModel, s.Seed), searched, scoring.Scorer, baseH, Log));
        rows.Add(StrategyComparison.Score("base, step-adaptive widths, not fine-tuned", Ev(baseModel, s.Seed), fixedDen.EffectiveStrategy(full), scoring.Scorer, baseH, Log));
        rows.Add(StrategyComparison.Score("step-adaptive", Ev(fixedDen, s.Seed), full, scoring.Scorer, adaptH, Log));
        if (searched is not null)
            rows.Add(StrategyComparison.Score("step-adaptive + searched (capped per group)", Ev(grouped.Denoiser(GroupWidthMode.CappedByGroup), s.Seed), searched,
                scoring.Scorer, adaptH, Log));
        var second = StrategyComparison.Score("base, full width (seed 2)", Ev(baseModel, s.Seed + 1000), full, scoring.Scorer, log: Log);
        double spread = Math.Abs(second.Scores.Fd - rows[0].Scores.Fd);
        var baseline = scoring.Scorer.Baseline(scoring.HeldOut, Math.Min(s.Count, scoring.HeldOut.Count));
        var table = StrategyComparison.Markdown(rows, baseline, spread);
        Console.WriteLine(table);
        return $"## Comparison\n\n{s.Sampler}, {s.SamplerSteps} steps, N = {s.Count} images per row from the same noise; features `{s.Features}`" +
               (s.Strategy is null ? "" : $"; searched strategy `{s.Strategy}`") + ". Training h: the base run's step time" +
               (baseH is null ? " (its metrics.jsonl was not found)" : "") + ", plus the groups' fine-tuning for the step-adaptive rows.\n\n" + table;
    }
}
