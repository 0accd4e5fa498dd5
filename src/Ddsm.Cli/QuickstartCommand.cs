using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.Training;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary>
/// <c>ddsm quickstart</c>, the README's first command: on the embedded Fashion-MNIST subset, train a
/// small slimmable model, train the feature net, run a small strategy search, sample at every width,
/// with a DDSM-shaped strategy and with the searched one, and write one report. Every stage resumes
/// from what an interrupted earlier run left in --out.
/// </summary>
internal static class QuickstartCommand
{
    public static Command Create()
    {
        var steps = new Option<long>("--steps") { Description = "training steps", DefaultValueFactory = _ => 300 };
        var batch = new Option<int>("--batch") { Description = "images per step", DefaultValueFactory = _ => 16 };
        var channels = new Option<int>("--channels") { Description = "model channels (fmnist32 layout)", DefaultValueFactory = _ => 32 };
        var outDir = new Option<string>("--out") { Description = "run directory", DefaultValueFactory = _ => "runs/quickstart" };
        var samples = new Option<int>("--samples") { Description = "images per width in the sample grid", DefaultValueFactory = _ => 16 };
        var searchN = new Option<int>("--search-n") { Description = "images per search candidate", DefaultValueFactory = _ => 64 };
        var gens = new Option<int>("--generations") { Description = "search generations", DefaultValueFactory = _ => 3 };
        var seed = Common.Seed(); var device = Common.Device();
        var cmd = new Command("quickstart", "train, search, sample and report on the embedded Fashion-MNIST subset (no network needed)")
            { steps, batch, channels, outDir, samples, searchN, gens, seed, device };
        cmd.SetAction(p => Common.Guard(() => Run(p.GetValue(steps), p.GetValue(batch), p.GetValue(channels), p.GetValue(outDir)!,
            p.GetValue(samples), p.GetValue(searchN), p.GetValue(gens), p.GetValue(seed), p.GetValue(device)!)));
        return cmd;
    }

