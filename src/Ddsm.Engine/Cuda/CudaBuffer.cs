namespace Ddsm.Engine.Cuda;

/// <summary>Device memory of <see cref="Length"/> floats at <see cref="Ptr"/> (a CUdeviceptr), from
/// a size bucket of <see cref="CapacityBytes"/> bytes of the backend's caching allocator.</summary>
public sealed class CudaBuffer : DeviceBuffer
{
    private readonly CudaBackend _backend;
    internal CudaBuffer(CudaBackend backend, ulong ptr, long length, long capacityBytes)
    {
        _backend = backend; Ptr = ptr; Length = length; CapacityBytes = capacityBytes;
    }

    public override Backend Backend => _backend;
    public override long Length { get; }
    public ulong Ptr { get; }
    public long CapacityBytes { get; }
    internal bool Freed { get; set; }

    /// <summary>Device address of element <paramref name="offset"/>.</summary>
    public ulong At(long offset) => Ptr + (ulong)(offset * sizeof(float));
}
