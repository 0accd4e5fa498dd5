using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace Ddsm.Engine.Cuda;

/// <summary>
/// The CUDA C sources of kernels/*.cu and *.cuh, embedded in this assembly as "kernels/&lt;file&gt;"
/// (see Ddsm.Engine.csproj), so a deployed engine needs no source tree. Setting $DDSM_KERNELS_DIR
/// reads them from that folder instead (edit a kernel on a GPU machine without rebuilding C#).
/// </summary>
public static class KernelSources
{
    private const string Prefix = "kernels/";
    private static Assembly Asm => typeof(KernelSources).Assembly;

    /// <summary>File names of the embedded kernel sources (*.cu and *.cuh).</summary>
    public static IReadOnlyList<string> Names() =>
        Asm.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal))
            .Select(n => n[Prefix.Length..]).OrderBy(n => n, StringComparer.Ordinal).ToList();

    public static string Read(string file)
    {
        var dir = Environment.GetEnvironmentVariable("DDSM_KERNELS_DIR");
        if (!string.IsNullOrEmpty(dir)) return File.ReadAllText(Path.Combine(dir, file));
        using var s = Asm.GetManifestResourceStream(Prefix + file)
            ?? throw new FileNotFoundException($"kernel source '{file}' is not embedded in {Asm.GetName().Name} " +
                                               $"(have: {string.Join(", ", Names())})");
        using var r = new StreamReader(s, Encoding.UTF8);
        return r.ReadToEnd();
    }

    /// <summary>Every header (*.cuh), handed to NVRTC so that #include "x.cuh" resolves.</summary>
    public static IReadOnlyList<(string Name, string Text)> Headers() =>
        Names().Where(n => n.EndsWith(".cuh", StringComparison.Ordinal)).Select(n => (n, Read(n))).ToList();
}

/// <summary>
/// On-disk cache of compiled kernels: &lt;dir&gt;/&lt;key&gt;.cubin with key = SHA-256 of everything
/// that changes the machine code (source, headers, target arch, compiler options and NVRTC version),
/// so editing a kernel, changing an option or moving to another GPU recompiles, and nothing else does.
/// Dir: $DDSM_KERNEL_CACHE, else ~/.cache/ddsm/kernels.
/// </summary>
public static class KernelCache
{
    public static string Directory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("DDSM_KERNEL_CACHE");
            if (!string.IsNullOrEmpty(env)) return env;
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (string.IsNullOrEmpty(home)) home = Path.GetTempPath();
            return Path.Combine(home, ".cache", "ddsm", "kernels");
        }
    }

    public static string Key(string source, IReadOnlyList<(string Name, string Text)> headers, string arch,
        IReadOnlyList<string> options, string compilerVersion)
    {
        var sb = new StringBuilder();
        // Lengths delimit the fields so that moving text between them changes the key.
        void Field(string tag, string v) => sb.Append(tag).Append(':').Append(v.Length).Append(':').Append(v).Append('\n');
        Field("v", "ddsm-kernel-cache-1");
        Field("arch", arch);
        foreach (var o in options) Field("opt", o);
        Field("nvrtc", compilerVersion);
        foreach (var (n, t) in headers.OrderBy(h => h.Name, StringComparer.Ordinal)) { Field("hname", n); Field("htext", t); }
        Field("src", source);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    public static byte[]? TryLoad(string key)
    {
        try
        {
            var p = Path.Combine(Directory, key + ".cubin");
            return File.Exists(p) ? File.ReadAllBytes(p) : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>Writes atomically (temp file + rename) so a concurrent reader never sees half a file.
    /// A cache that cannot be written is not an error: the kernel is simply compiled again next run.</summary>
    public static void Store(string key, byte[] image)
    {
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            var final = Path.Combine(Directory, key + ".cubin");
            var tmp = final + "." + Environment.ProcessId + ".tmp";
            File.WriteAllBytes(tmp, image);
            File.Move(tmp, final, overwrite: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
