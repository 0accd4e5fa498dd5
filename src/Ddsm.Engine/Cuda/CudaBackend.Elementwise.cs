namespace Ddsm.Engine.Cuda;

// Element-wise family → kernels/elementwise.cu. Grid-stride kernels, 256 threads; the host only
// checks that buffers belong to this backend. No backward here: the op layer composes it.
public sealed partial class CudaBackend
{
    private const string Ew = "elementwise.cu";
    private const uint EwThreads = 256;

    private KernelArgs A() => new();

    public override void Axpby(DeviceBuffer x, DeviceBuffer y, long n, float alpha, float beta)
        => Launch(Ew, "axpby", (Blocks(n), 1, 1), EwThreads, A().Ptr(Own(x)).Ptr(Own(y)).I64(n).F32(alpha).F32(beta));

    public override void Binary(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z, long n)
        => Launch(Ew, "binary_fwd", (Blocks(n), 1, 1), EwThreads, A().I32((int)op).Ptr(Own(a)).Ptr(Own(b)).Ptr(Own(z)).I64(n));

    public override void Unary(UnaryOp op, DeviceBuffer x, DeviceBuffer y, long n)
        => Launch(Ew, "unary_fwd", (Blocks(n), 1, 1), EwThreads, A().I32((int)op).Ptr(Own(x)).Ptr(Own(y)).I64(n));

    public override void Broadcast(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z,
        int outer, int mid, int inner, bool bPerOuter)
        => Launch(Ew, "broadcast_fwd", (Blocks((long)outer * mid * inner), 1, 1), EwThreads,
            A().I32((int)op).Ptr(Own(a)).Ptr(Own(b)).Ptr(Own(z)).I32(outer).I32(mid).I32(inner).I32(bPerOuter ? 1 : 0));

    public override void CopyBlocks(DeviceBuffer src, long srcOffset, long srcStride,
        DeviceBuffer dst, long dstOffset, long dstStride, int rows, long len, bool accumulate)
    {
        if (rows <= 0 || len <= 0) return;
        uint bx = (uint)Math.Min(Ceil(len, (int)EwThreads), 64u);
        uint by = (uint)Math.Min(rows, 65535);
        Launch(Ew, "copy_blocks", (bx, by, 1), EwThreads,
            A().Ptr(Own(src)).I64(srcOffset).I64(srcStride).Ptr(Own(dst)).I64(dstOffset).I64(dstStride)
               .I32(rows).I64(len).I32(accumulate ? 1 : 0));
    }
}
