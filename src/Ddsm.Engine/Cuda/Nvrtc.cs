using System.Runtime.InteropServices;

namespace Ddsm.Engine.Cuda;

/// <summary>
/// NVRTC, the run-time CUDA C++ compiler: source text in, CUBIN for the device's own sm_XX out.
/// <see cref="Compile"/> is the only entry point the backend uses; it checks every nvrtcResult and
/// puts the compiler log in the exception when compilation fails.
/// </summary>
internal static unsafe class Nvrtc
{
    static Nvrtc() => NativeLibs.EnsureResolver();

    private const string L = NativeLibs.NvrtcName;

    [DllImport(L)] private static extern int nvrtcVersion(out int major, out int minor);
    [DllImport(L)] private static extern int nvrtcCreateProgram(out IntPtr prog, byte* src, byte* name, int numHeaders,
        byte** headers, byte** includeNames);
    [DllImport(L)] private static extern int nvrtcCompileProgram(IntPtr prog, int numOptions, byte** options);
    [DllImport(L)] private static extern int nvrtcGetProgramLogSize(IntPtr prog, out nuint size);
    [DllImport(L)] private static extern int nvrtcGetProgramLog(IntPtr prog, byte* log);
    [DllImport(L)] private static extern int nvrtcGetCUBINSize(IntPtr prog, out nuint size);
    [DllImport(L)] private static extern int nvrtcGetCUBIN(IntPtr prog, byte* cubin);
    [DllImport(L)] private static extern int nvrtcDestroyProgram(ref IntPtr prog);
    [DllImport(L)] private static extern IntPtr nvrtcGetErrorString(int result);

    private static void Check(int r, string call)
    {
        if (r == 0) return;
        string text = Marshal.PtrToStringAnsi(nvrtcGetErrorString(r)) ?? $"nvrtcResult {r}";
        throw new CudaException(call, r, text, text);
    }

    /// <summary>"major.minor" of the loaded NVRTC (part of the kernel cache key).</summary>
    public static string Version()
    {
        Check(nvrtcVersion(out int major, out int minor), "nvrtcVersion");
        return $"{major}.{minor}";
    }

    /// <summary>Compiles one translation unit (with named headers for #include "…") to CUBIN.</summary>
    public static byte[] Compile(string source, string name, IReadOnlyList<(string Name, string Text)> headers,
        IReadOnlyList<string> options)
    {
        var pins = new List<GCHandle>();
        byte* Pin(string s)
        {
            var h = GCHandle.Alloc(Driver.CString(s), GCHandleType.Pinned);
            pins.Add(h);
            return (byte*)h.AddrOfPinnedObject();
        }
        IntPtr prog = IntPtr.Zero;
        try
        {
            var hdr = stackalloc byte*[Math.Max(1, headers.Count)];
            var inc = stackalloc byte*[Math.Max(1, headers.Count)];
            for (int i = 0; i < headers.Count; i++) { hdr[i] = Pin(headers[i].Text); inc[i] = Pin(headers[i].Name); }
            var opt = stackalloc byte*[Math.Max(1, options.Count)];
            for (int i = 0; i < options.Count; i++) opt[i] = Pin(options[i]);

            Check(nvrtcCreateProgram(out prog, Pin(source), Pin(name), headers.Count, hdr, inc), "nvrtcCreateProgram");
            int rc = nvrtcCompileProgram(prog, options.Count, opt);
            if (rc != 0)
            {
                string log = Log(prog);
                string text = Marshal.PtrToStringAnsi(nvrtcGetErrorString(rc)) ?? $"nvrtcResult {rc}";
                throw new CudaException("nvrtcCompileProgram", rc, text,
                    $"{name} ({string.Join(' ', options)}):\n{log}");
            }
            Check(nvrtcGetCUBINSize(prog, out nuint size), "nvrtcGetCUBINSize");
            var cubin = new byte[(int)size];
            fixed (byte* p = cubin) Check(nvrtcGetCUBIN(prog, p), "nvrtcGetCUBIN");
            return cubin;
        }
        finally
        {
            if (prog != IntPtr.Zero) nvrtcDestroyProgram(ref prog);
            foreach (var h in pins) h.Free();
        }
    }

    private static string Log(IntPtr prog)
    {
        if (nvrtcGetProgramLogSize(prog, out nuint size) != 0 || size <= 1) return "(empty log)";
        var buf = new byte[(int)size];
        fixed (byte* p = buf) nvrtcGetProgramLog(prog, p);
        return System.Text.Encoding.UTF8.GetString(buf, 0, buf.Length - 1);
    }
}
