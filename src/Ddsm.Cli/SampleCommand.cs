using System.CommandLine;
using System.Diagnostics;
using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.StepAdaptive;
using Ddsm.Training;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary><c>ddsm sample</c>: images from a checkpoint with a width per step.</summary>
internal static class SampleCommand
{
    public static Command Create()
    {
        var ckpt = new Option<string>("--checkpoint") { Description = "checkpoint file (training or step-adaptive), or a run directory (its newest checkpoint, or a stepadapt run's grouped one)", Required = true };
        var sampler = new Option<string>("--sampler") { Description = "ddpm | ddim | edm | dpm++", DefaultValueFactory = _ => "ddim" };
        var steps = new Option<int>("--steps") { Description = "sampling steps (ddpm always uses all T)", DefaultValueFactory = _ => 50 };
        var eta = new Option<double>("--eta") { Description = "DDIM η", DefaultValueFactory = _ => 0.0 };
        var strategy = new Option<string?>("--strategy") { Description = "uniform:W or a strategy file (JSON or the DDSM plain list); default full width, or for a step-adaptive checkpoint each group's own width (a strategy given is capped at the group's width)" };
        var n = new Option<int>("-n") { Description = "number of images", DefaultValueFactory = _ => 16 };
        var batch = new Option<int>("--batch") { Description = "images per forward", DefaultValueFactory = _ => 16 };
        var outPath = new Option<string>("--out") { Description = "PNG grid path (raw samples go beside it as .safetensors)", DefaultValueFactory = _ => "samples.png" };
        var noEma = new Option<bool>("--no-ema") { Description = "use the raw weights instead of the EMA weights" };
        var cls = new Option<string?>("--class") { Description = "class-conditional models: a class index, or 'all' to cycle through the classes" };
        var guidance = new Option<double?>("--guidance") { Description = "classifier-free guidance scale s (1 = plain conditional, 0 = unconditional; default 1 with --class)" };
        var profile = new Option<bool>("--profile") { Description = "print the per-op and per-kernel profile at the end" };
        var device = Common.Device(); var seed = Common.Seed(); var tf32 = Common.Tf32();
        var cmd = new Command("sample", "sample images with a width-per-step strategy") { ckpt, sampler, steps, eta, strategy, n, batch, outPath, noEma, cls, guidance, profile, device, tf32, seed };
        cmd.SetAction(p => Common.Guard(() => Run(p.GetValue(ckpt)!, Sampler.Parse(p.GetValue(sampler)!), new SamplerOptions(p.GetValue(steps), p.GetValue(eta)),
            p.GetValue(strategy), p.GetValue(n), p.GetValue(batch), p.GetValue(outPath)!, !p.GetValue(noEma), p.GetValue(device)!, p.GetValue(seed),
            p.GetValue(cls), p.GetValue(guidance), p.GetValue(tf32), p.GetValue(profile))));
        return cmd;
    }

    public static string ResolveCheckpoint(string path)
    {
        if (File.Exists(path)) return path;
        if (Directory.Exists(path))
        {
            var grouped = Path.Combine(path, "stepadapt.safetensors");
            if (File.Exists(grouped)) return grouped;
            var dir = Directory.Exists(Path.Combine(path, "checkpoints")) ? Path.Combine(path, "checkpoints") : path;
            return new CheckpointRotation(dir, int.MaxValue).Latest() ?? throw new FileNotFoundException($"no checkpoint in {dir}");
        }
        throw new FileNotFoundException($"checkpoint '{path}' not found", path);
    }

