using System.CommandLine;
using Ddsm.Kernels;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary>
/// <c>ddsm kernels</c>: the GPU kernels for performance engineers. Lists every entry point and
/// specialisation; with --ptx writes one PTX file per kernel (no GPU needed) and, when NVIDIA's ptxas
/// is on PATH or named by $PTXAS, assembles each and prints registers, shared memory, stack and spills.
/// </summary>
internal static class KernelsCommand
{
    public static Command Create()
    {
        var ptxDir = Opt.Of<string?>("--ptx", "write one .ptx per kernel into this directory");
        var arch = Opt.Of<string>("--arch", "sm_90",
            "target(s) of --ptx, comma-separated: " + string.Join(", ", Ptx.Architectures));
        var table = Opt.Of<string?>("--table",
            "with --ptx and ptxas: also write the resource table (markdown) to this file");
        var check = Opt.Of<bool>("--check",
            "with --ptx: exit 1 unless ptxas assembles every kernel, nothing calls an unresolved function and the " +
            "hot kernels have no stack frame");
        var cmd = new Command("kernels", "list the GPU kernels; write their PTX and ptxas resource usage")
        {
            ptxDir, arch, table, check,
        };
        cmd.SetAction(p => Common.Guard(() => p.GetValue(ptxDir) is { } dir
            ? WritePtx(dir, p.GetValue(arch)!, p.GetValue(table), p.GetValue(check))
            : List()));
        return cmd;
    }

    private static int List()
    {
        var t = new Table().AddColumns("kernel", "family", "hot", "what it computes");
        foreach (var e in KernelCatalog.All) t.AddRow(e.Name, e.Family, e.Hot ? "yes" : "", Markup.Escape(e.Summary));
        AnsiConsole.Write(t);
        Console.WriteLine($"{KernelCatalog.All.Count} kernels; `ddsm kernels --ptx DIR --arch sm_90` writes their PTX");
        return 0;
    }

    private static int WritePtx(string dir, string archList, string? tablePath, bool check)
    {
        var archs = archList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var ptxas = PtxReport.FindPtxas();
        if (check && ptxas is null)
            throw new FileNotFoundException("--check needs NVIDIA's ptxas on PATH or in $PTXAS");
        var report = PtxReport.Write(dir, archs, ptxas,
            (arch, count, outDir) => Console.WriteLine($"wrote {count} PTX files for {arch} to {outDir}"));
        if (!report.Assembled)
        {
            Console.WriteLine("ptxas not found (PATH or $PTXAS): no resource table");
            return 0;
        }
        var problems = report.Problems();
        Console.WriteLine(report.Table());
        if (tablePath is not null) report.WriteTable(tablePath);
        foreach (var p in problems) Console.Error.WriteLine($"kernels: {p}");
        if (problems.Count == 0)
            Console.WriteLine($"ptxas assembled all {report.Rows.Count} kernels for {string.Join(" and ", archs)}; " +
                              "hot kernels have no stack frame");
        return check && problems.Count > 0 ? 1 : 0;
    }
}
