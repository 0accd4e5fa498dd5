using System.Reflection;
using System.Runtime.InteropServices;

namespace Ddsm.Engine.Cuda;

/// <summary>
/// Finds the CUDA driver and NVRTC shared libraries for the [DllImport("cuda")] and
/// [DllImport("nvrtc")] declarations, through one DllImportResolver on this assembly, so that a
/// missing library becomes one clear <see cref="CudaException"/> listing what was tried instead of
/// a bare DllNotFoundException on the first call.
/// Search order. Driver: libcuda.so.1, libcuda.so (the driver ships with the GPU, never with us).
/// NVRTC: $DDSM_NVRTC alone when set (an explicit override that is wrong must fail, not silently
/// fall back); else libnvrtc.so.13, libnvrtc.so.12 (loader path), then $CUDA_PATH/lib64/libnvrtc.so*.
/// .NET allows ONE resolver per assembly: other native libraries of Ddsm.Engine (a BLAS, say) must
/// be added with <see cref="Register"/> rather than a second SetDllImportResolver, which would throw.
/// </summary>
internal static class NativeLibs
{
    public const string DriverName = "cuda", NvrtcName = "nvrtc";
    private static readonly object Gate = new();
    private static IntPtr _driver, _nvrtc;
    private static bool _resolverSet;
    private static readonly Dictionary<string, Func<IntPtr>> Others = new();

    /// <summary>Resolves [DllImport(<paramref name="name"/>)] of this assembly with <paramref name="load"/>
    /// (return IntPtr.Zero to fall back to the default probing).</summary>
    public static void Register(string name, Func<IntPtr> load)
    {
        lock (Gate) Others[name] = load;
        EnsureResolver();
    }

    /// <summary>Installs the resolver (idempotent). Called before any CUDA P/Invoke.</summary>
    public static void EnsureResolver()
    {
        lock (Gate)
        {
            if (_resolverSet) return;
            NativeLibrary.SetDllImportResolver(typeof(NativeLibs).Assembly, Resolve);
            _resolverSet = true;
        }
    }

    private static IntPtr Resolve(string name, Assembly asm, DllImportSearchPath? path)
    {
        if (name == DriverName) return LoadDriver();
        if (name == NvrtcName) return LoadNvrtc();
        Func<IntPtr>? other;
        lock (Gate) Others.TryGetValue(name, out other);
        return other?.Invoke() ?? IntPtr.Zero;
    }

    public static IReadOnlyList<string> DriverCandidates() => ["libcuda.so.1", "libcuda.so"];

    public static IReadOnlyList<string> NvrtcCandidates(Func<string, string?> env)
    {
        var over = env("DDSM_NVRTC");
        if (!string.IsNullOrEmpty(over)) return [over];
        var list = new List<string> { "libnvrtc.so.13", "libnvrtc.so.12" };
        var cudaPath = env("CUDA_PATH");
        if (!string.IsNullOrEmpty(cudaPath))
        {
            var lib = Path.Combine(cudaPath, "lib64");
            if (Directory.Exists(lib))
                list.AddRange(Directory.GetFiles(lib, "libnvrtc.so*")
                    .Where(f => !f.Contains("builtins", StringComparison.Ordinal))
                    .OrderByDescending(f => f, StringComparer.Ordinal));
            else list.Add(Path.Combine(lib, "libnvrtc.so"));
        }
        return list;
    }

    /// <summary>The driver library handle; throws "CUDA driver libcuda.so.1 not found: …" when absent.</summary>
    public static IntPtr LoadDriver()
    {
        lock (Gate)
        {
            if (_driver != IntPtr.Zero) return _driver;
            _driver = LoadFirst("CUDA driver libcuda.so.1", DriverCandidates(),
                "install the NVIDIA driver, or run where a GPU is present");
            return _driver;
        }
    }

    /// <summary>The NVRTC library handle; throws "NVRTC library not found: …" when absent.</summary>
    public static IntPtr LoadNvrtc()
    {
        lock (Gate)
        {
            if (_nvrtc != IntPtr.Zero) return _nvrtc;
            _nvrtc = LoadFirst("NVRTC library (libnvrtc)", NvrtcCandidates(Environment.GetEnvironmentVariable),
                "install the CUDA toolkit's NVRTC (e.g. cuda-nvrtc-12-x), or set DDSM_NVRTC to libnvrtc.so's path " +
                "or CUDA_PATH to the toolkit");
            return _nvrtc;
        }
    }

    /// <summary>Loads the first candidate that loads; otherwise one CudaException naming every attempt.</summary>
    public static IntPtr LoadFirst(string what, IReadOnlyList<string> candidates, string hint)
    {
        var tried = new List<string>();
        foreach (var c in candidates)
        {
            try { return NativeLibrary.Load(c); }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                tried.Add($"{c} ({LoaderReason(c, e.Message)})");
            }
        }
        throw new CudaException("load", $"{what} not found: tried {(tried.Count == 0 ? "nothing" : string.Join("; ", tried))}. Fix: {hint}.");
    }

    /// <summary>The dlerror() part of .NET's message ("x: cannot open shared object file: …"),
    /// without the generic advice that precedes it.</summary>
    private static string LoaderReason(string candidate, string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var dl = lines.Where(l => !l.StartsWith("Unable to load shared library", StringComparison.Ordinal)).ToList();
        if (dl.Count == 0) return lines.Length > 0 ? lines[0] : "not loadable";
        var text = string.Join("; ", dl);
        return text.StartsWith(candidate + ": ", StringComparison.Ordinal) ? text[(candidate.Length + 2)..] : text;
    }
}
