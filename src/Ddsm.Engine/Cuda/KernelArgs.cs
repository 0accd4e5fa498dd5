using System.Runtime.CompilerServices;

namespace Ddsm.Engine.Cuda;

/// <summary>
/// The argument list of one kernel launch, packed the way cuLaunchKernel wants it: each argument's
/// bytes at its natural alignment in one buffer, and an array of pointers to them. The order and
/// types must match the kernel's C signature exactly (i64 ↔ long, int ↔ int, pointers ↔ ulong,
/// structs ↔ a [StructLayout(Sequential)] struct with the same fields).
/// </summary>
internal sealed class KernelArgs
{
    private readonly byte[] _data = new byte[512];
    private readonly int[] _offsets = new int[32];
    private int _used;
    private readonly string[] _tags = new string[32];   // constants: no per-launch string building
    public int Count { get; private set; }

    /// <summary>One tag per argument: P pointer, i int, l long, f float, u uint, U ulong, S&lt;bytes&gt;; for
    /// checking launches against the kernels' C signatures (CudaBackend.DryRun).</summary>
    internal string Tags => string.Join(' ', _tags, 0, Count);

    private KernelArgs Add<T>(T value, string? tag = null) where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>(), align = Math.Min(8, size >= 8 ? 8 : size >= 4 ? 4 : size);
        int off = (_used + align - 1) / align * align;
        if (off + size > _data.Length || Count == _offsets.Length)
            throw new InvalidOperationException("KernelArgs: too many kernel arguments");
        Unsafe.WriteUnaligned(ref _data[off], value);
        _tags[Count] = tag ?? (typeof(T) == typeof(int) ? "i" : typeof(T) == typeof(long) ? "l" : typeof(T) == typeof(float) ? "f"
            : typeof(T) == typeof(uint) ? "u" : "U");
        _offsets[Count++] = off;
        _used = off + size;
        return this;
    }

    /// <summary>A device pointer to element <paramref name="offset"/> of <paramref name="b"/>; null → 0 (the kernel skips it).</summary>
    public KernelArgs Ptr(DeviceBuffer? b, long offset = 0) => Add(b is null ? 0UL : CudaBackend.Cast(b).At(offset), "P");
    public KernelArgs Raw(ulong devicePtr) => Add(devicePtr, "P");
    public KernelArgs I32(int v) => Add(v);
    public KernelArgs I64(long v) => Add(v);
    public KernelArgs U32(uint v) => Add(v);
    public KernelArgs U64(ulong v) => Add(v);
    public KernelArgs F32(float v) => Add(v);
    public KernelArgs Struct<T>(T v) where T : unmanaged => Add(v, StructTag<T>.Value);

    private static class StructTag<T> where T : unmanaged
    {
        public static readonly string Value = "S" + Unsafe.SizeOf<T>();
    }

    /// <summary>Argument <paramref name="i"/> read back as a <typeparamref name="T"/> (tests).</summary>
    internal T Get<T>(int i) where T : unmanaged => Unsafe.ReadUnaligned<T>(ref _data[_offsets[i]]);

    public unsafe int Launch(IntPtr func, (uint x, uint y, uint z) grid, uint block, uint sharedBytes, IntPtr stream)
    {
        fixed (byte* d = _data)
        {
            var ptrs = stackalloc void*[Math.Max(1, Count)];
            for (int i = 0; i < Count; i++) ptrs[i] = d + _offsets[i];
            return Driver.cuLaunchKernel(func, grid.x, grid.y, grid.z, block, 1, 1, sharedBytes, stream, ptrs, null);
        }
    }
}
