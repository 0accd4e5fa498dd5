namespace Ddsm.Engine.Cuda;

/// <summary>
/// A failed CUDA driver or NVRTC call: names the call and the error (name, code and description),
/// e.g. "cuModuleLoadData failed: CUDA_ERROR_INVALID_IMAGE (200): device kernel image is invalid".
/// Also used for a missing driver or NVRTC library (Call = "load").
/// </summary>
public class CudaException : Exception
{
    public string Call { get; }
    public int Code { get; }
    public string ErrorName { get; }

    public CudaException(string call, int code, string errorName, string description)
        : base($"{call} failed: {errorName} ({code}): {description}")
    {
        Call = call; Code = code; ErrorName = errorName;
    }

    public CudaException(string call, string message) : base(message)
    {
        Call = call; Code = -1; ErrorName = "";
    }
}

/// <summary>Device memory exhausted even after the allocator released its cache.</summary>
public sealed class CudaOutOfMemoryException(long requestedBytes, long freeBytes, long totalBytes, long cachedReleased)
    : CudaException("cuMemAlloc_v2",
        $"CUDA out of memory: cuMemAlloc_v2 of {Mib(requestedBytes)} failed after releasing {Mib(cachedReleased)} " +
        $"of cached blocks; device has {Mib(freeBytes)} free of {Mib(totalBytes)}")
{
    public long RequestedBytes { get; } = requestedBytes;
    public long FreeBytes { get; } = freeBytes;
    public long TotalBytes { get; } = totalBytes;

    private static string Mib(long b) => $"{b / (1024.0 * 1024.0):F1} MiB ({b} bytes)";
}
