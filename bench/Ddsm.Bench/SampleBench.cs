using System.Diagnostics;
using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Model;

namespace Ddsm.Bench;

/// <summary>
/// Does the FLOPs saving of a step strategy become wall-clock saving? Samples with DDIM at full
/// width and with the shape of the DDSM release's CIFAR-10 schedule (full width for the last 27 %
/// of the denoising, 0.75 next, 0.5 for the noisiest 53 %), interleaved in one run, and reports the
/// median wall time per image of each, both savings, and their ratio (target ≥ 0.8).
/// Args: [preset=fmnist32] [steps=20] [batch=16] [reps=5].
/// </summary>
public static class SampleBench
{
    public static void Register() =>
        Program.Register("sample", "sampling wall time: full width vs DDSM-shaped strategy (CPU)", Run);

    private static int Run(string[] args)
    {
        var cfg = UNetConfig.Preset(args.Length > 0 ? args[0] : "fmnist32");
        int steps = args.Length > 1 ? int.Parse(args[1]) : 20, batch = args.Length > 2 ? int.Parse(args[2]) : 16;
        int reps = args.Length > 3 ? int.Parse(args[3]) : 5;
        var be = CpuBackend.Instance;
        using var model = new SlimUNet(be, cfg, 1);
        var sched = NoiseSchedule.Linear();
        double Near(double w) => cfg.Widths.OrderBy(v => Math.Abs(v - w)).First();
        var ddsm = new StepStrategy(Enumerable.Range(0, sched.T)
            .Select(t => t < 0.27 * sched.T ? 1.0 : t < 0.47 * sched.T ? Near(0.75) : Near(0.5)).ToArray());
        var full = StepStrategy.Uniform(1.0, sched.T);
        var o = new SamplerOptions(steps);
        var ddim = Sampler.Create(SamplerKind.Ddim);
        var (gFull, _) = ddim.Cost(model, sched, full, o);
        var (gDdsm, _) = ddim.Cost(model, sched, ddsm, o);

        var spec = new SampleSpec(SamplerKind.Ddim, o, batch, batch, 5);
        double TimeOne(StepStrategy s)
        {
            var sw = Stopwatch.StartNew();
            BatchSampler.Sample(model, sched, s, spec);
            return sw.Elapsed.TotalMilliseconds / batch;
        }
        TimeOne(full); TimeOne(ddsm);                          // warm-up (JIT, pools)
        var tf = new List<double>(); var td = new List<double>();
        for (int r = 0; r < reps; r++) { tf.Add(TimeOne(full)); td.Add(TimeOne(ddsm)); }
        double mf = Median(tf), md = Median(td);
        double flopSave = 1 - gDdsm / gFull, wallSave = 1 - md / mf;
        Console.WriteLine($"model {cfg.Name}, DDIM {steps} steps, batch {batch}, {reps} interleaved reps, " +
                          $"{Environment.ProcessorCount} threads");
        Console.WriteLine($"{"strategy",-12} {"GFLOPs/img",11} {"ms/img (median)",16} {"all reps",30}");
        Console.WriteLine(
            $"{"full",-12} {gFull,11:F2} {mf,16:F1} {string.Join(" ", tf.Select(v => v.ToString("F0"))),30}");
        Console.WriteLine(
            $"{"DDSM-shaped",-12} {gDdsm,11:F2} {md,16:F1} {string.Join(" ", td.Select(v => v.ToString("F0"))),30}");
        Console.WriteLine(
            $"FLOPs saving {flopSave:P1}, wall saving {wallSave:P1}, ratio {wallSave / flopSave:F2} (target ≥ 0.80)");
        return 0;
    }

    internal static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }
}
