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
        var ptxDir = new Option<string?>("--ptx") { Description = "write one .ptx per kernel into this directory" };
        var arch = new Option<string>("--arch")
        {
            Description = "target(s) of --ptx, comma-separated: " + string.Join(", ", Ptx.Architectures),
            DefaultValueFactory = _ => "sm_90",
        };
        var table = new Option<string?>("--table")
        {
            Description = "with --ptx and ptxas: also write the resource table (markdown) to this file",
        };
        var check = new Option<bool>("--check")
        {
            Description =
                "with --ptx: exit 1 unless ptxas assembles every kernel, nothing calls an unresolved function and " +
                "the hot kernels have no stack frame",
        };
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

    /// <summary>$PTXAS, else ptxas on PATH; null when neither exists.</summary>
    public static string? FindPtxas()
    {
        var env = Environment.GetEnvironmentVariable("PTXAS");
        if (!string.IsNullOrEmpty(env))
            return File.Exists(env) ? env
                : throw new FileNotFoundException($"$PTXAS names {env}, which does not exist");
        foreach (var d in (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Combine(d, "ptxas"))) return Path.Combine(d, "ptxas");
        return null;
    }

    private static int WritePtx(string dir, string archList, string? tablePath, bool check)
    {
        var archs = archList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (archs.Length == 0) throw new ArgumentException("--arch: no architecture given");
        var ptxas = FindPtxas();
        if (check && ptxas is null)
            throw new FileNotFoundException("--check needs NVIDIA's ptxas on PATH or in $PTXAS");
        var rows = new List<(KernelEntry Entry, Ptx.Resources?[] R)>();
        for (int a = 0; a < archs.Length; a++)
        {
            // One architecture: DIR/kernel.ptx; several: DIR/sm_XX/kernel.ptx.
            var outDir = archs.Length == 1 ? dir : Path.Combine(dir, archs[a]);
            Directory.CreateDirectory(outDir);
            int i = 0;
            foreach (var (entry, text) in Ptx.Compile(KernelCatalog.All, archs[a]))
            {
                var file = Path.Combine(outDir, entry.Name + ".ptx");
                File.WriteAllText(file, text);
                if (a == 0) rows.Add((entry, new Ptx.Resources?[archs.Length]));
                rows[i++].R[a] = ptxas is null ? null : Ptx.Assemble(ptxas, file, entry.Name, archs[a]);
            }
            Console.WriteLine($"wrote {rows.Count} PTX files for {archs[a]} to {outDir}");
        }
        if (ptxas is null)
        {
            Console.WriteLine("ptxas not found (PATH or $PTXAS): no resource table");
            return 0;
        }
        var problems = Problems(rows.SelectMany(r => r.R.Select(x => (r.Entry, x)))).ToList();
        var md = Table(rows, archs);
        Console.WriteLine(md);
        if (tablePath is not null) File.WriteAllText(tablePath, md);
        foreach (var p in problems) Console.Error.WriteLine($"kernels: {p}");
        if (problems.Count == 0)
            Console.WriteLine($"ptxas assembled all {rows.Count} kernels for {string.Join(" and ", archs)}; hot " +
                              $"kernels have no stack frame");
        return check && problems.Count > 0 ? 1 : 0;
    }

    /// <summary>
    /// What --check refuses: ptxas errors, unresolved externals, stack frames or spills in hot kernels.
    /// </summary>
    public static IEnumerable<string> Problems(IEnumerable<(KernelEntry Entry, Ptx.Resources? R)> rows)
    {
        foreach (var (e, r) in rows)
        {
            if (r is null) continue;
            if (r.Error is not null) yield return $"{e.Name} ({r.Arch}): {r.Error}";
            else if (e.Hot && (r.StackBytes > 0 || r.SpillStores > 0 || r.SpillLoads > 0))
                yield return $"{e.Name} ({r.Arch}) is hot but has a {r.StackBytes}-byte stack frame, " +
                             $"{r.SpillStores}/{r.SpillLoads} bytes of spills";
        }
    }

    /// <summary>Markdown: one row per kernel, "a / b" where the architectures differ.</summary>
    public static string Table(IEnumerable<(KernelEntry Entry, Ptx.Resources?[] R)> rows, IReadOnlyList<string> archs)
    {
        string Col(Ptx.Resources?[] r, Func<Ptx.Resources, string> f)
        {
            var v = r.Select(x => x is null ? "–" : x.Error is not null ? "error" : f(x)).ToList();
            return v.Distinct().Count() == 1 ? v[0] : string.Join(" / ", v);
        }
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"| kernel | hot | registers | shared B | stack B | spill st/ld B |");
        sb.AppendLine("|---|:-:|---:|---:|---:|---:|");
        foreach (var (e, r) in rows)
            sb.AppendLine($"| {e.Name} | {(e.Hot ? "✓" : "")} | {Col(r, x => x.Registers.ToString())} | " +
                          $"{Col(r, x => x.SharedBytes.ToString())} | {Col(r, x => x.StackBytes.ToString())} | " +
                          $"{Col(r, x => $"{x.SpillStores}/{x.SpillLoads}")} |");
        sb.AppendLine($"(ptxas 11.8 -v; where two values are given: {string.Join(" / ", archs)})");
        return sb.ToString();
    }
}
