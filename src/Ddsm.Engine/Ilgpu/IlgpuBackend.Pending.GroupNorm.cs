namespace Ddsm.Engine.Ilgpu;

// TEMPORARY: contract members of the GroupNorm family, until its kernels are ported. Delete with the port.
public sealed partial class IlgpuBackend
{
    private Exception PendingGroupNorm() => new NotImplementedException($"{Name}: GroupNorm not ported yet");
    public override void GroupNormForward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta, DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer y, DeviceBuffer mean, DeviceBuffer rstd) => throw PendingGroupNorm();
    public override void GroupNormBackward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta, DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer dy, DeviceBuffer? dx, DeviceBuffer? dgamma, DeviceBuffer? dbeta, DeviceBuffer? dscale, DeviceBuffer? dshift) => throw PendingGroupNorm();
}
