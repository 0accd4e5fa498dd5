using System.Diagnostics;
using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Model;
using Ddsm.Training;

namespace Ddsm.Bench;

/// <summary>
/// CPU training throughput of the sandwich rule: images per second per sandwich step (each image
/// goes through n width passes) and the process's peak working set.
/// Args: [preset=fmnist32] [batch=32] [steps=5] [sandwich n=4].
/// </summary>
public static class TrainBench
{
    public static void Register() =>
        Program.Register("train", "sandwich-step training throughput and peak memory (CPU)", Run);

    private static int Run(string[] args)
    {
        var cfg = UNetConfig.Preset(args.Length > 0 ? args[0] : "fmnist32");
        int batch = args.Length > 1 ? int.Parse(args[1]) : 32, steps = args.Length > 2 ? int.Parse(args[2]) : 5;
        int n = args.Length > 3 ? int.Parse(args[3]) : 4;
        var be = CpuBackend.Instance;
        var data = Datasets.EmbeddedFashionMnist().ToResolution(cfg.ImageSize);
        using var model = new SlimUNet(be, cfg, 1);
        using var tr = new SandwichTrainer(model, data, new TrainOptions { BatchSize = batch, SandwichN = n }, 2);
        tr.TrainStep();                                         // warm-up: JIT, pools, optimiser state
        var times = new List<double>();
        var widths = new List<double>();
        for (int i = 0; i < steps; i++)
        {
            var sw = Stopwatch.StartNew();
            var r = tr.TrainStep();
            times.Add(sw.Elapsed.TotalSeconds);
            widths.AddRange(r.Losses.Select(l => l.Width));
        }
        double med = SampleBench.Median(times);
        var fwd = widths.Average(w => (double)UNetFlops.Forward(cfg, w).Total);
        Console.WriteLine($"model {cfg.Name} ({model.ParameterCount:N0} params), batch {batch}, sandwich n={n}, " +
                          $"{steps} steps, {Environment.ProcessorCount} threads");
        Console.WriteLine($"median step {med:F2} s → {batch / med:F2} images/s per sandwich step (all steps: " +
                          $"{string.Join(" ", times.Select(t => t.ToString("F2")))})");
        Console.WriteLine($"≈ {3 * fwd * n * batch / med / 1e9:F1} GFLOP/s effective (forward + 2× backward, mean " +
                          $"width {widths.Average():F3})");
        Console.WriteLine($"peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / (1 << 20):N0} MiB");
        return 0;
    }
}
