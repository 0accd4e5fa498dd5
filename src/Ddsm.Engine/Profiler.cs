using System.Diagnostics;
using System.Text;

namespace Ddsm.Engine;

/// <summary>
/// Op-level profiler and FLOP counter.
/// <para>Profiling (off by default): per op name, calls, self wall ms (time inside nested op timers
/// is attributed to the inner op only, so the rows sum to the wall time) and GFLOP/s. When on, each op
/// synchronises its backend before and after so an asynchronous device is timed honestly; that
/// costs throughput, so it is for finding where a step spends its time, not for benchmarks.</para>
/// <para>Per-kernel times (when enabled): each backend reports the device time of every kernel it runs
/// (the GPU backend from stream markers around each launch, the CPU backend by timing each contract
/// call), so <see cref="KernelReport"/> shows where the time goes below the ops.</para>
/// <para>FLOP counting (always on, one add per op): <see cref="FlopCounter"/> sums the forward FLOPs
/// that ops report, so an analytic model count can be checked against a real forward.</para>
/// </summary>
public static class Profiler
{
    private static readonly object Gate = new();
    private static readonly Dictionary<string, OpStat> Stats = new();
    private static readonly Dictionary<string, OpStat> KernelStats = new();
    // Per-thread stack of "time spent in child timers" so nested timers (the tape's "conv2d.bwd"
    // around the op's own "conv2d_data.bwd") report self time and the table sums to wall time.
    [ThreadStatic] private static List<long>? _childTicks;
    public static bool Enabled { get; set; }

    public sealed class OpStat
    {
        public long Calls;
        public long Ticks;
        public long Flops;
        public double Ms => Ticks * 1000.0 / Stopwatch.Frequency;
        public double GFlops => Ticks == 0 ? 0 : Flops / (Ticks / (double)Stopwatch.Frequency) / 1e9;
    }

    /// <summary>Times one op call (when enabled) and counts its FLOPs (always).</summary>
    public static OpTimer Op(string name, long flops, Backend backend)
    {
        FlopCounter.Add(name, flops);
        // Work on the meta backend is not work: nothing to time.
        if (!Enabled || backend is MetaBackend) return default;
        backend.SynchronizeUncounted();
        (_childTicks ??= new List<long>()).Add(0);
        return new OpTimer(name, flops, backend, Stopwatch.GetTimestamp());
    }

    public readonly struct OpTimer(string? name, long flops, Backend? backend, long start) : IDisposable
    {
        public void Dispose()
        {
            if (name is null) return;
            backend!.SynchronizeUncounted();
            long dt = Stopwatch.GetTimestamp() - start;
            var stack = _childTicks!;
            long self = dt - stack[^1];
            stack.RemoveAt(stack.Count - 1);
            if (stack.Count > 0) stack[^1] += dt;
            lock (Gate)
            {
                if (!Stats.TryGetValue(name, out var s)) Stats[name] = s = new OpStat();
                s.Calls++;
                s.Ticks += self;
                s.Flops += flops;
            }
        }
    }

    /// <summary>
    /// Adds one kernel execution of <paramref name="ms"/> milliseconds (backends call it while profiling).
    /// </summary>
    public static void AddKernel(string kernel, double ms)
    {
        lock (Gate)
        {
            if (!KernelStats.TryGetValue(kernel, out var s)) KernelStats[kernel] = s = new OpStat();
            s.Calls++;
            s.Ticks += (long)(ms * Stopwatch.Frequency / 1000.0);
        }
    }

    /// <summary>
    /// Times one CPU-backend kernel call while profiling (the CPU backend's "kernels" are its contract calls).
    /// </summary>
    public static KernelTimer Kernel(string kernel) =>
        Enabled ? new KernelTimer(kernel, Stopwatch.GetTimestamp()) : default;

    public readonly struct KernelTimer(string? kernel, long start) : IDisposable
    {
        public void Dispose()
        {
            if (kernel is not null)
                AddKernel(kernel, (Stopwatch.GetTimestamp() - start) * 1000.0 / Stopwatch.Frequency);
        }
    }

    internal static void Reset()
    {
        lock (Gate)
        {
            Stats.Clear();
            KernelStats.Clear();
        }
    }

