using System.Runtime.InteropServices;

namespace Ddsm.Engine.Cuda;

/// <summary>
/// The CUDA driver API exports we use, bound by their real (versioned) names. Handles are IntPtr,
/// CUdeviceptr is 64-bit (ulong), CUresult is int. Every call site wraps the result in
/// <see cref="Check"/>, which turns a non-zero CUresult into a <see cref="CudaException"/> naming the
/// call and the error (cuGetErrorName / cuGetErrorString).
/// </summary>
internal static unsafe class Driver
{
    static Driver() => NativeLibs.EnsureResolver();

    public const int Success = 0, ErrorOutOfMemory = 2, ErrorNoDevice = 100;
    public const int AttrMultiprocessorCount = 16, AttrComputeCapabilityMajor = 75, AttrComputeCapabilityMinor = 76,
        AttrMaxSharedMemoryPerBlockOptin = 97;
    public const int FuncAttrMaxDynamicSharedSizeBytes = 8;
    public const int StreamCaptureModeRelaxed = 2;

    private const string L = NativeLibs.DriverName;

    [DllImport(L)] public static extern int cuInit(uint flags);
    [DllImport(L)] public static extern int cuDriverGetVersion(out int version);
    [DllImport(L)] public static extern int cuDeviceGetCount(out int count);
    [DllImport(L)] public static extern int cuDeviceGet(out int device, int ordinal);
    [DllImport(L)] public static extern int cuDeviceGetAttribute(out int value, int attrib, int device);
    [DllImport(L)] public static extern int cuDeviceGetName(byte* name, int len, int device);
    [DllImport(L)] public static extern int cuDevicePrimaryCtxRetain(out IntPtr ctx, int device);
    [DllImport(L, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] public static extern int cuDevicePrimaryCtxRelease(int device);
    [DllImport(L)] public static extern int cuCtxSetCurrent(IntPtr ctx);

    [DllImport(L, EntryPoint = "cuMemAlloc_v2")] public static extern int cuMemAlloc(out ulong dptr, nuint bytes);
    [DllImport(L, EntryPoint = "cuMemFree_v2")] public static extern int cuMemFree(ulong dptr);
    [DllImport(L, EntryPoint = "cuMemGetInfo_v2")] public static extern int cuMemGetInfo(out nuint free, out nuint total);
    [DllImport(L, EntryPoint = "cuMemcpyHtoD_v2")] public static extern int cuMemcpyHtoD(ulong dst, void* src, nuint bytes);
    [DllImport(L, EntryPoint = "cuMemcpyDtoH_v2")] public static extern int cuMemcpyDtoH(void* dst, ulong src, nuint bytes);
    [DllImport(L, EntryPoint = "cuMemcpyDtoDAsync_v2")] public static extern int cuMemcpyDtoDAsync(ulong dst, ulong src, nuint bytes, IntPtr stream);
    [DllImport(L)] public static extern int cuMemsetD32Async(ulong dst, uint value, nuint count, IntPtr stream);

    [DllImport(L)] public static extern int cuModuleLoadData(out IntPtr module, byte* image);
    [DllImport(L)] public static extern int cuModuleUnload(IntPtr module);
    [DllImport(L)] public static extern int cuModuleGetFunction(out IntPtr func, IntPtr module, byte* name);
    [DllImport(L)] public static extern int cuFuncSetAttribute(IntPtr func, int attrib, int value);
    [DllImport(L)] public static extern int cuLaunchKernel(IntPtr func, uint gx, uint gy, uint gz, uint bx, uint by, uint bz,
        uint sharedBytes, IntPtr stream, void** kernelParams, void** extra);

    [DllImport(L)] public static extern int cuStreamCreate(out IntPtr stream, uint flags);
    [DllImport(L, EntryPoint = "cuStreamDestroy_v2")] public static extern int cuStreamDestroy(IntPtr stream);
    [DllImport(L)] public static extern int cuStreamSynchronize(IntPtr stream);

    [DllImport(L)] public static extern int cuEventCreate(out IntPtr ev, uint flags);
    [DllImport(L)] public static extern int cuEventRecord(IntPtr ev, IntPtr stream);
    [DllImport(L)] public static extern int cuEventSynchronize(IntPtr ev);
    [DllImport(L)] public static extern int cuEventElapsedTime(out float ms, IntPtr start, IntPtr end);
    [DllImport(L, EntryPoint = "cuEventDestroy_v2")] public static extern int cuEventDestroy(IntPtr ev);

    [DllImport(L, EntryPoint = "cuStreamBeginCapture_v2")] public static extern int cuStreamBeginCapture(IntPtr stream, int mode);
    [DllImport(L)] public static extern int cuStreamEndCapture(IntPtr stream, out IntPtr graph);
    // cuGraphInstantiate's signature changed in CUDA 12; the WithFlags form (11.4+) is the same everywhere.
    [DllImport(L)] public static extern int cuGraphInstantiateWithFlags(out IntPtr exec, IntPtr graph, ulong flags);
    [DllImport(L)] public static extern int cuGraphLaunch(IntPtr exec, IntPtr stream);
    [DllImport(L, EntryPoint = "cuGraphExecDestroy")] public static extern int cuGraphExecDestroy(IntPtr exec);
    [DllImport(L)] public static extern int cuGraphDestroy(IntPtr graph);

    [DllImport(L)] public static extern int cuGetErrorName(int error, out IntPtr str);
    [DllImport(L)] public static extern int cuGetErrorString(int error, out IntPtr str);

    /// <summary>Throws a CudaException naming <paramref name="call"/> unless <paramref name="result"/> is CUDA_SUCCESS.</summary>
    public static void Check(int result, string call)
    {
        if (result != Success) throw Error(result, call);
    }

    public static CudaException Error(int result, string call)
    {
        string name = $"CUresult {result}", text = "(no description)";
        try
        {
            if (cuGetErrorName(result, out var n) == Success && n != IntPtr.Zero) name = Marshal.PtrToStringAnsi(n) ?? name;
            if (cuGetErrorString(result, out var s) == Success && s != IntPtr.Zero) text = Marshal.PtrToStringAnsi(s) ?? text;
        }
        catch (Exception) { /* the driver itself is broken: keep the number */ }
        return new CudaException(call, result, name, text);
    }

    /// <summary>Null-terminated UTF-8 bytes for the char* parameters.</summary>
    public static byte[] CString(string s)
    {
        var b = new byte[System.Text.Encoding.UTF8.GetByteCount(s) + 1];
        System.Text.Encoding.UTF8.GetBytes(s, b);
        return b;
    }
}
