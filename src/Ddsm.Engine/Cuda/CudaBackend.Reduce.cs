namespace Ddsm.Engine.Cuda;

// Reductions → kernels/reduce.cu. Two passes with a grid that depends only on n, so the same input
// gives the same bits on every run (see the kernel file's header).
public sealed partial class CudaBackend
{
    private const string Rd = "reduce.cu";
    private const int ReducePartialsMax = 1024;
    private readonly CudaBuffer _partials;   // ReducePartialsMax doubles (2 floats each), stream-ordered reuse

    private void Reduce(int kind, DeviceBuffer a, DeviceBuffer? b, long n, DeviceBuffer result)
    {
        int grid = (int)Math.Clamp((n + 4095) / 4096, 1, ReducePartialsMax);
        Launch(Rd, "reduce_pass1", ((uint)grid, 1, 1), 256, A().I32(kind).Ptr(Own(a)).Ptr(b is null ? null : Own(b)).I64(n).Ptr(_partials));
        Launch(Rd, "reduce_pass2", (1, 1, 1), 256, A().Ptr(_partials).I32(grid).Ptr(Own(result)));
    }

    public override void Sum(DeviceBuffer x, long n, DeviceBuffer result) => Reduce(0, x, null, n, result);
    public override void SumSquares(DeviceBuffer x, long n, DeviceBuffer result) => Reduce(1, x, null, n, result);
    public override void SquaredError(DeviceBuffer a, DeviceBuffer b, long n, DeviceBuffer result) => Reduce(2, a, b, n, result);
}
