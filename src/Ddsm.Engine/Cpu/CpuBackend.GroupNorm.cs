namespace Ddsm.Engine.Cpu;

public sealed partial class CpuBackend
{
    public override void GroupNormForward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer y, DeviceBuffer mean, DeviceBuffer rstd)
        => throw new NotImplementedException("groupnorm forward (cpu)");
    public override void GroupNormBackward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer dy,
        DeviceBuffer? dx, DeviceBuffer? dgamma, DeviceBuffer? dbeta, DeviceBuffer? dscale, DeviceBuffer? dshift)
        => throw new NotImplementedException("groupnorm backward (cpu)");
}