    /// <summary>Labels of images 0..n−1 for --class: K for all, or i mod NumClasses for 'all'; null without --class.</summary>
    public static int[]? ParseClasses(string? spec, UNetConfig cfg, int n)
    {
        if (spec is null) return null;
        if (cfg.NumClasses <= 0) throw new ArgumentException($"--class: model '{cfg.Name}' is unconditional (trained without --classes)");
        if (spec.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return Enumerable.Range(0, n).Select(i => i % cfg.NumClasses).ToArray();
        if (!int.TryParse(spec, System.Globalization.CultureInfo.InvariantCulture, out int k) || k < 0 || k >= cfg.NumClasses)
            throw new ArgumentException($"--class: '{spec}' is not 'all' or a class in [0, {cfg.NumClasses - 1}]");
        return Enumerable.Repeat(k, n).ToArray();
    }

    public static int Run(string ckptPath, SamplerKind kind, SamplerOptions o, string? strategySpec, int n, int batch, string outPath,
        bool ema, string device, ulong seed, string? classSpec = null, double? guidance = null, bool tf32 = false, bool profile = false)
    {
        if (n <= 0 || batch <= 0) throw new ArgumentException("-n and --batch must be positive");
        var path = ResolveCheckpoint(ckptPath);
        var be = Common.CreateBackend(device, tf32);
        using var loaded = Load(path, be, strategySpec, ema);
        var (cfg, sched, strategy, costStrategy) = (loaded.Config, loaded.Schedule, loaded.Strategy, loaded.CostStrategy);
        var labels = ParseClasses(classSpec, cfg, n);
        if (guidance is not null && labels is null) throw new ArgumentException("--guidance needs --class (the class to guide towards)");
        double scale = guidance ?? 1.0;
        var s = Sampler.Create(kind);
        int d = cfg.ImageChannels * cfg.ImageSize * cfg.ImageSize;
        var all = new float[n * d];
        var rng = new Rng(seed);
        var (gflops, nfe) = UNetFlops.StrategyGflops(cfg, sched, costStrategy, kind, o, forwardsPerEvaluation: labels is null ? 1 : 2);
        double attnShare = costStrategy.DistinctWidths().Average(w => { var f = UNetFlops.Forward(cfg, w); return (double)f.Attention / f.Total; });
        Profiler.Enabled = profile;
        var sw = Stopwatch.StartNew();
        for (int start = 0; start < n; start += batch)
        {
            int b = Math.Min(batch, n - start);
            using var scope = new TensorScope();
            var z = new float[b * d];
            rng.FillNormal(z);
            var x = Tensor.FromArray(be, z, b, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize);
            IDenoiser den = labels is null ? loaded.Denoiser : new GuidedDenoiser((SlimUNet)loaded.Denoiser, labels[start..(start + b)], scale);
            s.Sample(den, sched, strategy, x, rng, o, (i, total) =>
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
            new Dictionary<string, string> { ["sampler"] = kind.ToString(), ["steps"] = o.Steps.ToString(), ["strategy"] = loaded.StrategyName, ["checkpoint"] = path,
                ["class"] = classSpec ?? "", ["guidance"] = labels is null ? "" : scale.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        AnsiConsole.MarkupLineInterpolated($"wrote {outPath} and {raw}");
        if (loaded.Note is { } note) AnsiConsole.MarkupLineInterpolated($"{note}");
        if (labels is not null) AnsiConsole.MarkupLineInterpolated($"class {classSpec}, guidance scale {scale} (cond + uncond in one doubled batch: 2 forwards per evaluation)");
        AnsiConsole.MarkupLineInterpolated($"{kind}, {nfe} evaluations/image: {gflops:F2} GFLOPs/image (attention matmuls ≈ {attnShare:P1} of it), {secs / n * 1000:F1} ms/image wall");
        if (profile) Common.PrintProfile();
        return 0;
    }

    /// <summary>
    /// The model behind a checkpoint, ready to sample: the denoiser, the strategy to pass it and the widths it
    /// really runs (for the FLOPs count). A step-adaptive checkpoint dispatches to each group's model by t:
    /// at the group's own width, or with a strategy given (or <paramref name="capGroups"/>), at min(strategy width, group width).
    /// </summary>
    public sealed record LoadedModel(IDenoiser Denoiser, UNetConfig Config, NoiseSchedule Schedule, StepStrategy Strategy,
        Func<StepStrategy, StepStrategy>? WidthsRun, string StrategyName, string? Note, IDisposable Owner) : IDisposable
    {
        /// <summary>The widths the denoiser really runs for <see cref="Strategy"/> (what FLOPs are counted on).</summary>
        public StepStrategy CostStrategy => WidthsRun?.Invoke(Strategy) ?? Strategy;
        public void Dispose() => Owner.Dispose();
    }

    public static LoadedModel Load(string path, Backend be, string? strategySpec, bool ema, bool capGroups = false)
    {
        var file = SafeTensors.Read(path);   // read once: a grouped checkpoint holds every group's weights
        if (GroupedCheckpoint.IsGrouped(file))
        {
            if (!ema) throw new ArgumentException("--no-ema: a step-adaptive checkpoint holds only the groups' EMA weights");
            var gm = GroupedCheckpoint.Load(file, path, be);
            try
            {
                var given = strategySpec is null ? null : StepStrategy.Parse(strategySpec, gm.Schedule.T);
                if (given is not null) foreach (var w in given.DistinctWidths()) gm.BaseConfig.CheckWidth(w);
                bool capped = given is not null || capGroups;
                var den = gm.Denoiser(capped ? GroupWidthMode.CappedByGroup : GroupWidthMode.FixedPerGroup);
                var strategy = given ?? StepStrategy.Uniform(gm.BaseConfig.MaxWidth, gm.Schedule.T);
                var ranges = string.Join(", ", gm.Groups.Groups.Select(g => $"t {g.TFirst}–{g.TLast} → width {gm.GroupWidths[g.Index]}"));
                return new LoadedModel(den, gm.BaseConfig, gm.Schedule, strategy, den.EffectiveStrategy,
                    strategySpec ?? "step-adaptive", $"step-adaptive: {gm.Groups.Count} group models ({ranges}){(capped ? ", strategy widths capped at each group's" : "")}", gm);
            }
            catch { gm.Dispose(); throw; }
        }
        var (cfg, meta, _) = Checkpoint.Read(file, path);
        var topts = Checkpoint.TrainOptionsOf(meta);
        var sched = NoiseSchedule.ByName(topts.Schedule, topts.DiffusionSteps);
        var st = StepStrategy.Parse(strategySpec ?? "uniform:1", sched.T);
        foreach (var w in st.DistinctWidths()) cfg.CheckWidth(w);
        var model = new SlimUNet(be, cfg, 0);
        try { Checkpoint.LoadWeights(file, path, model, ema); }
        catch { model.Dispose(); throw; }
        return new LoadedModel(model, cfg, sched, st, null, strategySpec ?? "uniform:1", null, model);
    }
}
