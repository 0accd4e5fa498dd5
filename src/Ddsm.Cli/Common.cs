using System.CommandLine;
using System.Runtime.InteropServices;
using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;
using Ddsm.IO;
using Ddsm.Training;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary>Options and helpers shared by the verbs.</summary>
internal static class Common
{
    public static Option<string> Device() => Opt.Of<string>("--device", "cpu",
        "cpu (C# SIMD backend), cuda (NVIDIA GPU: the ILGPU kernels), or ilgpu-cpu (the same GPU kernels on " +
        "ILGPU's CPU accelerator: for debugging kernels, hundreds of times slower than cpu)");

    public static Option<bool> Tf32() => Opt.Of<bool>("--tf32",
        "GPU backends: convolutions and matrix products on TF32 tensor cores (≈1e-3 relative error, several " +
        "times faster) instead of exact FP32");

    public static Option<ulong> Seed() =>
        Opt.Of<ulong>("--seed", 0UL, "random seed (fixed seeds give identical results)");

    public static Option<string> CacheDir() => Opt.Of<string>("--cache", DefaultCache, "data cache directory");

    public static string DefaultCache =>
        Environment.GetEnvironmentVariable("DDSM_CACHE") ??
            Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "ddsm");

    /// <summary>
    /// Exit codes (the README's CLI section): 0 done, 1 usage error, 2 bad input, 128 + signal when stopped.
    /// </summary>
    public const int Usage = 1, BadInput = 2, Sigint = 130, Sigterm = 143;

    /// <summary>
    /// Runs a verb body. A user error (<see cref="IsUserError"/>) becomes one line on stderr and exit code
    /// <see cref="ExitCode"/>; anything else is a bug and propagates with its stack trace.
    /// </summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (IsUserError(e))
        {
            Console.Error.WriteLine($"error: {OneLine(e.Message)}");
            return ExitCode(e);
        }
    }

    /// <summary>
    /// 2 for bad input: a file that is missing, unreadable, malformed or damaged (DataFormatException, IOException,
    /// UnauthorizedAccessException, FormatException: a strategy file that is not one); 1 for the rest: options
    /// that are wrong or do not go together, what this machine cannot do, a run that diverged.
    /// </summary>
    public static int ExitCode(Exception e) =>
        e is DataFormatException or IOException or UnauthorizedAccessException or FormatException ? BadInput : Usage;

    /// <summary>A message as one line (a file's own text quoted in it may hold line breaks).</summary>
    private static string OneLine(string message) => message.ReplaceLineEndings(" ");

    /// <summary>
    /// What the person running the command can fix: bad input (ArgumentException, FormatException), a bad or
    /// missing file or directory (DataFormatException, IOException and its FileNotFound/DirectoryNotFound,
    /// UnauthorizedAccessException), what this machine cannot do (NotSupportedException; DeviceException: no GPU,
    /// a driver failure, out of device memory) and a training run that diverged. Not user errors, though they
    /// derive from ArgumentException: ArgumentNullException and ArgumentOutOfRangeException, which this code
    /// throws only for its own mistakes (an index, an enum value); nor InvalidOperationException (an object used
    /// in the wrong state: a bug).
    /// </summary>
    public static bool IsUserError(Exception e) => e switch
    {
        ArgumentNullException or ArgumentOutOfRangeException => false,
        ArgumentException or FormatException => true,
        DataFormatException or IOException or UnauthorizedAccessException => true,
        NotSupportedException or DeviceException or TrainingDivergedException => true,
        _ => false,
    };

    /// <summary>
    /// A token that Ctrl-C (SIGINT) and SIGTERM (what `kill`, job schedulers and container stops send) cancel
    /// instead of killing the process, so a long verb stops at the next step boundary and saves first; then
    /// <see cref="ExitCode"/> is what a shell expects of a process that signal stopped (128 + its number).
    /// Dispose to restore the default handling.
    /// </summary>
    public sealed class StopSignal : IDisposable
    {
        private readonly CancellationTokenSource _cts = new();
        private readonly PosixSignalRegistration[] _regs;
        private PosixSignal? _signal;
        public CancellationToken Token => _cts.Token;
        public bool Requested => _cts.IsCancellationRequested;
        /// <summary>The signal that asked to stop; null while none has.</summary>
        public PosixSignal? Signal => _signal;
        /// <summary>130 after SIGINT, 143 after SIGTERM, 0 while no signal came.</summary>
        public int ExitCode => _signal switch { PosixSignal.SIGINT => Sigint, PosixSignal.SIGTERM => Sigterm, _ => 0 };

        public StopSignal()
        {
            _regs = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM }
                .Select(sig => PosixSignalRegistration.Create(sig, ctx =>
                {
                    ctx.Cancel = true;
                    Request(ctx.Signal);
                })).ToArray();
        }

        /// <summary>What a signal does (the first one counts).</summary>
        internal void Request(PosixSignal signal)
        {
            if (_cts.IsCancellationRequested) return;
            _signal = signal;
            Console.Error.WriteLine($"\n{signal}: stopping after the current step (saving first)");
            _cts.Cancel();
        }

        public void Dispose()
        {
            foreach (var r in _regs) r.Dispose();
            _cts.Dispose();
        }
    }

    /// <summary>The op table and, when any backend timed its kernels, the per-kernel table.</summary>
    public static void PrintProfile()
    {
        Console.WriteLine(Profiler.Report());
        var kernels = Profiler.KernelReport();
        if (kernels.Length > 0) Console.WriteLine(kernels);
    }

    public static bool Interactive => AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;
}
