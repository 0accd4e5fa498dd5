namespace Ddsm.Engine.Cpu;

public sealed partial class CpuBackend
{
    public override void Conv2dForward(in ConvDesc d, DeviceBuffer x, DeviceBuffer w, DeviceBuffer? bias, DeviceBuffer y)
        => throw new NotImplementedException("conv2d forward (cpu)");
    public override void Conv2dBackwardData(in ConvDesc d, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer dx)
        => throw new NotImplementedException("conv2d backward data (cpu)");
    public override void Conv2dBackwardWeight(in ConvDesc d, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer dw, DeviceBuffer? dbias)
        => throw new NotImplementedException("conv2d backward weight (cpu)");
}
