using System.CommandLine;
using System.Diagnostics;
using Ddsm.Engine;
using Ddsm.Model;
using Ddsm.Runs;
using Ddsm.Training;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary><c>ddsm train</c>: sandwich-rule training of the slimmable UNet with checkpoints and resume.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var preset =
            Opt.Of<string>("--preset", "fmnist32", "model preset: " + string.Join(", ", UNetConfig.PresetNames));
        var channels = Opt.Of<int?>("--channels", "override the preset's model channels");
        var widths = Opt.Of<string?>("--widths", "allowed widths, e.g. 0.25,0.5,0.75,1");
        var dropout = Opt.Of<float?>("--dropout", "override the preset's dropout");
        var mult = Opt.Of<string?>("--mult", "override the channel multipliers, e.g. 1,2,2");
        var resBlocks = Opt.Of<int?>("--res-blocks", "override the ResBlocks per level");
        var attention = Opt.Of<string?>("--attention", "override the attention resolutions, e.g. 16,8");
        var classes = Opt.Of<int>("--classes", 0,
            "class-conditional with N classes (0 = unconditional); must match the data set's class count");
        var labelDrop = Opt.Of<double>("--label-dropout", 0.1,
            "probability a training label is replaced by the null class (classifier-free guidance)");
        var data = Opt.Of<string?>("--data",
            "fmnist-embedded | fashion-mnist | mnist | idx:IMAGES,LABELS | cifar10:DIR | png:DIR | cache:FILE " +
            "(default: with --resume the checkpoint's, else fmnist-embedded)");
        var steps = Opt.Of<long>("--steps", 1000, "total training steps");
        var training =
            new TrainingFlags(new TrainOptions(), "images per step", "widths per step (max, min, n−2 random)");
        var distill = Opt.Of<bool>("--distill", "in-place distillation from the largest width");
        var flip = Opt.Of<bool>("--flip", "random horizontal flips");
        var outDir = Opt.Of<string>("--out", "runs/train", "run directory (checkpoints, metrics.jsonl, samples)");
        var ckEvery = Opt.Of<int>("--checkpoint-every", 250, "steps between checkpoints");
        var keep = Opt.Of<int>("--keep", 3, "checkpoints to keep");
        var sampleEvery = Opt.Of<int>("--sample-every", 0, "steps between sample grids (0 = never)");
        var resume = Opt.Of<bool>("--resume", "continue from the newest checkpoint in --out");
        var force = Opt.Of<bool>("--force", "start over in an --out that holds a run, replacing it");
        var profile = Opt.Of<bool>("--profile", "print the per-op and per-kernel profile at the end");
        var logEvery = Opt.Of<int>("--log-every", 10,
            "steps between reads of the losses from the device (metrics keep one line per step)");
        var device = Common.Device(); var seed = Common.Seed(); var cache = Common.CacheDir(); var tf32 = Common.Tf32();
        var cmd = new Command("train", "train the slimmable UNet with the sandwich rule")
        {
            preset, channels, widths, dropout, mult, resBlocks, attention, classes, labelDrop, data, steps, distill,
            flip, outDir, ckEvery, keep, sampleEvery, resume, force, profile, logEvery, device, tf32,
            seed, cache,
        };
        training.AddTo(cmd, steps);
        cmd.SetAction(p => Common.Guard(() =>
        {
            var cfg = UNetConfig.Preset(p.GetValue(preset)!);
            bool custom = false;
            UNetConfig Set(UNetConfig c) { custom = true; return c; }
            if (p.GetValue(channels) is int c) cfg = Set(cfg with { ModelChannels = c });
            if (p.GetValue(widths) is string ws) cfg = Set(cfg with { Widths = ParseWidths(ws) });
            if (p.GetValue(dropout) is float d) cfg = Set(cfg with { Dropout = d });
            if (p.GetValue(mult) is string m) cfg = Set(cfg with { ChannelMult = Ints(m, "--mult") });
            if (p.GetValue(resBlocks) is int rb) cfg = Set(cfg with { NumResBlocks = rb });
            if (p.GetValue(attention) is string at)
                cfg = Set(cfg with { AttentionResolutions = Ints(at, "--attention") });
            if (custom) cfg = cfg with { Name = cfg.Name + "-custom" };
            int k = p.GetValue(classes);
            if (k < 0) throw new ArgumentException($"--classes must be ≥ 0, got {k}");
            if (k > 0) cfg = cfg with { NumClasses = k };
            var opts = training.Read(p, new TrainOptions
            {
                InplaceDistill = p.GetValue(distill), HorizontalFlip = p.GetValue(flip),
                LabelDropout = p.GetValue(labelDrop),
            });
            var run = new RunOptions(p.GetValue(outDir)!, p.GetValue(steps), p.GetValue(ckEvery), p.GetValue(keep),
                p.GetValue(sampleEvery), Resume: p.GetValue(resume), Force: p.GetValue(force),
                LogEvery: p.GetValue(logEvery));
            return Train(cfg, opts, run, p.GetValue(data), p.GetValue(cache)!, p.GetValue(device)!, p.GetValue(seed),
                p.GetValue(profile), p.GetValue(tf32));
        }));
        return cmd;
    }

    private static int[] Ints(string s, string what) =>
        s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
         .Select(v => int.TryParse(v, out var x) ? x : throw new ArgumentException($"{what}: '{v}' is not an integer"))
         .ToArray();

    public static double[] ParseWidths(string s) =>
        s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
         .Select(v => double.TryParse(v, System.Globalization.CultureInfo.InvariantCulture, out var x) ? x
             : throw new ArgumentException($"--widths: '{v}' is not a number")).Order().ToArray();

    /// <summary>
    /// Opens the run (resuming when asked), trains with a progress display, and says where things went.
    /// </summary>
    public static int Train(UNetConfig cfg, TrainOptions opts, RunOptions run, string? dataSpec, string cache,
        string device, ulong seed, bool profile, bool tf32 = false)
    {
        using var session = TrainSession.Open(cfg, opts, run, dataSpec, cache, Devices.Create(device, tf32), seed);
        var (model, trainer, loop, ds) = (session.Model, session.Trainer, session.Loop, session.Data);
        AnsiConsole.WriteLine($"model {cfg.Name}: {model.ParameterCount:N0} parameters, widths " +
                              $"{string.Join(", ", cfg.Widths)}; data {session.DataSpec} ({ds.Name}): " +
                              $"{ds.Count:N0} images; device {session.Backend.Name}");
        if (cfg.NumClasses > 0)
            AnsiConsole.WriteLine(
                $"class-conditional: {cfg.NumClasses} classes + null class, label dropout {opts.LabelDropout}");
        foreach (var note in session.Notes) AnsiConsole.WriteLine(note);
        if (session.ResumedFrom is { } from) AnsiConsole.WriteLine($"resumed from {from} at step {trainer.Step}");
        if (session.Finished)
        {
            AnsiConsole.WriteLine($"already at step {trainer.Step} ≥ {run.Steps}; nothing to do");
            return 0;
        }
        Profiler.Enabled = profile;

        using var stop = new Common.StopSignal();
        var sw = Stopwatch.StartNew();
        long start = trainer.Step;
        var last = new Dictionary<double, double>();
        string Status(StepResult r)
        {
            foreach (var (w, l) in r.Losses) last[w] = last.TryGetValue(w, out var o) ? 0.9 * o + 0.1 * l : l;
            double rate = (r.Step - start) / sw.Elapsed.TotalSeconds;
            var losses = string.Join("  ", last.OrderBy(kv => kv.Key).Select(kv => $"w{kv.Key:0.###}={kv.Value:F4}"));
            return $"step {r.Step}/{run.Steps}  {losses}  {rate:F2} steps/s  ETA " +
                   $"{Durations.Text((run.Steps - r.Step) / rate)}";
        }
        if (Common.Interactive)
        {
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                         new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("training", maxValue: run.Steps);
                    task.Value = trainer.Step;
                    loop.Run(r => { task.Value = r.Step; task.Description = Markup.Escape(Status(r)); },
                        note => AnsiConsole.MarkupLineInterpolated($"[grey]{note}[/]"), stop.Token);
                });
        }
        else
        {
            long every = Math.Max(1, run.Steps / 50);
            loop.Run(r => { if (r.Step % every == 0 || r.Step == run.Steps) Console.WriteLine(Status(r)); },
                note => Console.WriteLine(note), stop.Token);
        }
        if (profile)
        {
            Common.PrintProfile();
            Console.WriteLine(Profiler.TransferReport(loop.StepTransfers, loop.StepsRun, "training step"));
            Console.WriteLine($"step graphs: {loop.StepGraphs} (" +
                              (trainer.StepGraphs ? session.Backend.StepGraphKind : "off") +
                              $") over {loop.StepsRun} steps");
        }
        if (stop.Requested && trainer.Step < run.Steps)
        {
            AnsiConsole.WriteLine($"stopped by {stop.Signal} at step {trainer.Step} of {run.Steps} (checkpoint " +
                                  $"saved); --resume continues");
            return stop.ExitCode;
        }
        AnsiConsole.WriteLine(
            $"done: step {trainer.Step} in {Durations.Text(sw.Elapsed.TotalSeconds)}; metrics {loop.MetricsPath}");
        return 0;
    }
}
