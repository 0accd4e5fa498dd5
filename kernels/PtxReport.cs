// What `ddsm kernels --ptx` and the CI check (.ci/kernels-check) produce: every catalog kernel's PTX for one or
// more architectures, assembled by NVIDIA's ptxas where one is found, its resources per kernel, what the check
// refuses, and the markdown table of it all. The command line only parses, calls this and prints.
namespace Ddsm.Kernels;

/// <summary>The PTX of every catalog kernel for some architectures and, given ptxas, what it assembled to.</summary>
public sealed class PtxReport
{
    public required IReadOnlyList<string> Archs { get; init; }
    /// <summary>
    /// Per kernel, its resources for each of <see cref="Archs"/>; null entries where ptxas was not found.
    /// </summary>
    public required IReadOnlyList<(KernelEntry Entry, Ptx.Resources?[] R)> Rows { get; init; }
    public bool Assembled { get; init; }

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

    /// <summary>
    /// Writes one .ptx per catalog kernel into <paramref name="dir"/> (several architectures: DIR/sm_XX/) and,
    /// given <paramref name="ptxas"/>, assembles each. <paramref name="onWritten"/> hears of each architecture's
    /// files as they are written (count, directory).
    /// </summary>
    public static PtxReport Write(string dir, IReadOnlyList<string> archs, string? ptxas,
        Action<string, int, string>? onWritten = null)
    {
        if (archs.Count == 0) throw new ArgumentException("--arch: no architecture given");
        var rows = new List<(KernelEntry Entry, Ptx.Resources?[] R)>();
        for (int a = 0; a < archs.Count; a++)
        {
            var outDir = archs.Count == 1 ? dir : Path.Combine(dir, archs[a]);
            Directory.CreateDirectory(outDir);
            int i = 0;
            foreach (var (entry, text) in Ptx.Compile(KernelCatalog.All, archs[a]))
            {
                var file = Path.Combine(outDir, entry.Name + ".ptx");
                File.WriteAllText(file, text);
                if (a == 0) rows.Add((entry, new Ptx.Resources?[archs.Count]));
                rows[i++].R[a] = ptxas is null ? null : Ptx.Assemble(ptxas, file, entry.Name, archs[a]);
            }
            onWritten?.Invoke(archs[a], rows.Count, outDir);
        }
        return new PtxReport { Archs = archs, Rows = rows, Assembled = ptxas is not null };
    }

    /// <summary>
    /// What --check refuses: ptxas errors, unresolved externals, stack frames or spills in hot kernels.
    /// </summary>
    public IReadOnlyList<string> Problems() => Problems(Rows.SelectMany(r => r.R.Select(x => (r.Entry, x)))).ToList();

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
    public string Table()
    {
        string Col(Ptx.Resources?[] r, Func<Ptx.Resources, string> f)
        {
            var v = r.Select(x => x is null ? "–" : x.Error is not null ? "error" : f(x)).ToList();
            return v.Distinct().Count() == 1 ? v[0] : string.Join(" / ", v);
        }
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("| kernel | hot | registers | shared B | stack B | spill st/ld B |");
        sb.AppendLine("|---|:-:|---:|---:|---:|---:|");
        foreach (var (e, r) in Rows)
        {
            string regs = Col(r, x => x.Registers.ToString()), shared = Col(r, x => x.SharedBytes.ToString());
            string stack = Col(r, x => x.StackBytes.ToString()),
                   spills = Col(r, x => $"{x.SpillStores}/{x.SpillLoads}");
            sb.AppendLine($"| {e.Name} | {(e.Hot ? "✓" : "")} | {regs} | {shared} | {stack} | {spills} |");
        }
        sb.AppendLine($"(ptxas 11.8 -v; where two values are given: {string.Join(" / ", Archs)})");
        return sb.ToString();
    }

    /// <summary>The table, written to a temporary file and moved into place: a reader never sees half of it.</summary>
    public void WriteTable(string path)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, Table());
        File.Move(tmp, path, overwrite: true);
    }
}
