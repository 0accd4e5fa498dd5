using System.Diagnostics;
using System.Runtime;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text.Json.Nodes;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Bench;

/// <summary>
/// `peer`: our side of the PyTorch peer benchmark (bench/pytorch/peer_bench.py). A worker driven over
/// stdin/stdout, one JSON object per line each way. One persistent process rather than one per rep: JIT
/// tiering, the buffer pool and the GEMM packing buffers are warm before anything is timed (as in a long
/// training or sampling run), and the driver can interleave our reps with PyTorch's in one run.
/// Requests (op: …): info; setup {work, …spec} (see <see cref="PeerWork.Create"/>); run {calls} → ms of
/// the calls, timed here so the pipe is not; profile {calls} → the op profiler's tables; teardown → peak
/// RSS since set-up; quit. Every reply has "ok"; a failed request answers "error" and the worker carries on.
/// Args: [threads=N] (default: the machine's cores).
/// </summary>
public static class PeerBench
{
    public static void Register() =>
        Program.Register("peer", "worker for bench/pytorch/peer_bench.py (JSON lines on stdin/stdout)", Run);

    private static int Run(string[] args)
    {
        var be = CpuBackend.Instance;
        foreach (var a in args)
            if (a.StartsWith("threads=")) be.Threads = int.Parse(a[8..]);
        // Replies own stdout; anything the library prints goes to stderr.
        var reply = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
        Console.SetOut(Console.Error);
        IPeerWork? work = null;
        string? line;
        while ((line = Console.In.ReadLine()) is not null)
        {
            JsonObject r;
            string op = "?";
            try
            {
                var req = JsonNode.Parse(line)!.AsObject();
                op = (string?)req["op"] ?? "?";
                r = op switch
                {
                    "info" => Info(be),
                    "setup" => Setup(be, req, ref work),
                    "run" => new JsonObject
                    {
                        ["ms"] = Time(Need(work), (int)req["calls"]!, (string?)req["clock"] == "cpu"),
                    },
                    "profile" => Profile(Need(work), (int)req["calls"]!),
                    "teardown" => Teardown(be, ref work),
                    "quit" => new JsonObject(),
                    _ => throw new ArgumentException($"unknown op '{op}'"),
                };
                r["ok"] = true;
            }
            catch (Exception e)
            {
                r = new JsonObject { ["ok"] = false, ["error"] = $"{op}: {e.GetType().Name}: {e.Message}" };
            }
            reply.WriteLine(r.ToJsonString());
            if (op == "quit") break;
        }
        work?.Dispose();
        return 0;
    }

    private static IPeerWork Need(IPeerWork? w) => w ?? throw new InvalidOperationException("no work set up");

    private static JsonObject Info(CpuBackend be) => new()
    {
        ["runtime"] = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
        ["threads"] = be.Threads,
        ["vector512_accelerated"] = Vector512.IsHardwareAccelerated,
        ["avx512f"] = Avx512F.IsSupported,
        ["avx2"] = Avx2.IsSupported,
        ["fma"] = Fma.IsSupported,
        ["sgemm_path"] = Sgemm.Path.ToString(),
        ["vector_t_bits"] = System.Numerics.Vector<float>.Count * 32,
        ["gc_server"] = GCSettings.IsServerGC,
    };

    private static JsonObject Setup(CpuBackend be, JsonObject spec, ref IPeerWork? work)
    {
        work?.Dispose();
        work = null;
        ReleaseMemory(be);
        ResetPeakRss();
        double rss0 = Rss("VmRSS");
        work = PeerWork.Create(be, spec);
        var r = work.Info;
        r["rss_start_mb"] = rss0;
        return r;
    }

    /// <summary>ms of <paramref name="calls"/> calls: wall time, or the process CPU time (--clock cpu).</summary>
    private static double Time(IPeerWork w, int calls, bool cpuClock = false)
    {
        var be = CpuBackend.Instance;
        var proc = Process.GetCurrentProcess();
        double cpu0 = cpuClock ? proc.TotalProcessorTime.TotalMilliseconds : 0;
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < calls; i++) w.Run();
        be.Synchronize();
        if (!cpuClock) return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        proc.Refresh();
        return proc.TotalProcessorTime.TotalMilliseconds - cpu0;
    }

    private static JsonObject Profile(IPeerWork w, int calls)
    {
        Profiler.Reset();
        Profiler.Enabled = true;
        double ms;
        try { ms = Time(w, calls); }
        finally { Profiler.Enabled = false; }
        return new JsonObject { ["ms"] = ms, ["report"] = Profiler.Report() + "\n" + Profiler.KernelReport() };
    }

    private static JsonObject Teardown(CpuBackend be, ref IPeerWork? work)
    {
        var r = new JsonObject { ["peak_rss_mb"] = Rss("VmHWM") };
        work?.Dispose();
        work = null;
        ReleaseMemory(be);
        return r;
    }

    /// <summary>Gives the previous work's memory back (pool, GC heap), so each row's peak RSS is its own.</summary>
    private static void ReleaseMemory(CpuBackend be)
    {
        be.TrimPool();
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    /// <summary>Linux: writing 5 to clear_refs resets VmHWM (peak RSS) to the current RSS.</summary>
    private static void ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>A /proc/self/status field in MiB (0 where there is none).</summary>
    private static double Rss(string field)
    {
        if (!File.Exists("/proc/self/status")) return 0;
        foreach (var l in File.ReadLines("/proc/self/status"))
            if (l.StartsWith(field + ":"))
                return Math.Round(long.Parse(l[(field.Length + 1)..].Trim().Split(' ')[0]) / 1024.0, 1);
        return 0;
    }
}
