namespace Ddsm.Engine.Ilgpu;

// TEMPORARY: contract members of the Attention family, until its kernels are ported. Delete with the port.
public sealed partial class IlgpuBackend
{
    private Exception PendingAttention() => new NotImplementedException($"{Name}: Attention not ported yet");
    public override void AttentionForward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse) => throw PendingAttention();
    public override void AttentionBackward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse, DeviceBuffer dout, DeviceBuffer dqkv) => throw PendingAttention();
}
