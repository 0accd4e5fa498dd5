using ILGPU;
using ILGPU.Runtime;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

// Element-wise family → kernels/Elementwise.cs: grid-stride kernels at FlexThreads per group, grid
// capped by GridFor. No backward here: the op layer composes it from these.
public sealed partial class IlgpuBackend
{
    /// <summary>The first <paramref name="n"/> elements of a buffer as a kernel argument (a short buffer throws
    /// here, not as an out-of-bounds access in the kernel).</summary>
    private ArrayView<float> View(DeviceBuffer b, long n, string op)
    {
        var c = Own(b);
        CheckRange(c, 0, n, op);
        return c.Slice(0, n);
    }

    /// <summary>A grid-stride launch over <paramref name="n"/> items.</summary>
    private void LaunchFlat<TArgs>(string kernel, long n, in TArgs args) where TArgs : struct
    {
        if (n > 0) Launch(K<TArgs>(kernel), new Index3D(GridFor(n, FlexThreads), 1, 1), FlexThreads, args);
    }

    public override void Fill(DeviceBuffer x, long offset, long count, float value)
    {
        var b = Own(x);
        CheckRange(b, offset, count, "Fill");
        if (count == 0) return;
        _acc.Bind();
        // +0 (most fills: fresh gradients) is the runtime's memset; other values (−0 too) need the kernel.
        if (BitConverter.SingleToInt32Bits(value) == 0)
            RunOrRecord(b.Slice(offset, count), static (zeroed, stream) => zeroed.MemSetToZero(stream));
        else LaunchFlat("fill", count, new FillArgs { Y = b.Slice(offset, count), Value = value });
    }

    public override void Axpby(DeviceBuffer x, DeviceBuffer y, long n, float alpha, float beta)
    {
        // In place (x is y) y = (alpha + beta)·y, the CPU oracle's arithmetic.
        if (ReferenceEquals(x, y)) (alpha, beta) = (alpha + beta, 0f);
        LaunchFlat("axpby", n,
            new AxpbyArgs { X = View(x, n, "axpby"), Y = View(y, n, "axpby"), N = n, Alpha = alpha, Beta = beta });
    }

    public override void Binary(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z, long n)
        => LaunchFlat("binary", n, new MapArgs
        {
            A = View(a, n, "binary"), B = View(b, n, "binary"), Z = View(z, n, "binary"), N = n, Op = (int)op,
        });

    public override void Unary(UnaryOp op, DeviceBuffer x, DeviceBuffer y, long n)
        => LaunchFlat("unary", n,
            new MapArgs { A = View(x, n, "unary"), Z = View(y, n, "unary"), N = n, Op = (int)op });

    public override void Broadcast(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z,
        int outer, int mid, int inner, bool bPerOuter)
    {
        long n = (long)outer * mid * inner;
        var args = new BroadcastArgs
        {
            A = View(a, n, "broadcast"), B = View(b, (bPerOuter ? outer : 1) * (long)mid, "broadcast"),
            Z = View(z, n, "broadcast"),
            Outer = outer, Mid = mid, Inner = inner, Op = (int)op, PerOuter = bPerOuter ? 1 : 0,
        };
        LaunchFlat("broadcast", n, args);
    }

    public override void CopyBlocks(DeviceBuffer src, long srcOffset, long srcStride,
        DeviceBuffer dst, long dstOffset, long dstStride, int rows, long len, bool accumulate)
    {
        if (rows <= 0 || len <= 0) return;
        var s = Own(src); var d = Own(dst);
        CheckRange(s, srcOffset, (rows - 1) * srcStride + len, "CopyBlocks(src)");
        CheckRange(d, dstOffset, (rows - 1) * dstStride + len, "CopyBlocks(dst)");
        var args = new CopyBlocksArgs
        {
            Src = s.View, Dst = d.View, SrcOffset = srcOffset, SrcStride = srcStride,
            DstOffset = dstOffset, DstStride = dstStride, Len = len, Rows = rows, Accumulate = accumulate ? 1 : 0,
        };
        // x: up to 64 groups along a row; y: rows (grid-strided past 65535).
        var grid = new Index3D(Math.Min(Ceil(len, FlexThreads), 64), Math.Min(rows, 65535), 1);
        Launch(K<CopyBlocksArgs>("copy_blocks"), grid, FlexThreads, args);
    }
}