    public static IReadOnlyDictionary<string, OpStat> KernelSnapshot()
    {
        lock (Gate)
            return KernelStats.ToDictionary(kv => kv.Key,
                                            kv => new OpStat { Calls = kv.Value.Calls, Ticks = kv.Value.Ticks });
    }

    /// <summary>
    /// Per-kernel device time, slowest first, with each kernel's share; empty when nothing was timed.
    /// </summary>
    public static string KernelReport()
    {
        var snap = KernelSnapshot().OrderByDescending(kv => kv.Value.Ticks).ToList();
        if (snap.Count == 0) return "";
        double total = snap.Sum(kv => kv.Value.Ms);
        var sb = new StringBuilder();
        sb.AppendLine($"{"kernel",-28} {"calls",8} {"total ms",11} {"%",6} {"ms/call",9}");
        foreach (var (name, s) in snap)
            sb.AppendLine($"{name,-28} {s.Calls,8} {s.Ms,11:F2} {100 * s.Ms / Math.Max(total, 1e-12),6:F1} " +
                          $"{s.Ms / s.Calls,9:F3}");
        sb.AppendLine($"{"total",-28} {"",8} {total,11:F2}");
        return sb.ToString();
    }

    /// <summary>
    /// One line on host round trips (<see cref="Backend.Transfers"/>) over <paramref name="steps"/> steps of
    /// a loop: the totals and the mean per step ("sample step", "training step").
    /// </summary>
    public static string TransferReport(TransferCounts delta, long steps, string what)
    {
        double per(long v) => steps > 0 ? (double)v / steps : 0;
        return $"host transfers per {what}: {per(delta.CopiesIn):0.###} copies in, {per(delta.CopiesOut):0.###} " +
               $"copies out, {per(delta.Syncs):0.###} syncs (over {steps} steps: {delta})";
    }

    public static IReadOnlyDictionary<string, OpStat> Snapshot()
    {
        lock (Gate)
            return Stats.ToDictionary(kv => kv.Key,
                                      kv =>
                                          new OpStat { Calls = kv.Value.Calls, Ticks = kv.Value.Ticks,
                                                       Flops = kv.Value.Flops });
    }

    /// <summary>A fixed-width table, slowest op first, with each op's share of the total.</summary>
    public static string Report()
    {
        var snap = Snapshot().OrderByDescending(kv => kv.Value.Ticks).ToList();
        double total = snap.Sum(kv => kv.Value.Ms);
        var sb = new StringBuilder();
        sb.AppendLine($"{"op",-28} {"calls",8} {"total ms",11} {"%",6} {"ms/call",9} {"GFLOP/s",9}");
        foreach (var (name, s) in snap)
            sb.AppendLine($"{name,-28} {s.Calls,8} {s.Ms,11:F2} {100 * s.Ms / Math.Max(total, 1e-12),6:F1} " +
                          $"{s.Ms / s.Calls,9:F3} {(s.Flops > 0 ? s.GFlops.ToString("F1") : "-"),9}");
        sb.AppendLine($"{"total",-28} {"",8} {total,11:F2}");
        return sb.ToString();
    }
}

/// <summary>
/// Counts forward FLOPs reported by ops on this thread while it is alive (nestable: the enclosing
/// counters count them too, unless this one is isolated). Backward ops (names ending in ".bwd") are
/// counted separately.
/// </summary>
public sealed class FlopCounter : IDisposable
{
    [ThreadStatic] private static FlopCounter? _current;
    private readonly FlopCounter? _parent;
    private readonly bool _isolated;
    public long Forward { get; private set; }
    public long Backward { get; private set; }
    public Dictionary<string, long> ByOp { get; } = new();

    /// <param name="isolated">keep the counts from the enclosing counters (a FLOP count made on the
    /// <see cref="MetaBackend"/> inside a real run is not work the run did).</param>
    public FlopCounter(bool isolated = false)
    {
        _parent = _current;
        _isolated = isolated;
        _current = this;
    }

    internal static void Add(string op, long flops)
    {
        for (var c = _current; c is not null; c = c._isolated ? null : c._parent)
        {
            if (op.EndsWith(".bwd", StringComparison.Ordinal)) c.Backward += flops;
            else c.Forward += flops;
            c.ByOp[op] = c.ByOp.GetValueOrDefault(op) + flops;
        }
    }

    public void Dispose()
    {
        if (_current == this) _current = _parent;
    }
}
