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
/// median wall time per image of each, both savings, and their ratio (target ≥ 0.8), also as the median of
/// per-rep ratios against the full-width run of the same rep (paired); also uniform ½ and ¼
/// width, whose wall saving must stay ≥ 0.9 of their FLOPs saving (issue 16).
/// Args: [preset=fmnist32] [steps=20] [batch=16] [reps=7] [profile] [threads=N] [clock=cpu] (`profile`: then each
/// strategy's op and kernel profile over one more run; `threads=1 clock=cpu`: one thread timed by the process's CPU
/// time, which a loaded or noisy machine disturbs far less than the default 2-thread wall time).
/// </summary>
public static class SampleBench
{
    public static void Register() =>
        Program.Register("sample", "sampling wall time: full width vs DDSM-shaped and ¼/½-width strategies (CPU)", Run);

    private static int Run(string[] args)
    {
        var pos = args.Where(a => a != "profile" && !a.Contains('=')).ToArray();
        int threads = 0;
        bool cpuClock = false;
        foreach (var a in args.Where(a => a.Contains('=')))
        {
            if (a.StartsWith("threads=") && int.TryParse(a[8..], out threads) && threads >= 1) continue;
            if (a is "clock=cpu" or "clock=wall") { cpuClock = a == "clock=cpu"; continue; }
            throw new ArgumentException($"sample: '{a}': the options are threads=N (N >= 1) and clock=cpu|wall");
        }
        var cfg = UNetConfig.Preset(pos.Length > 0 ? pos[0] : "fmnist32");
        int steps = pos.Length > 1 ? int.Parse(pos[1]) : 20, batch = pos.Length > 2 ? int.Parse(pos[2]) : 16;
        int reps = pos.Length > 3 ? int.Parse(pos[3]) : 7;
        var be = CpuBackend.Instance;
        if (threads > 0) be.Threads = threads;
        using var model = new SlimUNet(be, cfg, 1);
        var sched = NoiseSchedule.Linear();
        double Near(double w) => cfg.Widths.OrderBy(v => Math.Abs(v - w)).First();
        var ddsm = new StepStrategy(Enumerable.Range(0, sched.T)
            .Select(t => t < 0.27 * sched.T ? 1.0 : t < 0.47 * sched.T ? Near(0.75) : Near(0.5)).ToArray());
        var full = StepStrategy.Uniform(1.0, sched.T);
        // Issue 16: a ¼- or ½-width step must save ≥ 0.9 of its FLOPs saving in wall time.
        var strategies = new (string name, StepStrategy s)[]
        {
            ("full", full), ("DDSM-shaped", ddsm),
            ($"uniform {Near(0.5):0.##}", StepStrategy.Uniform(Near(0.5), sched.T)),
            ($"uniform {Near(0.25):0.##}", StepStrategy.Uniform(Near(0.25), sched.T)),
        };
        var o = new SamplerOptions(steps);
        var ddim = Sampler.Create(SamplerKind.Ddim);
        var gflops = strategies.Select(st => ddim.Cost(model, sched, st.s, o).Item1).ToArray();

        var spec = new SampleSpec(SamplerKind.Ddim, o, batch, batch, 5);
        double TimeOne(StepStrategy s)
        {
            var sw = Stopwatch.StartNew();
            double c0 = Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;
            BatchSampler.Sample(model, sched, s, spec);
            if (cpuClock) return (Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds - c0) / batch;
            return sw.Elapsed.TotalMilliseconds / batch;
        }
        foreach (var st in strategies) TimeOne(st.s);          // warm-up (JIT, pools)
        var times = strategies.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < strategies.Length; i++) times[i].Add(TimeOne(strategies[i].s));
        Console.WriteLine($"model {cfg.Name}, DDIM {steps} steps, batch {batch}, {reps} interleaved reps, " +
                          $"{be.Threads} threads, {(cpuClock ? "CPU" : "wall")} time, " +
                          $"load {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine(
            $"{"strategy",-14} {"GFLOPs/img",11} {"ms/img (median)",16} {"all reps",30}  savings vs full");
        double mf = Median(times[0]);
        for (int i = 0; i < strategies.Length; i++)
        {
            double m = Median(times[i]), flopSave = 1 - gflops[i] / gflops[0], wallSave = 1 - m / mf;
            // Paired: each rep's saving against the full-width run just before it, so that the machine's speed
            // drifting between reps (±20 % on a shared VM) cancels; the median of those.
            double paired = Median(times[i].Select((t, r) => 1 - t / times[0][r]).ToList()) / flopSave;
            string save = i == 0 ? "" : $"  FLOPs {flopSave:P1}, wall {wallSave:P1}, ratio {wallSave / flopSave:F2}" +
                                        $" (paired {paired:F2})";
            Console.WriteLine($"{strategies[i].name,-14} {gflops[i],11:F2} {m,16:F1} " +
                              $"{string.Join(" ", times[i].Select(v => v.ToString("F0"))),30}{save}");
        }
        Console.WriteLine("targets: DDSM-shaped ratio ≥ 0.80 (issue 4), uniform ½ and ¼ ratio ≥ 0.90 (issue 16)");
        if (args.Contains("profile"))
            foreach (var st in strategies)
            {
                // One more sampling run per strategy with the op profiler on: where its time goes.
                Profiler.Reset();
                Profiler.Enabled = true;
                try { TimeOne(st.s); }
                finally { Profiler.Enabled = false; }
                Console.WriteLine($"\n{st.name}: one run of batch {batch}");
                Console.WriteLine($"{Profiler.Report()}\n{Profiler.KernelReport()}");
            }
        return 0;
    }

    internal static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }
}
