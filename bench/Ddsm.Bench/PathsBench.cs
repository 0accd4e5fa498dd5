using System.Diagnostics;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Bench;

/// <summary>
/// `paths`: our CPU kernels on the AVX-512 path against the same kernels capped to AVX2 (Sgemm.Cap), in one
/// process, interleaved rep by rep (so both see the same machine load): the peer benchmark's conv rows (N32,
/// 3×3 pad 1) forward and backward (data + weight + bias), and square / conv-shaped Sgemm. 2 threads.
/// Prints ms per call, median (min) of the reps, and the median of per-rep ratios first / second column.
/// Args: `reps=N` (default 7), `rows=fwd,bwd,gemm` (default; also `data`, `wgrad`: backward's two halves; `gn`:
/// GroupNorm(16) + SiLU forward and backward at the conv rows' shapes; `attn`: attention forward and backward with
/// 32-channel heads at the rows of 16² and below), `n=N`
/// (batch, default 32), `shapes=C-HW,…` (conv rows Cin = Cout = C at HW×HW instead of the peer bench's),
/// `compare=panel` (instead of the paths: the best path with B packed per panel against the old whole-block packing),
/// `compare=direct` (stride-1 convs reading B in place against packing it), `compare=wgrad` (3×3 weight gradients
/// without a column matrix against the GEMM form), `compare=bordered` (direct convs reading a zero-bordered copy of
/// x against masked loads), `compare=winograd` (3×3 convs by Winograd F(2×2, 3×3) against the direct conv),
/// `compare=edge4` (AVX2: the last 4 rows or fewer of a tile column on a 4-row kernel against the 6-row one),
/// `compare=attn` (attention's forward by blocks of 16 queries against the whole T×T score matrix),
/// `compare=inplace` (Winograd's row runs reading x in place against a zero-bordered copy; at W = 32·k the AVX-512
/// path's copy takes 8-tile runs, not 16), `compare=panels512` (AVX-512 Winograd panels of 2 or 4 tile rows at
/// W = 16 and 8 against the 8-tile runs and gathered patches), `compare=prefetch` (direct convs prefetching their B
/// rows two panels ahead against not), `compare=thin` (Cout ≤ 4 on the AVX-512 thin kernels against 16-row
/// tiles),
/// `k=1` (the conv rows pointwise instead of 3×3), `cout=N` (the conv rows' output channels, default Cin),
/// `cold=N` (the conv rows' forward and data-gradient inputs cycle
/// through N copies, so that with N copies past the L3 they come from memory, as a UNet's skip conv reads its input),
/// `threads=N` (default 2), `clock=cpu` (the process's CPU time instead of wall time: with threads=1 a
/// measure that a loaded machine disturbs far less than wall time).
/// </summary>
public static class PathsBench
{
    public static void Register() =>
        Program.Register("paths", "AVX-512 vs AVX2 path of our conv and Sgemm, interleaved", Run);

