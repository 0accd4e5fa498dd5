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
        var ckpt = new Option<string>("--checkpoint")
        {
            Description = "checkpoint file (training or step-adaptive), or a run directory (its newest checkpoint, " +
                          "or a stepadapt run's grouped one)",
            Required = true,
        };
        var sampler = new Option<string>("--sampler")
        {
            Description = "ddpm | ddim | edm | dpm++",
            DefaultValueFactory = _ => "ddim",
        };
        var steps = new Option<int>("--steps")
        {
            Description = "sampling steps (ddpm always uses all T)",
            DefaultValueFactory = _ => 50,
        };
        var eta = new Option<double>("--eta") { Description = "DDIM η", DefaultValueFactory = _ => 0.0 };
        var strategy = new Option<string?>("--strategy")
        {
            Description = "uniform:W or a strategy file (JSON or the DDSM plain list); default full width, or for a " +
                          "step-adaptive checkpoint each group's own width (a strategy given is capped at the " +
                          "group's width)",
        };
        var n = new Option<int>("-n") { Description = "number of images", DefaultValueFactory = _ => 16 };
        var batch = new Option<int>("--batch") { Description = "images per forward", DefaultValueFactory = _ => 16 };
        var outPath = new Option<string>("--out")
        {
            Description = "PNG grid path (raw samples go beside it as .safetensors)",
            DefaultValueFactory = _ => "samples.png",
        };
        var noEma = new Option<bool>("--no-ema") { Description = "use the raw weights instead of the EMA weights" };
        var cls = new Option<string?>("--class")
        {
            Description = "class-conditional models: a class index, or 'all' to cycle through the classes",
        };
        var guidance = new Option<double?>("--guidance")
        {
            Description =
                "classifier-free guidance scale s (1 = plain conditional, 0 = unconditional; default 1 with --class)",
        };
        var profile = new Option<bool>("--profile")
        {
            Description = "print the per-op and per-kernel profile at the end",
        };
        var resample = new Option<bool>("--resample")
        {
            Description = "stretch a strategy file of another length to the model's timesteps (else refused)",
        };
        var force = new Option<bool>("--force")
        {
            Description = "replace a checkpoint at --out (never the one sampled)",
        };
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
