using System.Diagnostics;
using System.Runtime.InteropServices;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Bench;

/// <summary>
/// `conv`: our Sgemm and conv kernels against the machine's own ceiling, in one run.
/// (a) OpenBLAS sgemm (Debian libopenblas0, P/Invoke here only) at n = 2048 and a UNet-shaped GEMM,
/// 1 and 2 threads; (b) our Sgemm on the same shapes; (c) conv forward / backward-data /
/// backward-weight on UNet shapes (batch 32, C = 64 and 128, 32×32 and 16×16, 3×3 pad 1) on 2
/// threads, each as a fraction of the 2-thread OpenBLAS n = 2048 figure. Medians after warm-up.
/// Args: `reps=N` (default 7), `gemm` (GEMM part only), `convonly` (skip OpenBLAS / square GEMM).
/// </summary>
public static class ConvBench
{
    public static void Register() =>
        Program.Register("conv", "sgemm ceiling (OpenBLAS) vs our Sgemm and conv2d kernels", Run);

    private static class OpenBlas
    {
        private const string Lib = "libopenblas.so.0";
        [DllImport(Lib)] public static extern void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
            float alpha, float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc);
        [DllImport(Lib)] public static extern void openblas_set_num_threads(int n);
        [DllImport(Lib)] public static extern IntPtr openblas_get_config();
        public const int RowMajor = 101, NoTrans = 111;
    }

    /// <summary>GF/s of each run per rep, the runs timed round-robin within each rep (after warm-up).</summary>
    private static double[][] Interleaved(int reps, (double flops, Action run)[] runs)
    {
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 2 || warm.ElapsedMilliseconds < 300; i++) foreach (var r in runs) r.run();
        var gf = runs.Select(_ => new double[reps]).ToArray();
        for (int rep = 0; rep < reps; rep++)
            for (int i = 0; i < runs.Length; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                runs[i].run();
                gf[i][rep] = runs[i].flops / Stopwatch.GetElapsedTime(t0).TotalSeconds / 1e9;
            }
        return gf;
    }

    private static double MedianOf(double[] v) { var s = v.OrderBy(x => x).ToArray(); return s[s.Length / 2]; }
    private static string Fmt(double[] gf) => $"{MedianOf(gf),5:F1} ({gf.Max(),5:F1})";

    private static int Run(string[] args)
    {
        int reps = args.Select(a => a.StartsWith("reps=") ? int.Parse(a[5..]) : 0).FirstOrDefault(v => v > 0, 7);
        bool gemmOnly = args.Contains("gemm"), convOnly = args.Contains("convonly");
        Console.WriteLine($"conv bench: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, " +
                          $"sgemm path: {Sgemm.Path}, median of {reps} after warm-up");
        Console.WriteLine($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()}");

        // (M, N, K): the square ceiling, and the forward GEMM of a 128-channel 3×3 conv on 32×32
        // (Cout × Ho·Wo × Cin·9).
        var shapes = new List<(string name, int m, int n, int k)> { ("unet 128×1024×1152", 128, 1024, 1152) };
        if (!convOnly) shapes.Insert(0, ("square 2048³", 2048, 2048, 2048));
        bool haveBlas = true;
        try { Console.WriteLine($"OpenBLAS: {Marshal.PtrToStringAnsi(OpenBlas.openblas_get_config())}"); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            haveBlas = false;
            Console.WriteLine("OpenBLAS not found (apt-get install libopenblas0): no ceiling");
        }

        Console.WriteLine($"\n{"GEMM (M×N×K)",-22} {"threads",7} {"OpenBLAS GF/s",14} {"ours GF/s",14} " +
                          $"{"ours/OpenBLAS",14}   (median (best); ratio: median of per-rep ratios)");
        var rng = new Rng(1);
        foreach (var (name, m, n, k) in shapes)
        {
            var a = new float[m * k]; var b = new float[k * n]; var c = new float[m * n];
            rng.FillNormal(a); rng.FillNormal(b);
            double flops = 2.0 * m * n * k;
            foreach (int threads in new[] { 1, 2 })
            {
                if (haveBlas) OpenBlas.openblas_set_num_threads(threads);
                Action blas = haveBlas
                    ? () =>
                        OpenBlas.cblas_sgemm(OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.NoTrans, m, n, k, 1f, a, k,
                                             b, n, 0f, c, n)
                    : () => { };
                var gf = Interleaved(reps,
                                     [(flops, blas),
                                      (flops,
                                       () =>
                                           Sgemm.RunParallel(false, false, m, n, k, 1f, a, 0, k, b, 0, n, 0f, c, 0, n,
                                                             threads))]);
                var ratio = MedianOf(gf[1].Select((g, r) => g / gf[0][r]).ToArray());
                Console.WriteLine($"{name,-22} {threads,7} {Fmt(gf[0]),14} {Fmt(gf[1]),14} {ratio,14:F2}");
            }
        }
        if (gemmOnly) return 0;

        var be = new CpuBackend { Threads = 2 };
        // The machine is shared: each rep times the 2-thread OpenBLAS n=2048 ceiling and then the three
        // conv kernels back to back, so every fraction compares runs made under the same load.
        var sa = new float[2048 * 2048]; var sb = new float[2048 * 2048]; var sc = new float[2048 * 2048];
        rng.FillNormal(sa); rng.FillNormal(sb);
        Action ceilingRun = haveBlas
            ? () =>
                OpenBlas.cblas_sgemm(OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.NoTrans, 2048, 2048, 2048, 1f, sa,
                                     2048, sb, 2048, 0f, sc, 2048)
            : () => { };
        if (haveBlas) OpenBlas.openblas_set_num_threads(2);
        Console.WriteLine($"\nconv2d 3×3 pad 1, batch 32, Cin = Cout = C, {be.Threads} threads. GF/s: median (best) " +
                          $"of {reps}; frac: median over reps of");
        Console.WriteLine("conv GF/s ÷ the 2-thread OpenBLAS n=2048 GF/s timed in the same rep; frac184: median ÷ " +
                          "184 (DESIGN.md's quiet-machine ceiling)");
        Console.WriteLine($"{"shape",-14} {"ceiling",14} | {"fwd",14} {"frac",5} {"f184",5} | {"bwd-data",14} " +
                          $"{"frac",5} {"f184",5} | {"bwd-weight",14} {"frac",5} {"f184",5}");
        foreach (int ch in new[] { 64, 128 })
        foreach (int hw in new[] { 32, 16 })
        {
            var d = new ConvDesc(32, ch, hw, hw, ch, 3, 1, 1, ch, ch);
            var x = be.Allocate((long)d.N * ch * hw * hw); var y = be.Allocate((long)d.N * ch * d.Ho * d.Wo);
            var w = be.Allocate((long)ch * ch * 9); var bias = be.Allocate(ch);
            var dx = be.Allocate(x.Length); var dw = be.Allocate(w.Length); var db = be.Allocate(ch);
            foreach (var buf in new[] { x, y, w, bias })
            {
                var tmp = new float[buf.Length];
                rng.FillNormal(tmp);
                be.CopyIn(buf, 0, tmp);
            }
            be.Fill(dx, 0, dx.Length, 0f); be.Fill(dw, 0, dw.Length, 0f); be.Fill(db, 0, db.Length, 0f);
            var runs = new (double flops, Action run)[]
            {
                (2.0 * 2048 * 2048 * 2048, ceilingRun),
                (d.ForwardFlops, () => be.Conv2dForward(d, x, w, bias, y)),
                (d.ForwardFlops, () => be.Conv2dBackwardData(d, y, w, dx)),
                (d.ForwardFlops, () => be.Conv2dBackwardWeight(d, x, y, dw, db)),
            };
            var gf = Interleaved(reps, runs);
            var line = $"{$"C={ch} {hw}x{hw}",-14} {Fmt(gf[0]),14}";
            for (int i = 1; i < runs.Length; i++)
            {
                var frac = gf[i].Select((g, r) => g / gf[0][r]).OrderBy(v => v).ToArray();
                line += $" | {Fmt(gf[i]),14} {frac[reps / 2],5:F2} {MedianOf(gf[i]) / 184,5:F2}";
            }
            Console.WriteLine(line);
            foreach (var buf in new[] { x, y, w, bias, dx, dw, db }) be.Free(buf);
        }
        Console.WriteLine($"load average at end: {File.ReadAllText("/proc/loadavg").Trim()}");
        return 0;
    }
}