    private static int Run(string[] args)
    {
        string Arg(string key, string def) =>
            args.FirstOrDefault(a => a.StartsWith(key + "="))?[(key.Length + 1)..] ?? def;
        int reps = int.Parse(Arg("reps", "7")), batch = int.Parse(Arg("n", "32"));
        var parts = Arg("rows", "fwd,bwd,gemm").Split(',');
        string compare = Arg("compare", "paths");
        (string, Action)[] paths;
        if (compare == "paths")
            paths = new[] { Sgemm.BestPath, SgemmPath.Avx2 }.Distinct()
                .Select(p => (p.ToString(), (Action)(() => Sgemm.Cap = p))).ToArray();
        else if (Switches.TryGetValue(compare, out var sw))
            paths = [(sw.On, () => sw.Set(true)), (sw.Off, () => sw.Set(false))];
        else
            throw new ArgumentException(
                $"paths: compare={compare}: one of paths, {string.Join(", ", Switches.Keys)}");
        var be = new CpuBackend { Threads = int.Parse(Arg("threads", "2")) };
        _cpuClock = Arg("clock", "wall") == "cpu";
        Console.WriteLine($"paths bench: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, " +
                          $"{be.Threads} threads, clock {(_cpuClock ? "cpu" : "wall")}, " +
                          $"best path {Sgemm.BestPath}, load {File.ReadAllText("/proc/loadavg").Trim()}; " +
                          $"ms per call, median (min) of {reps}");
        Console.WriteLine($"{"row",-22} {string.Join(" ", paths.Select(p => $"{p.Item1,18}"))} {"ratio",7}");
        var rng = new Rng(1);
        var convs = new[] { (64, 32), (128, 32), (128, 16), (256, 16), (16, 32), (32, 16), (128, 8), (256, 8) };
        if (Arg("shapes", "") is { Length: > 0 } shapes)   // e.g. shapes=32-32,48-16: channels-size pairs
            convs = shapes.Split(',').Select(p => p.Split('-') is [var c, var hw] && int.TryParse(c, out int ci) &&
                    int.TryParse(hw, out int hi) && ci > 0 && hi > 0
                    ? (ci, hi)
                    : throw new ArgumentException($"paths: shapes={shapes}: '{p}' is not CHANNELS-SIZE, e.g. 32-16"))
                .ToArray();
        int kk = int.Parse(Arg("k", "3")), cold = int.Parse(Arg("cold", "1")), coutArg = int.Parse(Arg("cout", "0"));
        if (kk is not (1 or 3) || cold < 1 || coutArg < 0)
            throw new ArgumentException("paths: k=1 or k=3, cold=N with N >= 1, cout=N with N >= 1");
        if (coutArg > 0 && (parts.Contains("gn") || parts.Contains("attn")))
            throw new ArgumentException("paths: cout= applies to the conv rows only (not gn, attn)");
        foreach (var (c, hw) in convs)
        {
            int co = coutArg > 0 ? coutArg : c;
            var d = new ConvDesc(batch, c, hw, hw, co, kk, 1, kk / 2, c, co);
            var xs = Enumerable.Range(0, cold).Select(_ => Filled(be, rng, (long)batch * c * hw * hw)).ToArray();
            var ys = Enumerable.Range(0, cold).Select(_ => Filled(be, rng, (long)batch * co * hw * hw)).ToArray();
            var (x, y) = (xs[0], ys[0]);
            var w = Filled(be, rng, (long)co * c * kk * kk); var bias = Filled(be, rng, co);
            var dx = Filled(be, rng, x.Length); var dw = Filled(be, rng, w.Length); var db = Filled(be, rng, co);
            string shape = $"c{c}-{hw}{(co != c ? $"→{co}" : "")}{(kk == 1 ? " k1" : "")}";
            if (parts.Contains("fwd"))
                Row($"conv_fwd/{shape}", reps, paths, () =>
                {
                    foreach (var xc in xs) be.Conv2dForward(d, xc, w, bias, y);
                }, cold);
            if (parts.Contains("bwd"))
                Row($"conv_bwd/{shape}", reps, paths, () =>
                {
                    be.Conv2dBackwardData(d, y, w, dx);
                    be.Conv2dBackwardWeight(d, x, y, dw, db);
                });
            if (parts.Contains("data"))
                Row($"conv_data/{shape}", reps, paths, () =>
                {
                    foreach (var yc in ys) be.Conv2dBackwardData(d, yc, w, dx);
                }, cold);
            if (parts.Contains("wgrad"))
                Row($"conv_wgrad/{shape}", reps, paths, () => be.Conv2dBackwardWeight(d, x, y, dw, null));
            if (parts.Contains("gn"))
            {
                var gd = new GroupNormDesc(batch, c, hw * hw, 16, c, 1e-5f, SiLU: true);
                var (mean, rstd) = (be.Allocate(batch * 16), be.Allocate(batch * 16));
                Row($"gn_silu_fwd/c{c}-{hw}", reps, paths, () =>
                {
                    for (int i = 0; i < 10; i++) be.GroupNormForward(gd, x, w, bias, null, null, y, mean, rstd);
                }, 10);
                Row($"gn_silu_bwd/c{c}-{hw}", reps, paths, () =>
                {
                    for (int i = 0; i < 10; i++)
                        be.GroupNormBackward(gd, x, w, bias, null, null, mean, rstd, y, dx, dw, db, null, null);
                }, 10);
                be.Free(mean); be.Free(rstd);
            }
            if (parts.Contains("attn") && c % 32 == 0 && hw <= 16)
            {
                // The UNet's heads: 32 channels each, T = hw² tokens; qkv (N, 3C, T), output (N, C, T).
                var ad = new AttentionDesc(batch, c / 32, 32, hw * hw);
                var qkv = Filled(be, rng, 3L * batch * c * hw * hw);
                var o = be.Allocate((long)batch * c * hw * hw);
                var lse = be.Allocate((long)batch * (c / 32) * hw * hw);
                var dqkv = be.Allocate(qkv.Length);
                Row($"attn_fwd/c{c}-{hw}", reps, paths, () => be.AttentionForward(ad, qkv, o, lse));
                Row($"attn_bwd/c{c}-{hw}", reps, paths, () => be.AttentionBackward(ad, qkv, o, lse, o, dqkv));
                foreach (var buf in new[] { qkv, o, lse, dqkv }) be.Free(buf);
            }
            foreach (var buf in xs.Concat(ys).Concat([w, bias, dx, dw, db])) be.Free(buf);
        }
        if (parts.Contains("gemm"))
            foreach (var (m, n, k) in new[] { (1024, 1024, 1024), (128, 1024, 1152), (64, 256, 576), (16, 1024, 144) })
            {
                var a = new float[m * k]; var b = new float[k * n]; var cm = new float[m * n];
                rng.FillNormal(a); rng.FillNormal(b);
                Row($"sgemm {m}×{n}×{k}", reps, paths,
                    () => Sgemm.RunParallel(false, false, m, n, k, 1f, a, 0, k, b, 0, n, 0f, cm, 0, n, be.Threads));
            }
        Console.WriteLine($"load average at end: {File.ReadAllText("/proc/loadavg").Trim()}");
        return 0;
    }

