using System.Runtime.InteropServices;

namespace Ddsm.Engine.Ilgpu;

/// <summary>
/// The few CUDA driver calls ILGPU 1.5.3 has no API for: stream capture into graphs, graph replay,
/// and the per-function opt-in to more than 48 KB of dynamic shared memory. Everything else (context,
/// memory, copies, launches, events) goes through ILGPU. Results are checked by <see cref="Check"/>,
/// which names the call and the driver's error.
/// </summary>
internal static class CudaDriver
{
    private const string Lib = "libcuda.so.1";
    public const int Success = 0;
    public const int FuncAttrMaxDynamicSharedSizeBytes = 8;
    public const int AttrMaxSharedMemoryPerBlockOptin = 97;
    public const int StreamCaptureModeRelaxed = 2;

    [DllImport(Lib)] public static extern int cuFuncSetAttribute(IntPtr func, int attrib, int value);
    [DllImport(Lib)] public static extern int cuDeviceGetAttribute(out int value, int attrib, int device);
    [DllImport(Lib, EntryPoint = "cuStreamBeginCapture_v2")] public static extern int cuStreamBeginCapture(
        IntPtr stream, int mode);
    [DllImport(Lib)] public static extern int cuStreamEndCapture(IntPtr stream, out IntPtr graph);
    // cuGraphInstantiate's signature changed in CUDA 12; the WithFlags form (11.4+) is the same everywhere.
    [DllImport(Lib)] public static extern int cuGraphInstantiateWithFlags(out IntPtr exec, IntPtr graph, ulong flags);
    [DllImport(Lib)] public static extern int cuGraphLaunch(IntPtr exec, IntPtr stream);
    [DllImport(Lib)] public static extern int cuGraphExecDestroy(IntPtr exec);
    [DllImport(Lib)] public static extern int cuGraphDestroy(IntPtr graph);
    [DllImport(Lib)] private static extern int cuGetErrorName(int error, out IntPtr str);
    [DllImport(Lib)] private static extern int cuGetErrorString(int error, out IntPtr str);

    /// <summary>Null when the driver library loads; else the loader's reason (for "no CUDA device" messages).</summary>
    public static string? MissingReason()
    {
        if (NativeLibrary.TryLoad(Lib, out var h)) { NativeLibrary.Free(h); return null; }
        return $"the CUDA driver ({Lib}) is not installed or not on the loader path";
    }

    /// <summary>Throws naming <paramref name="call"/> unless <paramref name="result"/> is CUDA_SUCCESS.</summary>
    public static void Check(int result, string call)
    {
        if (result == Success) return;
        string name = $"CUresult {result}", text = "(no description)";
        try
        {
            if (cuGetErrorName(result, out var n) == Success && n != IntPtr.Zero)
                name = Marshal.PtrToStringAnsi(n) ?? name;
            if (cuGetErrorString(result, out var s) == Success && s != IntPtr.Zero)
                text = Marshal.PtrToStringAnsi(s) ?? text;
        }
        catch (Exception) { /* the driver itself is broken: keep the number */ }
        throw new DeviceException($"{call} failed: {name} ({result}): {text}");
    }
}
