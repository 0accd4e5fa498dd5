// Offline PTX for every catalog kernel, without a GPU: ILGPU's PTX backend for a chosen architecture.
// For performance engineers (`ddsm kernels --ptx DIR`) and for the CI check that NVIDIA's ptxas
// assembles every kernel (registers, shared memory, stack and spills per kernel).
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Ddsm.Kernels;

public static partial class Ptx
{
    /// <summary>The architectures the kernels are checked for ("sm_80", "sm_90").</summary>
    public static IReadOnlyList<string> Architectures => ["sm_80", "sm_90"];

    private static CudaArchitecture Arch(string arch) => arch switch
    {
        "sm_80" => CudaArchitecture.SM_80,
        "sm_86" => CudaArchitecture.SM_86,
        "sm_89" => CudaArchitecture.SM_89,
        "sm_90" => CudaArchitecture.SM_90,
        _ => throw new ArgumentException($"unsupported architecture '{arch}' (sm_80, sm_86, sm_89, sm_90)"),
    };

    /// <summary>
    /// PTX of each entry for <paramref name="arch"/> (ISA 7.8: the newest NVIDIA's ptxas 11.8 accepts;
    /// the driver JITs it for newer cards). ILGPU writes the lowest .target that supports the code
    /// (sm_80 here); ptxas then assembles it for the requested architecture.
    /// </summary>
    public static IEnumerable<(KernelEntry Entry, string Ptx)> Compile(IEnumerable<KernelEntry> entries, string arch)
    {
        using var context = Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, Arch(arch), CudaInstructionSet.ISA_78, nvvmAPI: null!);
        foreach (var e in entries)
        {
            var desc = EntryPointDescription.FromExplicitlyGroupedKernel(e.Method);
            var compiled = (PTXCompiledKernel)backend.Compile(desc, new KernelSpecialization());
            yield return (e, compiled.PTXAssembly);
        }
    }

    /// <summary>What ptxas -v says of one kernel.</summary>
    public sealed record Resources(string Kernel, string Arch, int Registers, int SharedBytes, int StackBytes,
        int SpillStores, int SpillLoads, string? Error);

    /// <summary>
    /// Assembles one PTX file with <paramref name="ptxas"/> -v for <paramref name="arch"/> and parses its
    /// resource lines (an unresolved .extern .func or any ptxas error comes back in Error).
    /// </summary>
    public static Resources Assemble(string ptxas, string ptxFile, string kernel, string arch)
    {
        var text = File.ReadAllText(ptxFile);
        if (ExternFunc().Match(text) is { Success: true } ext)
            return new Resources(kernel, arch, 0, 0, 0, 0, 0, $"unresolved {ext.Value.Trim()}");
        var psi = new ProcessStartInfo(ptxas, ["-v", $"-arch={arch}", ptxFile, "-o", "/dev/null"])
        {
            RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {ptxas}");
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) return new Resources(kernel, arch, 0, 0, 0, 0, 0, output.Trim());
        int Num(Regex r) =>
            r.Match(output) is { Success: true } m ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        return new Resources(kernel, arch, Num(Regs()), Num(Smem()), Num(Stack()), Num(SpillSt()), Num(SpillLd()),
                             null);
    }

    [GeneratedRegex(@"^\s*\.extern\s+\.func.*$", RegexOptions.Multiline)] private static partial Regex ExternFunc();
    [GeneratedRegex(@"Used (\d+) registers")] private static partial Regex Regs();
    [GeneratedRegex(@"(\d+) bytes smem")] private static partial Regex Smem();
    [GeneratedRegex(@"(\d+) bytes stack frame")] private static partial Regex Stack();
    [GeneratedRegex(@"(\d+) bytes spill stores")] private static partial Regex SpillSt();
    [GeneratedRegex(@"(\d+) bytes spill loads")] private static partial Regex SpillLd();
}
