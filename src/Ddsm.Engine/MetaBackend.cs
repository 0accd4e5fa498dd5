namespace Ddsm.Engine;

/// <summary>
/// A backend that holds no memory and runs no kernel: buffers are only lengths, every call returns at
/// once. An op on it still checks its shapes and reports its FLOPs, so a model's forward run here under a
/// <see cref="FlopCounter"/> counts exactly the work the real forward does, at no cost and from the one
/// description of the model there is (its forward). Values read back are zeros.
/// </summary>
public sealed class MetaBackend : Backend
{
    public static MetaBackend Instance { get; } = new();

    private MetaBackend() { }

    private sealed class Buffer(long length) : DeviceBuffer
    {
        public override Backend Backend => Instance;
        public override long Length => length;
    }

    public override string Name => "meta";
    public override DeviceBuffer Allocate(long count) => new Buffer(count);
    public override void Free(DeviceBuffer buffer) { }
    protected override void CopyInCore(DeviceBuffer dst, long dstOffset, ReadOnlySpan<float> src) { }
    protected override void CopyOutCore(DeviceBuffer src, long srcOffset, Span<float> dst) => dst.Clear();
    public override void Copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count) { }
    public override void Fill(DeviceBuffer x, long offset, long count, float value) { }
    public override void Axpby(DeviceBuffer x, DeviceBuffer y, long n, float alpha, float beta) { }
    public override void Binary(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z, long n) { }
    public override void Unary(UnaryOp op, DeviceBuffer x, DeviceBuffer y, long n) { }
    public override void Broadcast(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z,
        int outer, int mid, int inner, bool bPerOuter) { }
    public override void CopyBlocks(DeviceBuffer src, long srcOffset, long srcStride,
        DeviceBuffer dst, long dstOffset, long dstStride, int rows, long len, bool accumulate) { }
    public override void Sum(DeviceBuffer x, long n, DeviceBuffer result) { }
    public override void SumSquares(DeviceBuffer x, long n, DeviceBuffer result) { }
    public override void SquaredError(DeviceBuffer a, DeviceBuffer b, long n, DeviceBuffer result) { }
    public override void Gemm(in GemmDesc d, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c) { }
    public override void Conv2dForward(in ConvDesc d, DeviceBuffer x, DeviceBuffer w, DeviceBuffer? bias,
                                       DeviceBuffer y) { }
    public override void Conv2dBackwardData(in ConvDesc d, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer dx) { }
    public override void Conv2dBackwardWeight(in ConvDesc d, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer dw,
        DeviceBuffer? dbias) { }
    public override void GroupNormForward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer y, DeviceBuffer mean, DeviceBuffer rstd) { }
    public override void GroupNormBackward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer dy,
        DeviceBuffer? dx, DeviceBuffer? dgamma, DeviceBuffer? dbeta, DeviceBuffer? dscale, DeviceBuffer? dshift) { }
    public override void AttentionForward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output,
                                          DeviceBuffer lse) { }
    public override void AttentionBackward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse,
        DeviceBuffer dout, DeviceBuffer dqkv) { }
    public override void Upsample2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w) { }
    public override void AvgPool2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w) { }
    public override void TimestepEmbedding(DeviceBuffer t, DeviceBuffer output, int n, int dim, float maxPeriod) { }
    public override void Dropout(DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, long n, float p, ulong seed) { }
    public override void Normal(DeviceBuffer y, long n, ulong seed, ulong offset) { }
    public override void AxpbyStep(DeviceBuffer x, DeviceBuffer y, long n, StepScalar alpha, StepScalar beta) { }
    public override void FillStep(DeviceBuffer x, long count, StepScalar value) { }
    public override void NormalStep(DeviceBuffer y, long n, ulong seed, StepScalar offsetHigh,
        StepScalar offsetLow) { }
    public override void AdvanceStep(DeviceBuffer table) { }
    public override void UniformIntsStep(DeviceBuffer y, long n, StepScalar seed, ulong offset,
        StepScalar? offsetAdd, int lo, int hi) { }
    public override void GatherRowsStep(in GatherDesc d, DeviceBuffer src, DeviceBuffer index, DeviceBuffer dst,
        StepScalar seed) { }
    public override void DropoutStep(DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, long n, float p,
        StepScalar seed, ulong salt) { }
    public override void CopyStep(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count,
        StepScalar slot, long scale) { }
    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h, DeviceBuffer guard, StepScalar lr) { }
    public override void TrainStepScalars(StepTable state, in Ddsm.Kernels.TrainStepScalarsArgs a) { }
    public override void TrainPassScalars(StepTable state, in Ddsm.Kernels.TrainPassScalarsArgs a) { }
    public override void CrossEntropy(DeviceBuffer logits, DeviceBuffer labels, DeviceBuffer loss,
        DeviceBuffer dlogits, int n, int k) { }
    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h) { }
    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h, DeviceBuffer guard) { }
    public override void GradientGuard(DeviceBuffer values, int sumCount, int count, DeviceBuffer guard,
        float clipNorm) { }
    public override void UniformInts(DeviceBuffer y, long n, ulong seed, ulong offset, int lo, int hi) { }
    public override void GatherRows(in GatherDesc d, DeviceBuffer src, DeviceBuffer index, DeviceBuffer dst) { }
}
