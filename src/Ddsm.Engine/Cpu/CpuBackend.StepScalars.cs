namespace Ddsm.Engine.Cpu;

// The oracles of kernels/StepScalars.cs: each reads its scalars from the step table's current row (host memory
// here, so no transfer) and calls its plain twin with them, which makes it bit-identical to that twin by
// construction. A replay on this backend runs the step again (Backend.CaptureCore's default).
public sealed partial class CpuBackend
{
    /// <summary>Column s.Column of the table's current row.</summary>
    private static float At(StepScalar s)
    {
        var t = A(s.Buffer);
        return t[1 + (long)(int)t[0] * s.Stride + s.Column];
    }

    public override void AxpbyStep(DeviceBuffer x, DeviceBuffer y, long n, StepScalar alpha, StepScalar beta)
    {
        OneTable(alpha, beta);
        Axpby(x, y, n, At(alpha), At(beta));
    }

    public override void FillStep(DeviceBuffer x, long count, StepScalar value) => Fill(x, 0, count, At(value));

    public override void NormalStep(DeviceBuffer y, long n, ulong seed, StepScalar offsetHigh, StepScalar offsetLow)
    {
        OneTable(offsetHigh, offsetLow);
        Normal(y, n, seed, ((ulong)At(offsetHigh) << 24) + (ulong)At(offsetLow));
    }

    public override void AdvanceStep(DeviceBuffer table) => A(table)[0] += 1f;
}
