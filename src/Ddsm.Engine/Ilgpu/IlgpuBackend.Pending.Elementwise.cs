namespace Ddsm.Engine.Ilgpu;

// TEMPORARY: contract members of the Elementwise family, until its kernels are ported. Delete with the port.
public sealed partial class IlgpuBackend
{
    private Exception Pending(string what) => new NotImplementedException($"{Name}: {what} not ported yet");
    public override void Fill(DeviceBuffer x, long offset, long count, float value)
    {
        var b = Own(x);
        if (value != 0f) throw Pending("Fill");
        if (count > 0) ILGPU.Runtime.ArrayViewExtensions.MemSetToZero(b.Slice(offset, count), Stream);
    }
    public override void Axpby(DeviceBuffer x, DeviceBuffer y, long n, float alpha, float beta) => throw Pending("Axpby");
    public override void Binary(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z, long n) => throw Pending("");
    public override void Unary(UnaryOp op, DeviceBuffer x, DeviceBuffer y, long n) => throw Pending("");
    public override void Broadcast(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z, int outer, int mid, int inner, bool bPerOuter) => throw Pending("");
    public override void CopyBlocks(DeviceBuffer src, long srcOffset, long srcStride, DeviceBuffer dst, long dstOffset, long dstStride, int rows, long len, bool accumulate) => throw Pending("");
    public override void Sum(DeviceBuffer x, long n, DeviceBuffer result) => throw Pending("");
    public override void SumSquares(DeviceBuffer x, long n, DeviceBuffer result) => throw Pending("");
    public override void SquaredError(DeviceBuffer a, DeviceBuffer b, long n, DeviceBuffer result) => throw Pending("");
    public override void Upsample2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w) => throw Pending("");
    public override void AvgPool2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w) => throw Pending("");
    public override void TimestepEmbedding(DeviceBuffer t, DeviceBuffer output, int n, int dim, float maxPeriod) => throw Pending("");
    public override void Dropout(DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, long n, float p, ulong seed) => throw Pending("");
    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n, in AdamHyper h) => throw Pending("");
}
