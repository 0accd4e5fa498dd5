using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;
using Ddsm.Tests.Engine;

namespace Ddsm.Kernels.Tests;

// The shared GroupNorm op suite (through autograd and OpCheck) on ILGPU's CPU accelerator.

[TestFixture]
public class GroupNormOpTestsIlgpuCpu : GroupNormOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}