    /// <summary>`compare=` switches: the column with the switch on (the default), then off.</summary>
    private static readonly Dictionary<string, (string On, string Off, Action<bool> Set)> Switches = new()
    {
        ["panels512"] = ("16-lane panels", "8-lane", on => Winograd.Panels512On = on),
        ["prefetch"] = ("prefetch B", "no prefetch", on => ConvDirect.PrefetchOn = on),
        ["thin"] = ("thin kernels", "16-row tiles", on => ConvDirect.ThinOn = on),
        ["panel"] = ("panel-wise B", "block B", on => Sgemm.PackBPerPanel = on),
        ["winograd"] = ("winograd", "direct", on => Winograd.On = on),
        ["inplace"] = ("x in place", "bordered copy", on => Winograd.InPlaceOn = on),
        ["attn"] = ("16-query blocks", "whole T×T", on => CpuBackend.FusedAttentionOn = on),
        ["edge4"] = ("4-row edge", "6-row edge", on => Sgemm.Edge4On = on),
        ["bordered"] = ("bordered x", "masked loads", on => ConvDirect.BorderedOn = on),
        ["wgrad"] = ("direct wgrad", "GEMM wgrad", on => CpuBackend.WeightGradDirectOn = on),
        ["direct"] = ("direct conv", "packed conv", on => CpuBackend.ConvDirectOn = on),
    };

    private static bool _cpuClock;

    private static double Now() => _cpuClock
        ? Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds
        : Stopwatch.GetTimestamp() * 1000.0 / Stopwatch.Frequency;

    private static DeviceBuffer Filled(CpuBackend be, Rng rng, long n)
    {
        var buf = be.Allocate(n);
        var tmp = new float[n];
        rng.FillNormal(tmp);
        for (int i = 0; i < tmp.Length; i++) tmp[i] *= 0.1f;   // accumulating kernels stay far from overflow
        be.CopyIn(buf, 0, tmp);
        return buf;
    }

    /// <summary>One row. A run makes <paramref name="calls"/> kernel calls: short kernels are timed ten at a time.
    /// </summary>
    private static void Row(string name, int reps, (string, Action)[] paths, Action run, int calls = 1)
    {
        var ms = paths.Select(_ => new double[reps]).ToArray();
        try
        {
            for (int rep = -2; rep < reps; rep++)   // two warm-up rounds per path
                for (int i = 0; i < paths.Length; i++)
                {
                    paths[i].Item2();
                    double t0 = Now();
                    run();
                    if (rep >= 0) ms[i][rep] = (Now() - t0) / calls;
                }
        }
        finally
        {
            Sgemm.Cap = null;
            foreach (var sw in Switches.Values) sw.Set(true);
        }
        static double Median(IEnumerable<double> v) { var s = v.OrderBy(t => t).ToArray(); return s[s.Length / 2]; }
        var cells = ms.Select(m => $"{Median(m),9:F2} ({m.Min(),6:F2})");
        string ratio = paths.Length > 1 ? $"{Median(ms[0].Select((t, r) => t / ms[1][r])),7:F2}" : "      -";
        Console.WriteLine($"{name,-22} {string.Join(" ", cells)} {ratio}");
    }
}
