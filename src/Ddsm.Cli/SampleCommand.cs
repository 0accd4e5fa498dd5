using System.CommandLine;
using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Runs;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary><c>ddsm sample</c>: images from a checkpoint with a width per step.</summary>
internal static class SampleCommand
{
    public static Command Create()
    {
        var ckpt = Opt.Required<string>("--checkpoint",
            "checkpoint file (training or step-adaptive), or a run directory (its newest checkpoint, or a stepadapt " +
            "run's grouped one)");
        var sampler = Opt.Of<string>("--sampler", "ddim", "ddpm | ddim | edm | dpm++");
        var steps = Opt.Of<int>("--steps", 50, "sampling steps (ddpm always uses all T)");
        var eta = Opt.Of<double>("--eta", 0.0, "DDIM η");
        var strategy = Opt.Of<string?>("--strategy",
            "uniform:W or a strategy file (JSON or the DDSM plain list); default full width, or for a step-adaptive " +
            "checkpoint each group's own width (a strategy given is capped at the group's width)");
        var n = Opt.Of<int>("-n", 16, "number of images");
        var batch = Opt.Of<int>("--batch", 16, "images per forward");
        var outPath = Opt.Of<string>("--out", "samples.png",
            "PNG grid path (raw samples go beside it as .safetensors)");
        var noEma = Opt.Of<bool>("--no-ema", "use the raw weights instead of the EMA weights");
        var cls = Opt.Of<string?>("--class",
            "class-conditional models: a class index, or 'all' to cycle through the classes");
        var guidance = Opt.Of<double?>("--guidance",
            "classifier-free guidance scale s (1 = plain conditional, 0 = unconditional; default 1 with --class)");
        var profile = Opt.Of<bool>("--profile", "print the per-op and per-kernel profile at the end");
        var resample = Opt.Of<bool>("--resample",
            "stretch a strategy file of another length to the model's timesteps (else refused)");
        var force = Opt.Of<bool>("--force", "replace a checkpoint at --out (never the one sampled)");
        var device = Common.Device(); var seed = Common.Seed(); var tf32 = Common.Tf32();
        var cmd = new Command("sample", "sample images with a width-per-step strategy")
        {
            ckpt, sampler, steps, eta, strategy, n, batch, outPath, noEma, cls, guidance, profile, resample, force,
            device, tf32,
            seed,
        };
        cmd.SetAction(p => Common.Guard(() =>
        {
            var spec = new SampleSpec(Sampler.Parse(p.GetValue(sampler)!),
                new SamplerOptions(p.GetValue(steps), p.GetValue(eta)), p.GetValue(n), p.GetValue(batch),
                p.GetValue(seed)).Validate();
            var be = Devices.Create(p.GetValue(device)!, p.GetValue(tf32));
            var (outFile, checkpoint) = (p.GetValue(outPath)!, LoadedModel.Resolve(p.GetValue(ckpt)!));
            // Before the checkpoint is even read: a bad --out is an error in a second, not after the sampling.
            OutputFiles.Check([outFile, SampleRun.RawPath(outFile)], [checkpoint, p.GetValue(strategy) ?? ""],
                              p.GetValue(force));
            using var model = LoadedModel.Load(checkpoint, be,
                new LoadOptions(p.GetValue(strategy), Ema: !p.GetValue(noEma), Resample: p.GetValue(resample)));
            Profiler.Enabled = p.GetValue(profile);
            var r = SampleRun.Run(model, new SampleRequest(spec, p.GetValue(cls), p.GetValue(guidance)), outFile,
                Console.IsOutputRedirected ? null : pr =>
                    Console.Write($"\rimages {pr.BatchEnd}/{pr.Count}: step {pr.Step}/{pr.Steps}   "),
                p.GetValue(force));
            if (!Console.IsOutputRedirected) Console.WriteLine();
            AnsiConsole.WriteLine($"wrote {r.GridPath} and {r.RawPath}");
            if (model.Note is { } note) AnsiConsole.WriteLine(note);
            if (r.Labels is not null)
                AnsiConsole.WriteLine($"class {p.GetValue(cls)}, guidance scale {r.GuidanceScale} " +
                                      "(cond + uncond in one doubled batch: 2 forwards per evaluation)");
            AnsiConsole.WriteLine($"{spec.Sampler}, {r.Evaluations} evaluations/image: {r.Gflops:F2} GFLOPs/image " +
                                  $"(attention matmuls ≈ {r.AttentionShare:P1} of it), {r.MsPerImage:F1} ms/image " +
                                  $"wall");
            if (p.GetValue(profile))
            {
                Common.PrintProfile();
                Console.WriteLine(Profiler.TransferReport(r.Transfers, r.Steps, "sample step"));
                Console.WriteLine($"step graphs: {r.Graphs} ({r.GraphKind}) over {r.Steps} steps");
            }
            return 0;
        }));
        return cmd;
    }
}
