using System.Diagnostics;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Bench;

/// <summary>
/// `convparts`: single-thread GF/s of our Sgemm on conv-like shapes and of the three conv kernels
/// (batch 4, 3×3 pad 1), best of 9 after warm-up. Best-of, not median: it is a tuning aid for A/B
/// comparisons of kernel changes on a shared machine, where the least-disturbed run is the signal.
/// </summary>
public static class ConvPartsBench
{
    public static void Register() =>
        Program.Register("convparts", "single-thread Sgemm and conv kernel GF/s (best of 9, tuning aid)", Run);

    private static double Best(int reps, Action a)
    {
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 3 || warm.ElapsedMilliseconds < 200; i++) a();
        double best = double.MaxValue;
        for (int i = 0; i < reps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            a();
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        return best;
    }

    private static int Run(string[] args)
    {
        var rng = new Rng(1);
        var be = new CpuBackend { Threads = 1 };
        foreach (var (m, n, k) in new[] { (1024, 1024, 1024), (128, 1024, 1152), (64, 256, 576) })
        {
            var a = new float[m * k]; var b = new float[k * n]; var c = new float[m * n];
            rng.FillNormal(a); rng.FillNormal(b);
            double t = Best(9, () => Sgemm.Run(false, false, m, n, k, 1f, a, 0, k, b, 0, n, 0f, c, 0, n));
            Console.WriteLine($"sgemm {m}×{n}×{k}: {2.0 * m * n * k / t / 1e9:F1} GF/s");
        }
        Console.WriteLine($"{"conv (batch 4)",-16} {"fwd",6} {"bwd-data",9} {"bwd-wt",7}  GF/s");
        foreach (int ch in new[] { 64, 128 })
        foreach (int hw in new[] { 32, 16 })
        {
            var d = new ConvDesc(4, ch, hw, hw, ch, 3, 1, 1, ch, ch);
            var x = be.Allocate(4 * ch * hw * hw); var w = be.Allocate(ch * ch * 9);
            var y = be.Allocate(4 * ch * hw * hw); var dw = be.Allocate(ch * ch * 9);
            foreach (var buf in new[] { x, w, y })
            {
                var tmp = new float[buf.Length];
                rng.FillNormal(tmp);
                be.CopyIn(buf, 0, tmp);
            }
            be.Fill(dw, 0, dw.Length, 0f);
            double f = d.ForwardFlops;
            double tF = Best(9, () => be.Conv2dForward(d, x, w, null, y));
            double tD = Best(9, () => be.Conv2dBackwardData(d, y, w, x));
            double tW = Best(9, () => be.Conv2dBackwardWeight(d, x, y, dw, null));
            Console.WriteLine($"{$"C={ch} {hw}×{hw}",-16} {f / tF / 1e9,6:F1} {f / tD / 1e9,9:F1} {f / tW / 1e9,7:F1}");
            foreach (var buf in new[] { x, w, y, dw }) be.Free(buf);
        }
        return 0;
    }
}
