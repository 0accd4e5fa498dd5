using System.CommandLine;
using System.Diagnostics;
using Ddsm.Diffusion;
using Ddsm.Runs;
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
    public static Command Create()
    {
        var baseCk = Opt.Required<string>("--base", "base checkpoint (ddsm train) or its run directory");
        var data = Opt.Of<string?>("--data",
            "training data (as train --data; default: the base's, else fmnist-embedded)");
        var groups = Opt.Of<int>("--groups", 4, "timestep groups");
        var grouping = Opt.Of<string>("--grouping", "logsnr",
            "logsnr (equal log-SNR intervals) | count (equal step counts)");
        var k = Opt.Of<double>("--k", 0.5,
            "FLOPs fraction of the smallest group's model: group i of N gets (i/N + (N−i)/N·k)·F");
        var order = Opt.Of<string>("--order", "auto",
            "auto (the end the searched strategy narrows, else the end whose ε-MSE rises less when narrowed, is " +
            "easy) | high-noise-more | low-noise-more");
        var prune = Opt.Of<string>("--prune", "auto",
            "auto (importance where it lowers the group's loss at its width, else the base's prefix) | importance " +
            "(Taylor-ordered channels) | prefix (the base's own)");
        var steps = Opt.Of<long>("--steps", 500, "fine-tuning steps per group");
        var training = new TrainingFlags(new TrainOptions { Lr = 1e-4f, WarmupSteps = 50, EmaDecay = 0.999f },
            "images per fine-tuning step", "widths per step (the group's width, the smallest, random ones between)");
        var impBatches = Opt.Of<int>("--importance-batches", 8, "batches of 16 for the Taylor importance");
        var outDir = Opt.Of<string>("--out", "runs/stepadapt", "run directory");
        var ckEvery = Opt.Of<int>("--checkpoint-every", 100, "steps between checkpoints of a group");
        var resume = Opt.Of<bool>("--resume", "continue the run in --out");
        var features = Opt.Of<string?>("--features",
            "feature net (ddsm eval train-features): score the result against the base model");
        var strategy = Opt.Of<string?>("--strategy",
            "the DDSM searched strategy of the base model (search's best.json): orders the budget under --order " +
            "auto, and adds the searched and combined rows");
        var sampler = Opt.Of<string>("--sampler", "ddim", "sampler for the comparison");
        var sampleSteps = Opt.Of<int>("--sample-steps", 10, "sampling steps for the comparison");
        var count = Opt.Of<int>("-n", 256, "images per comparison row (same noise in every row)");
        var evalBatch = Opt.Of<int>("--eval-batch", 64, "images per forward in the comparison");
        var resample = Opt.Of<bool>("--resample",
            "stretch a --strategy of another length to the model's timesteps (else refused)");
        var device = Common.Device(); var seed = Common.Seed(); var cache = Common.CacheDir();
        var cmd = new Command("stepadapt",
                              "step-adaptive training: SNR timestep groups, one importance-pruned fine-tuned " +
                              "model per group")
        {
            baseCk, data, groups, grouping, k, order, prune, steps, impBatches, outDir, ckEvery, resume, features,
            strategy, sampler, sampleSteps, count, evalBatch, resample, device, seed, cache,
        };
        training.AddTo(cmd, steps);
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
                    "auto" => BudgetOrder.Auto, "high-noise-more" => BudgetOrder.HighNoiseGetsMore,
                    "low-noise-more" => BudgetOrder.LowNoiseGetsMore,
                    var v =>
                        throw new ArgumentException($"--order: '{v}' is not auto, high-noise-more or low-noise-more"),
                },
                Prune = p.GetValue(prune)!.ToLowerInvariant() switch
                {
                    "importance" => PruneMode.Importance, "prefix" => PruneMode.Prefix, "auto" => PruneMode.Auto,
                    var v => throw new ArgumentException($"--prune: '{v}' is not importance, prefix or auto"),
                },
                FineTune = training.Read(p, new TrainOptions()),
                StepsPerGroup = p.GetValue(steps), CheckpointEvery = p.GetValue(ckEvery),
                Importance =
                    new ImportanceOptions(Batches: p.GetValue(impBatches), BatchSize: 16, Seed: p.GetValue(seed) + 3),
                Resume = p.GetValue(resume), Seed = p.GetValue(seed),
            };
            return Run(
                new StepAdaptSettings(p.GetValue(baseCk)!, p.GetValue(data), p.GetValue(cache)!, p.GetValue(outDir)!, o,
                                      p.GetValue(features), p.GetValue(strategy), Sampler.Parse(p.GetValue(sampler)!),
                                      p.GetValue(sampleSteps),
                p.GetValue(count), p.GetValue(evalBatch), p.GetValue(seed), p.GetValue(resample)), p.GetValue(device)!);
        }));
        return cmd;
    }

    /// <summary>Trains with progress lines (stoppable: 130, resumable), then compares and writes the report.</summary>
    public static int Run(StepAdaptSettings settings, string device)
    {
        var session = StepAdaptSession.Open(settings, Devices.Create(device));
        var (s, run, cfg, ds) = (session.Settings, session.Run, session.BaseConfig, session.Data);
        AnsiConsole.WriteLine($"base {cfg.Name} ({session.BasePath}), widths {string.Join(", ", cfg.Widths)}; " +
                              $"data {ds.Name}: {ds.Count:N0} images; device {session.Backend.Name}");
        AnsiConsole.WriteLine(run.Groups.Describe());

        StepAdaptiveResult result;
        int stopCode;
        using (var stop = new Common.StopSignal())
        {
            long perGroup = s.Options.StepsPerGroup, every = Math.Max(1, perGroup / 20);
            var sw = Stopwatch.StartNew();
            long done = 0;
            result = run.Run((g, r) =>
            {
                done++;
                if (r.Step % every != 0 && r.Step != perGroup) return;
                var losses = string.Join("  ", r.Losses.GroupBy(l => l.Width).OrderBy(x => x.Key)
                    .Select(x => $"w{x.Key:0.###}={x.Average(l => l.Loss):F4}"));
                double rate = done / sw.Elapsed.TotalSeconds;
                long left = (run.Groups.Count - g - 1) * perGroup + perGroup - r.Step;
                Console.WriteLine($"group {g + 1}/{run.Groups.Count} step {r.Step}/{perGroup}  {losses}  {rate:F2} " +
                                  $"steps/s  ETA {Durations.Text(left / rate)}");
            }, note => AnsiConsole.MarkupLineInterpolated($"[grey]{note}[/]"), stop.Token);
            stopCode = stop.ExitCode;
        }
        if (!result.Completed)
        {
            int finished = result.Reports.Count(r => r.Steps >= s.Options.StepsPerGroup);
            AnsiConsole.WriteLine($"stopped: {finished} of {run.Groups.Count} groups finished; " +
                                  "--resume continues from each group's last checkpoint");
            return stopCode;
        }
        var outcome = session.Finish(result, Console.WriteLine);
        if (outcome.ComparisonTable is { } table) Console.WriteLine(table);
        AnsiConsole.WriteLine($"report: {Path.GetFullPath(outcome.ReportPath)}");
        return 0;
    }
}
