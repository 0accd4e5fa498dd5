using System.CommandLine;
using System.Diagnostics;
using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.Training;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary><c>ddsm sample</c>: images from a checkpoint with a width per step.</summary>
internal static class SampleCommand
{
    public static Command Create()
    {
        var ckpt = new Option<string>("--checkpoint") { Description = "checkpoint file, or a run directory (its newest checkpoint)", Required = true };
        var sampler = new Option<string>("--sampler") { Description = "ddpm | ddim | edm | dpm++", DefaultValueFactory = _ => "ddim" };
        var steps = new Option<int>("--steps") { Description = "sampling steps (ddpm always uses all T)", DefaultValueFactory = _ => 50 };
        var eta = new Option<double>("--eta") { Description = "DDIM η", DefaultValueFactory = _ => 0.0 };
        var strategy = new Option<string>("--strategy") { Description = "uniform:W or a strategy file (JSON or the DDSM plain list)", DefaultValueFactory = _ => "uniform:1" };
        var n = new Option<int>("-n") { Description = "number of images", DefaultValueFactory = _ => 16 };
        var batch = new Option<int>("--batch") { Description = "images per forward", DefaultValueFactory = _ => 16 };
        var outPath = new Option<string>("--out") { Description = "PNG grid path (raw samples go beside it as .safetensors)", DefaultValueFactory = _ => "samples.png" };
        var noEma = new Option<bool>("--no-ema") { Description = "use the raw weights instead of the EMA weights" };
        var device = Common.Device(); var seed = Common.Seed();
        var cmd = new Command("sample", "sample images with a width-per-step strategy") { ckpt, sampler, steps, eta, strategy, n, batch, outPath, noEma, device, seed };
        cmd.SetAction(p => Common.Guard(() => Run(p.GetValue(ckpt)!, Sampler.Parse(p.GetValue(sampler)!), new SamplerOptions(p.GetValue(steps), p.GetValue(eta)),
            p.GetValue(strategy)!, p.GetValue(n), p.GetValue(batch), p.GetValue(outPath)!, !p.GetValue(noEma), p.GetValue(device)!, p.GetValue(seed))));
        return cmd;
    }

    public static string ResolveCheckpoint(string path)
    {
        if (File.Exists(path)) return path;
        if (Directory.Exists(path))
        {
            var dir = Directory.Exists(Path.Combine(path, "checkpoints")) ? Path.Combine(path, "checkpoints") : path;
            return new CheckpointRotation(dir, int.MaxValue).Latest() ?? throw new FileNotFoundException($"no checkpoint in {dir}");
        }
        throw new FileNotFoundException($"checkpoint '{path}' not found", path);
    }

    public static int Run(string ckptPath, SamplerKind kind, SamplerOptions o, string strategySpec, int n, int batch, string outPath,
        bool ema, string device, ulong seed)
    {
        if (n <= 0 || batch <= 0) throw new ArgumentException("-n and --batch must be positive");
        var path = ResolveCheckpoint(ckptPath);
        var (cfg, meta, _) = Checkpoint.Read(path);
        var topts = meta.TryGetValue("train_options", out var tj) ? TrainOptions.FromJson(tj) : new TrainOptions();
        var sched = NoiseSchedule.ByName(topts.Schedule, topts.DiffusionSteps);
        var strategy = StepStrategy.Parse(strategySpec, sched.T);
        foreach (var w in strategy.DistinctWidths()) cfg.CheckWidth(w);
        var be = Common.CreateBackend(device);
        using var model = new SlimUNet(be, cfg, 0);
        Checkpoint.LoadWeights(path, model, ema);
        var s = Sampler.Create(kind);
        int d = cfg.ImageChannels * cfg.ImageSize * cfg.ImageSize;
        var all = new float[n * d];
        var rng = new Rng(seed);
        var (gflops, nfe) = UNetFlops.StrategyGflops(cfg, sched, strategy, kind, o);
        double attnShare = strategy.DistinctWidths().Average(w => { var f = UNetFlops.Forward(cfg, w); return (double)f.Attention / f.Total; });
        var sw = Stopwatch.StartNew();
        for (int start = 0; start < n; start += batch)
        {
            int b = Math.Min(batch, n - start);
            using var scope = new TensorScope();
            var z = new float[b * d];
            rng.FillNormal(z);
            var x = Tensor.FromArray(be, z, b, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize);
            s.Sample(model, sched, strategy, x, rng, o, (i, total) =>
            {
                if (!Console.IsOutputRedirected) Console.Write($"\rimages {start + b}/{n}: step {i}/{total}   ");
            });
            x.ToArray().CopyTo(all, start * d);
        }
        if (!Console.IsOutputRedirected) Console.WriteLine();
        double secs = sw.Elapsed.TotalSeconds;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        ImageGrid.WritePng(outPath, all, n, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize, (int)Math.Ceiling(Math.Sqrt(n)));
        var raw = Path.ChangeExtension(outPath, ".safetensors");
        SafeTensors.Write(raw, [SafeTensor.F32("samples", all, n, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize)],
            new Dictionary<string, string> { ["sampler"] = kind.ToString(), ["steps"] = o.Steps.ToString(), ["strategy"] = strategySpec, ["checkpoint"] = path });
        AnsiConsole.MarkupLineInterpolated($"wrote {outPath} and {raw}");
        AnsiConsole.MarkupLineInterpolated($"{kind}, {nfe} evaluations/image: {gflops:F2} GFLOPs/image (attention matmuls ≈ {attnShare:P1} of it), {secs / n * 1000:F1} ms/image wall");
        return 0;
    }
}
