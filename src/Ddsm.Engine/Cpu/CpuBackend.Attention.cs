namespace Ddsm.Engine.Cpu;

public sealed partial class CpuBackend
{
    public override void AttentionForward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse)
        => throw new NotImplementedException("attention forward (cpu)");
    public override void AttentionBackward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse,
        DeviceBuffer dout, DeviceBuffer dqkv)
        => throw new NotImplementedException("attention backward (cpu)");
}
