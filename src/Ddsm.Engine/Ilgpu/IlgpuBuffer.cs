using ILGPU;
using ILGPU.Runtime;

namespace Ddsm.Engine.Ilgpu;

/// <summary>
/// <see cref="Length"/> floats of accelerator memory: a prefix of a pooled ILGPU buffer whose capacity
/// is a size bucket of the backend's <see cref="BufferPool"/>.
/// </summary>
public sealed class IlgpuBuffer : DeviceBuffer
{
    private readonly IlgpuBackend _backend;

    internal IlgpuBuffer(IlgpuBackend backend, MemoryBuffer1D<float, Stride1D.Dense> memory, long length)
    {
        _backend = backend;
        Memory = memory;
        Length = length;
        View = memory.View.SubView(0, length).AsContiguous();
    }

    public override Backend Backend => _backend;
    public override long Length { get; }
    internal MemoryBuffer1D<float, Stride1D.Dense> Memory { get; }
    /// <summary>The usable elements as a kernel argument.</summary>
    public ArrayView<float> View { get; }
    internal bool Freed { get; set; }

    /// <summary>Elements [offset, offset + count).</summary>
    public ArrayView<float> Slice(long offset, long count) => View.SubView(offset, count);
}