    private static int Run(long steps, int batch, int channels, string outDir, int samples, int searchN, int generations, ulong seed, string device)
    {
        var total = Stopwatch.StartNew();
        // Channels 32 keep every width's count a multiple of 16 groups only at 1/2 and 1; so the
        // quickstart model allows {0.5, 1} unless it is given 64 channels (then 1/4 … 1).
        var cfg = UNetConfig.Fmnist32 with
        {
            Name = "fmnist32-quick", ModelChannels = channels, Dropout = 0f,
            Widths = channels % 64 == 0 ? [0.25, 0.5, 0.75, 1.0] : [0.5, 1.0], HeadChannels = Math.Min(32, channels),
        };
        var opts = new TrainOptions { BatchSize = batch, Lr = 5e-4f, WarmupSteps = 50, EmaDecay = 0.995f, SandwichN = Math.Min(4, cfg.Widths.Length) };
        AnsiConsole.MarkupLine("[bold]1/4 training[/] on the embedded Fashion-MNIST subset");
        int rc = TrainCommand.Train(cfg, opts, new RunOptions(outDir, steps, CheckpointEvery: 100, KeepCheckpoints: 2, Resume: true),
            "fmnist-embedded", Common.DefaultCache, device, seed, profile: false);
        if (rc != 0) return rc;

        AnsiConsole.MarkupLine("[bold]2/4 feature net[/] for the quality metrics");
        var featPath = Path.Combine(outDir, "features.safetensors");
        if (!File.Exists(featPath))
            EvalCommand.TrainFeatures("fmnist-embedded", Common.DefaultCache, 300, device, seed, featPath).Dispose();

        AnsiConsole.MarkupLine("[bold]3/4 strategy search[/] (NSGA-II on FD and GFLOPs, small budget)");
        var searchDir = Path.Combine(outDir, "search");
        rc = SearchCommand.Run(new SearchCommand.Settings(outDir, featPath, "fmnist-embedded", Common.DefaultCache, device, searchDir,
            SamplerKind.Ddim, SamplerSteps: 10, Count: searchN, Batch: 32, Population: 8, Generations: generations, Mutation: 0.02,
            Block: 100, Lambda: 0.1, Resume: true, Seed: seed));
        if (rc != 0) return rc;

        AnsiConsole.MarkupLine("[bold]4/4 sampling[/] at every width, with a DDSM-shaped strategy and with the searched one");
        var be = Common.CreateBackend(device);
        var ckpt = SampleCommand.ResolveCheckpoint(outDir);
        using var model = new SlimUNet(be, cfg, 0);
        Checkpoint.LoadWeights(ckpt, model, ema: true);
        var sched = NoiseSchedule.Linear(opts.DiffusionSteps);
        var so = new SamplerOptions(50);
        var strategies = cfg.Widths.Select(w => ($"uniform {w:0.##}", StepStrategy.Uniform(w, sched.T))).ToList();
        // The shape of the DDSM release's CIFAR-10 schedule: full width for the last 27 % of the
        // denoising, the middle width next, the smallest for the noisiest 53 %.
        double mid = cfg.Widths[cfg.Widths.Length / 2], min = cfg.MinWidth;
        strategies.Add(("DDSM-shaped", new StepStrategy(Enumerable.Range(0, sched.T)
            .Select(t => t < 0.27 * sched.T ? 1.0 : t < 0.47 * sched.T ? mid : min).ToArray())));
        strategies.Add(("searched", StepStrategy.Parse(Path.Combine(searchDir, "best.json"), sched.T)));

        var rows = new List<string>();
        int d = cfg.ImageChannels * cfg.ImageSize * cfg.ImageSize;
        var grid = new float[strategies.Count * samples * d];
        for (int i = 0; i < strategies.Count; i++)
        {
            var (name, strat) = strategies[i];
            using var scope = new TensorScope();
            var rng = new Rng(seed + 99);
            var z = new float[samples * d];
            rng.FillNormal(z);
            var x = Tensor.FromArray(be, z, samples, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize);
            var sw = Stopwatch.StartNew();
            using var flops = new FlopCounter();
            Sampler.Create(SamplerKind.Ddim).Sample(model, sched, strat, x, rng, so);
            double ms = sw.Elapsed.TotalMilliseconds / samples;
            x.ToArray().CopyTo(grid, i * samples * d);
            rows.Add($"| {name} | {flops.Forward / 1e9 / samples:F3} | {ms:F1} |");
            AnsiConsole.MarkupLineInterpolated($"  {name,-14} {flops.Forward / 1e9 / samples,8:F3} GFLOPs/image  {ms,8:F1} ms/image");
        }
        var gridPath = Path.Combine(outDir, "samples.png");
        ImageGrid.WritePng(gridPath, grid, strategies.Count * samples, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize, samples);

        var report = new StringBuilder();
        report.AppendLine("# DDSM quickstart report").AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"Model `{cfg.Name}` ({model.ParameterCount:N0} parameters, widths {string.Join(", ", cfg.Widths)}), " +
                          $"trained {steps} sandwich steps of batch {batch} on the embedded 2,000-image Fashion-MNIST subset; device {be.Name}; seed {seed}.");
        report.AppendLine().AppendLine("DDIM, 50 steps, EMA weights. GFLOPs are counted by the engine's op counter during sampling (equal to the analytic count).").AppendLine();
        report.AppendLine("| strategy | GFLOPs/image | wall ms/image |").AppendLine("|---|---:|---:|");
        foreach (var r in rows) report.AppendLine(r);
        report.AppendLine().AppendLine("Rows of `samples.png`, top to bottom, follow the table (same initial noise in every row).");
        report.AppendLine().AppendLine("## Search").AppendLine();
        var searchReport = File.ReadAllLines(Path.Combine(searchDir, "report.md")).Skip(1);   // drop its title
        foreach (var line in searchReport) report.AppendLine(line.Replace("`best.", "`search/best.").Replace("`pareto.", "`search/pareto."));
        report.AppendLine().AppendLine("A 300-step model on 2,000 images is a smoke test of the whole pipeline, not a quality result: " +
                                       "compare FD with the real-vs-real baseline row, and see bench/RESULTS.md for the larger runs.");
        report.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"Total time: {Common.Duration(total.Elapsed.TotalSeconds)}.");
        var reportPath = Path.Combine(outDir, "report.md");
        File.WriteAllText(reportPath, report.ToString());
        AnsiConsole.MarkupLineInterpolated($"[green]report:[/] {Path.GetFullPath(reportPath)}  (samples: {gridPath})");
        return 0;
    }
}
